"""End-to-end backfill benchmark: real contracts on anvil -> eth_getLogs -> decode -> event store
-> read models, into SQLite and into PostgreSQL; events/s and RSS.

N events are generated through the real contracts on a local anvil (prompt mints, 2 logs each,
and placeBid calls, 1 log each, from several accounts; `--per-block` transactions a block with
automine off). Then, for each backend, a fresh database is indexed from the deploy block to the
head by the runner (`Indexer.run(once=True)`, the code behind `ascendnet indexer run --once`), in
its own process so the RSS figures are that backend's alone.

    .venv/bin/python bench/indexer_backfill.py --events 100000            # both backends
    .venv/bin/python bench/indexer_backfill.py --events 20000 100000      # RSS does not grow with N
    .venv/bin/python bench/indexer_backfill.py --events 20000 --backend sqlite

Printed per backend and size: events/s over the whole run (wall clock, and per CPU second of the
indexer process: what a free core would give on a busy machine), RSS when half the events were
indexed and at the end, and the peak RSS. Targets (2-core machine): >= 5,000 ev/s SQLite, >= 3,000 ev/s PG,
RSS < 400 MB and not growing with N.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHAIN_ID = 31337
PG_ADMIN_URL = os.environ.get(
    "ASCENDNET_TEST_PG_URL", "postgresql+psycopg2://ascendnet:ascendnet@127.0.0.1:5432/ascendnet"
)


def generate(events: int, per_block: int, workdir: Path) -> tuple[Any, Any, float]:
    """Start anvil, deploy, and make `events` logs. Returns (anvil, deployment, seconds)."""
    from chain.anvil import Anvil, dev_accounts
    from chain.contracts import Protocol
    from chain.deploy import DeployOptions, ProtocolParams, deploy
    from chain.rpc import connect
    from chain.tx import TxSender
    from tests.conftest import free_port
    from tests.indexer.activity import ANVIL_ARGS, Activity

    os.environ.setdefault("PATH", "")
    node = Anvil(port=free_port(), extra_args=list(ANVIL_ARGS), log_path=workdir / "anvil.log").start()
    started = time.perf_counter()
    w3 = connect(node.rpc_url)
    keys = dev_accounts(10)
    deployment = deploy(
        w3, TxSender(w3, keys[0]), DeployOptions(treasury=keys[9].address, params=ProtocolParams.local())
    )
    protocol = Protocol.load(w3, deployment)
    activity = Activity(protocol, [k.address for k in keys])
    providers = [k.address for k in keys[1:4]]
    creators = [k.address for k in keys[4:9]]
    activity.send_mined(activity.register_providers(providers) + [activity.post_job(keys[0].address)])
    job_id = int(protocol.compute.functions.jobCount().call())
    made, i = 0, 0
    chunk = 5_000  # transactions built and sent per round (bounded memory here too)
    while made < events:
        calls: list[Any] = []
        while made < events and len(calls) < chunk:
            if i % 3 == 2:
                calls += activity.bids(job_id, providers, 1, start_price=1 + i)
                made += 1
            else:
                calls += activity.mints(creators, 1, salt=i)
                made += 2
            i += 1
        activity.send_mined(calls, per_block=per_block)
        print(f"  generated {made:,} / {events:,} events ({time.perf_counter() - started:.0f}s)", flush=True)
    return node, deployment, time.perf_counter() - started


def worker(args: argparse.Namespace) -> None:
    """One backend: index the chain into a fresh database and print a JSON result line."""
    import psutil

    from ascendnet.log import configure
    from chain import manifest
    from indexer.db import make_engine, upgrade
    from indexer.rpc import LogSource
    from indexer.runner import Indexer, StepResult

    configure("json", "warning")
    deployment = manifest.read(Path(args.manifest))
    engine = make_engine(args.database_url)
    upgrade(engine)
    process = psutil.Process()
    total = args.events[0]
    samples: dict[str, float] = {}
    seen = 0

    class Measured(Indexer):
        def step(self, target: int | None = None) -> StepResult:
            nonlocal seen
            result = super().step(target)
            seen += result.events
            rss = process.memory_info().rss / 2**20
            if seen >= total // 2 and "rss_half_mb" not in samples:
                samples["rss_half_mb"] = rss
                samples["events_at_half"] = seen
            return result

    source = LogSource(
        urls=[args.rpc_url],
        addresses=[deployment.address("ComputeRental"), deployment.address("PromptMarketplace")],
        initial_span=args.initial_span,
    )
    indexer = Measured(engine=engine, deployment=deployment, source=source, progress=False)
    started, cpu = time.perf_counter(), time.process_time()
    summary = indexer.run(once=True)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    samples["rss_end_mb"] = process.memory_info().rss / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine.dispose()
    print(
        json.dumps(
            {
                "events": summary.events,
                "blocks": summary.blocks,
                "seconds": seconds,
                "events_per_second": summary.events / seconds,
                "cpu_seconds": cpu,
                "peak_rss_mb": peak,
                **samples,
            }
        ),
        flush=True,
    )


def _pg_database() -> tuple[str, Any]:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"ascendnet_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from indexer.db import drop_pg_database

        drop_pg_database(admin, name)
        admin.dispose()

    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, drop


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, nargs="+", default=[100_000], help="one run per size (e.g. 20000 100000)"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--per-block", type=int, default=300, help="transactions per block")
    parser.add_argument("--initial-span", type=int, default=50, help="first eth_getLogs range (adapts)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--rpc-url", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    load_before = os.getloadavg()[0]
    rows: list[tuple[int, str, dict[str, Any]]] = []
    for n in sorted(set(args.events)):
        results = run_size(n, backends, args)
        rows += [(n, backend, r) for backend, r in results.items()]

    print()
    print(f"indexer backfill benchmark: events from anvil, {os.cpu_count()} CPUs")
    print(
        f"{'backend':<11} {'events':>8} {'blocks':>7} {'seconds':>8} {'ev/s':>8} {'ev/CPU s':>9} "
        f"{'RSS@N/2 MB':>11} {'RSS@N MB':>9} {'peak RSS MB':>12}"
    )
    for _, backend, r in sorted(rows, key=lambda x: (x[1], x[0])):
        print(
            f"{backend:<11} {r['events']:>8,} {r['blocks']:>7,} {r['seconds']:>8.1f} "
            f"{r['events_per_second']:>8,.0f} {r['events'] / r['cpu_seconds']:>9,.0f} "
            f"{r.get('rss_half_mb', 0):>11.0f} {r['rss_end_mb']:>9.0f} {r['peak_rss_mb']:>12.0f}"
        )
    print(f"load average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")


def run_size(n: int, backends: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Generate `n` events on a fresh anvil and index them into each backend (one process each)."""
    from chain import manifest

    with tempfile.TemporaryDirectory(prefix="ascendnet-bench-") as tmp:
        workdir = Path(tmp)
        print(f"generating {n:,} events on anvil ({args.per_block} transactions a block) ...")
        node, deployment, gen_seconds = generate(n, args.per_block, workdir)
        try:
            manifest_path = manifest.write(deployment, workdir / "manifest.json")
            head = _head(node.rpc_url)
            print(f"generated in {gen_seconds:.1f}s: blocks {deployment.deploy_block}..{head}")
            results: dict[str, dict[str, Any]] = {}
            for backend in backends:
                drop = None
                if backend == "sqlite":
                    url = f"sqlite:///{workdir / 'bench.sqlite3'}"
                else:
                    url, drop = _pg_database()
                try:
                    cmd = [
                        sys.executable,
                        __file__,
                        "--worker",
                        "--events",
                        str(n),
                        "--database-url",
                        url,
                        "--rpc-url",
                        node.rpc_url,
                        "--manifest",
                        str(manifest_path),
                        "--initial-span",
                        str(args.initial_span),
                    ]
                    print(f"indexing {n:,} events into {backend} ...", flush=True)
                    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                    if done.returncode != 0:
                        raise SystemExit(f"{backend} worker failed:\n{done.stderr[-4000:]}")
                    results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
                finally:
                    if drop is not None:
                        drop()
        finally:
            node.stop()
    return results


def _head(rpc_url: str) -> int:
    from chain.rpc import connect

    return int(connect(rpc_url).eth.block_number)


if __name__ == "__main__":
    main()
