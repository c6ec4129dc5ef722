"""Reorg benchmark: time from first seeing a depth-12 reorg until the read models are consistent
again, on SQLite and PostgreSQL.

On a local anvil, blocks full of protocol logs (prompt mints and bids) are indexed; then
`anvil_reorg` replaces the last 12 blocks with other transactions. The clock starts when the
runner's step begins the reorg check that sees it, and stops when that step has appended
compensating events for the orphaned logs, fetched and appended the new canonical blocks and
folded everything into the read models. Repeated `--rounds` times per backend; afterwards the
read models are checked against a clean index of the final chain.

    .venv/bin/python bench/indexer_reorg.py                 # both backends, 5 rounds
    .venv/bin/python bench/indexer_reorg.py --backend sqlite --rounds 10

Target: under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEPTH = 12
PG_ADMIN_URL = os.environ.get(
    "ASCENDNET_TEST_PG_URL", "postgresql+psycopg2://ascendnet:ascendnet@127.0.0.1:5432/ascendnet"
)


def _timed(obj: Any, name: str, phases: dict[str, float], label: str) -> None:
    original: Callable[..., Any] = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            phases[label] = phases.get(label, 0.0) + time.perf_counter() - started

    setattr(obj, name, wrapper)


def run_backend(backend: str, url: str, rounds: int, txs_per_block: int, workdir: Path) -> dict[str, Any]:
    from chain.anvil import Anvil, dev_accounts
    from chain.contracts import Protocol
    from chain.deploy import DeployOptions, ProtocolParams, deploy
    from chain.rpc import connect
    from chain.tx import TxSender
    from indexer.db import make_engine, upgrade
    from indexer.rpc import LogSource
    from indexer.runner import Indexer
    from tests.conftest import free_port
    from tests.indexer.activity import ANVIL_ARGS, Activity
    from tests.indexer.harness import index_once, read_models

    node = Anvil(
        port=free_port(), extra_args=list(ANVIL_ARGS), log_path=workdir / f"anvil-{backend}.log"
    ).start()
    engine = make_engine(url)
    try:
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

        def blocks_of_logs(count: int, salt: int) -> None:
            calls = []
            for i in range(count * txs_per_block // 2):
                calls += activity.mints(creators, 1, salt=salt + i)
                calls += activity.bids(job_id, providers, 1, start_price=salt + i + 1)
            activity.send_mined(calls, per_block=txs_per_block)

        blocks_of_logs(30, salt=1)
        upgrade(engine)
        source = LogSource(urls=[node.rpc_url], addresses=[protocol.compute.address, protocol.market.address])
        indexer = Indexer(engine=engine, deployment=deployment, source=source, progress=False)
        indexer.run(once=True)

        phases: dict[str, float] = {}
        _timed(indexer.reconciler, "check", phases, "detect + compensating events")
        _timed(indexer, "_fetch", phases, "fetch + decode new blocks")
        _timed(indexer.store, "append_blocks", phases, "append new blocks")
        _timed(indexer, "_project", phases, "fold into read models")
        _timed(indexer, "_write_status", phases, "status")

        timings: list[float] = []
        orphaned = 0
        for r in range(rounds):
            blocks_of_logs(DEPTH + 3, salt=10_000 * (r + 1))
            indexer.run(once=True)
            replacement = [
                [
                    {"from": c.sender, "to": c.to, "data": c.data, "value": hex(c.value), "gas": hex(c.gas)},
                    i % DEPTH,
                ]
                for i, c in enumerate(activity.mints(creators, 2 * DEPTH, salt=900_000 + 1_000 * r))
            ]
            node_head = w3.eth.block_number
            doomed = len(
                w3.eth.get_logs(
                    {
                        "address": [protocol.compute.address, protocol.market.address],
                        "fromBlock": node_head - DEPTH + 1,
                        "toBlock": node_head,
                    }
                )
            )
            resp = w3.provider.make_request("anvil_reorg", [DEPTH, replacement])  # type: ignore[arg-type]
            assert "error" not in resp, resp
            activity.resync()
            before = dict(phases)
            started = time.perf_counter()
            while True:
                result = indexer.step()
                if not result.waiting and result.indexed_head == w3.eth.block_number:
                    break
            timings.append(time.perf_counter() - started)
            assert indexer.reconciler.reorgs == r + 1, "the reorg was not seen"
            orphaned += doomed
            for k in phases:
                phases[k] -= before.get(k, 0.0)
            if r == 0:
                first_phases = dict(phases)
            phases.clear()

        # Consistent: equal to a clean index of the final chain (not timed).
        clean = f"sqlite:///{workdir / f'clean-{backend}.sqlite3'}"
        index_once(clean, deployment, [node.rpc_url])
        consistent = read_models(url) == read_models(clean)
        return {
            "timings": timings,
            "phases": first_phases,
            "orphaned_per_round": orphaned / rounds,
            "consistent": consistent,
        }
    finally:
        engine.dispose()
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--txs-per-block", type=int, default=20)
    args = parser.parse_args()

    from ascendnet.log import configure

    configure("json", "error")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ascendnet-bench-") as tmp:
        workdir = Path(tmp)
        for backend in backends:
            if backend == "sqlite":
                results[backend] = run_backend(
                    backend, f"sqlite:///{workdir / 'live.sqlite3'}", args.rounds, args.txs_per_block, workdir
                )
                continue
            import sqlalchemy as sa

            admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            name = f"ascendnet_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
                results[backend] = run_backend(backend, url, args.rounds, args.txs_per_block, workdir)
            finally:
                from indexer.db import drop_pg_database

                drop_pg_database(admin, name)
                admin.dispose()

    print()
    print(
        f"indexer reorg benchmark: depth {DEPTH}, {args.txs_per_block} transactions a block, "
        f"{args.rounds} rounds, {os.cpu_count()} CPUs"
    )
    print(f"{'backend':<11} {'logs orphaned':>13} {'median s':>9} {'max s':>7} {'consistent':>11}")
    for backend, r in results.items():
        t = r["timings"]
        print(
            f"{backend:<11} {r['orphaned_per_round']:>13.0f} {statistics.median(t):>9.3f} {max(t):>7.3f} "
            f"{str(r['consistent']):>11}"
        )
        phases = ", ".join(f"{k} {v:.3f}s" for k, v in r["phases"].items())
        print(f"  first round by phase: {phases}")
    print(f"load average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
