"""Benchmark of the indexer's storage path: append to the event store, fold into the read
models, rebuild from the store; events/s and peak RSS, on SQLite and PostgreSQL.

Events are synthetic but valid: typed `chain.events` objects in the order the contracts emit
them (whole job lifecycles, prompt mints, listings, sales, licences, ratings, withdrawals), ten
logs a block, fed through `EventStore.append_blocks` exactly as the runner feeds decoded logs.
No RPC: this measures what the indexer adds on top of fetching logs (bench for 3B's end-to-end
backfill is separate).

    .venv/bin/python bench/indexer_rebuild.py --events 100000            # both backends
    .venv/bin/python bench/indexer_rebuild.py --events 100000 --backend sqlite

Each backend runs in its own process, so the peak RSS printed is that backend's alone; "writer
RSS" is the peak of the projector's forked writer process, which counts the pages it shares with
its parent (copy-on-write) as its own. Under each backend, "per CPU s" divides by the CPU time of
the process and its writer instead of the wall clock: on a busy machine it shows what free cores
would do (for PostgreSQL it leaves out the server's work).
Phases:
  append    append_blocks in chunks of 200 blocks (one transaction each)
  fold      Projector.run over the whole store (blocks older than --unfinalized are final, as
            during a backfill, so they need no undo entries)
  backfill  append + fold interleaved chunk by chunk, as the runner does (a fresh database)
  rebuild   rebuild() of the read models from the store, in the same database
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain import events as E  # noqa: E402
from chain.provenance import ChainEvent  # noqa: E402
from indexer import db  # noqa: E402
from indexer.gctune import batch_gc  # noqa: E402
from indexer.projection import Projector, prune_undo  # noqa: E402
from indexer.rebuild import rebuild  # noqa: E402
from indexer.status import write_status  # noqa: E402
from indexer.store import BlockRef, EventStore  # noqa: E402
from tests.indexer.synthetic import CHAIN_ID, COMPUTE, MARKET, NATIVE, PARAMS, TREASURY  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "ASCENDNET_TEST_PG_URL", "postgresql+psycopg2://ascendnet:ascendnet@127.0.0.1:5432/ascendnet"
)


def _addr(kind: str, i: int) -> str:
    return "0x" + hashlib.sha256(f"{kind}{i}".encode()).hexdigest()[:40]


def _h(*parts: object) -> str:
    return "0x" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


class Chain:
    """Emits (block ref, logs) pairs with plausible contract traffic."""

    def __init__(self, per_block: int) -> None:
        self.per_block = per_block
        self.number = 0
        self.parent = "0x" + "00" * 32
        self.jobs = 0
        self.prompts = 0
        self.licences = 0
        self.pending: list[tuple[str, str, dict[str, object]]] = []

    def _flow(self) -> Iterator[tuple[str, str, dict[str, object]]]:
        yield COMPUTE, "ParamsUpdated", {"params": PARAMS}
        yield COMPUTE, "TreasuryUpdated", {"previous": NATIVE, "current": TREASURY}
        yield MARKET, "DeliveryWindowUpdated", {"delivery_window": 600}
        for p in range(50):
            yield (
                COMPUTE,
                "ProviderRegistered",
                {"provider": _addr("p", p), "stake": 2 * 10**18, "metadata_cid": "bafkprov"},
            )
        step = 0
        while True:
            step += 1
            # One job, start to end: 10 logs.
            self.jobs += 1
            j, client, prov = self.jobs, _addr("c", self.jobs % 5000), _addr("p", self.jobs % 50)
            yield (
                COMPUTE,
                "JobPosted",
                {
                    "job_id": j,
                    "client": client,
                    "asset": NATIVE,
                    "amount": 10**18,
                    "spec_hash": bytes.fromhex(_h("spec", j)[2:]),
                    "spec_cid": f"bafkspec{j}",
                    "bid_deadline": 10**9 + j,
                    "execution_timeout": 3600,
                },
            )
            yield COMPUTE, "BidPlaced", {"job_id": j, "provider": prov, "price": 7 * 10**17}
            yield (
                COMPUTE,
                "BidPlaced",
                {"job_id": j, "provider": _addr("p", (j + 7) % 50), "price": 6 * 10**17},
            )
            yield COMPUTE, "Credited", {"account": client, "asset": NATIVE, "amount": 3 * 10**17}
            yield (
                COMPUTE,
                "JobAssigned",
                {
                    "job_id": j,
                    "provider": prov,
                    "price": 7 * 10**17,
                    "refund": 3 * 10**17,
                    "execution_deadline": 10**9 + 4000,
                },
            )
            yield (
                COMPUTE,
                "ResultSubmitted",
                {
                    "job_id": j,
                    "provider": prov,
                    "result_hash": bytes.fromhex(_h("res", j)[2:]),
                    "result_cid": f"bafkres{j}",
                    "challenge_end": 10**9 + 5000,
                },
            )
            yield COMPUTE, "Credited", {"account": TREASURY, "asset": NATIVE, "amount": 21 * 10**15}
            yield COMPUTE, "FeeCharged", {"asset": NATIVE, "treasury": TREASURY, "amount": 21 * 10**15}
            yield COMPUTE, "Credited", {"account": prov, "asset": NATIVE, "amount": 679 * 10**15}
            yield (
                COMPUTE,
                "JobCompleted",
                {
                    "job_id": j,
                    "provider": prov,
                    "payout": 679 * 10**15,
                    "fee": 21 * 10**15,
                    "by_client": False,
                },
            )
            if step % 2 == 0:
                # A prompt: mint, list, sell, licence, deliver, rate: 16 logs.
                self.prompts += 1
                t, creator, buyer = (
                    self.prompts,
                    _addr("a", self.prompts % 3000),
                    _addr("b", self.prompts % 4000),
                )
                yield MARKET, "Transfer", {"from_": NATIVE, "to": creator, "token_id": t}
                yield (
                    MARKET,
                    "PromptMinted",
                    {
                        "token_id": t,
                        "creator": creator,
                        "metadata_cid": f"bafkmeta{t}",
                        "content_hash": bytes.fromhex(_h("c", t)[2:]),
                        "royalty_bps": 500,
                    },
                )
                yield (
                    MARKET,
                    "PromptListed",
                    {"token_id": t, "seller": creator, "asset": NATIVE, "price": 10**18},
                )
                yield MARKET, "Credited", {"account": TREASURY, "asset": NATIVE, "amount": 3 * 10**16}
                yield MARKET, "FeeCharged", {"asset": NATIVE, "treasury": TREASURY, "amount": 3 * 10**16}
                yield MARKET, "Credited", {"account": creator, "asset": NATIVE, "amount": 5 * 10**16}
                yield MARKET, "Credited", {"account": creator, "asset": NATIVE, "amount": 92 * 10**16}
                yield MARKET, "Transfer", {"from_": creator, "to": buyer, "token_id": t}
                yield (
                    MARKET,
                    "PromptSold",
                    {
                        "token_id": t,
                        "seller": creator,
                        "buyer": buyer,
                        "asset": NATIVE,
                        "price": 10**18,
                        "seller_proceeds": 92 * 10**16,
                        "royalty": 5 * 10**16,
                        "royalty_receiver": creator,
                        "fee": 3 * 10**16,
                    },
                )
                yield MARKET, "LicenseTermsSet", {"token_id": t, "asset": NATIVE, "price": 10**17}
                self.licences += 1
                lic, reader = self.licences, _addr("r", self.licences % 6000)
                yield (
                    MARKET,
                    "LicensePurchased",
                    {
                        "license_id": lic,
                        "token_id": t,
                        "buyer": reader,
                        "seller": buyer,
                        "asset": NATIVE,
                        "price": 10**17,
                        "delivery_deadline": 10**9 + 600,
                    },
                )
                yield MARKET, "Credited", {"account": TREASURY, "asset": NATIVE, "amount": 3 * 10**15}
                yield MARKET, "FeeCharged", {"asset": NATIVE, "treasury": TREASURY, "amount": 3 * 10**15}
                yield MARKET, "Credited", {"account": buyer, "asset": NATIVE, "amount": 97 * 10**15}
                yield (
                    MARKET,
                    "KeyDelivered",
                    {
                        "license_id": lic,
                        "token_id": t,
                        "buyer": reader,
                        "seller": buyer,
                        "encrypted_key": b"\x04" * 97,
                        "seller_proceeds": 97 * 10**15,
                        "fee": 3 * 10**15,
                    },
                )
                yield (
                    MARKET,
                    "PromptRated",
                    {
                        "token_id": t,
                        "license_id": lic,
                        "rater": reader,
                        "score": 1 + t % 5,
                        "review_cid": f"bafkrev{t}",
                    },
                )
            if step % 5 == 0:
                yield COMPUTE, "Withdrawn", {"account": TREASURY, "asset": NATIVE, "amount": 1}

    def blocks(self, n_events: int) -> Iterator[tuple[BlockRef, list[ChainEvent]]]:
        flow = self._flow()
        made = 0
        while made < n_events:
            self.number += 1
            number = self.number
            block_hash = _h("block", number)
            ts = 1_700_000_000 + number * 12
            logs: list[ChainEvent] = []
            for i in range(min(self.per_block, n_events - made)):
                contract_address, name, args = next(flow)
                contract = "ComputeRental" if contract_address == COMPUTE else "PromptMarketplace"
                logs.append(
                    E.EVENT_TYPES[name](
                        contract=contract,
                        address=contract_address,
                        chain_id=CHAIN_ID,
                        block_number=number,
                        block_hash=block_hash,
                        tx_hash=_h("tx", number, i // 3),
                        log_index=i,
                        **args,
                    )
                )
            made += len(logs)
            yield BlockRef(number, block_hash, self.parent, ts), logs
            self.parent = block_hash


def _chunks(
    it: Iterator[tuple[BlockRef, list[ChainEvent]]], size: int
) -> Iterator[list[tuple[BlockRef, list[ChainEvent]]]]:
    chunk: list[tuple[BlockRef, list[ChainEvent]]] = []
    for item in it:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _writer_rss_mb() -> float:
    """Peak RSS of the largest child: the projector's writer process (forked, so its pages
    are the parent's until written)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _cpu() -> float:
    """CPU time of this process and of its finished children (the projector's writer)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_backend(url: str, n: int, per_block: int, unfinalized: int) -> dict[str, float]:
    engine = db.make_engine(url)
    db.upgrade(engine)
    store = EventStore(engine, CHAIN_ID)
    out: dict[str, float] = {}

    # Only the store's work is timed, not generating the synthetic events.
    spent = cpu = 0.0
    appended = 0
    head = 0
    for chunk in _chunks(Chain(per_block).blocks(n), 200):
        started, cpu0 = time.perf_counter(), _cpu()
        appended += store.append_blocks(chunk)
        spent += time.perf_counter() - started
        cpu += _cpu() - cpu0
        head = chunk[-1][0].number
    out["append_eps"] = appended / spent
    out["append_cpu"] = appended / cpu

    # As during a backfill: everything but the last `unfinalized` blocks is final.
    write_status(
        engine,
        chain_id=CHAIN_ID,
        indexed_head=head,
        finalized_block=head - unfinalized,
        node_head=head,
        events_per_second=0,
    )
    started, cpu0 = time.perf_counter(), _cpu()
    folded = Projector(engine, CHAIN_ID).run()
    out["fold_eps"] = folded / (time.perf_counter() - started)
    out["fold_cpu"] = folded / (_cpu() - cpu0)
    assert folded == appended, (folded, appended)

    started, cpu0 = time.perf_counter(), _cpu()
    report = rebuild(engine, CHAIN_ID)
    out["rebuild_eps"] = report.events / (time.perf_counter() - started)
    out["rebuild_cpu"] = report.events / (_cpu() - cpu0)
    assert report.events == appended
    engine.dispose()
    out["rss_mb"] = _rss_mb()
    out["writer_rss_mb"] = _writer_rss_mb()
    out["events"] = appended
    out["blocks"] = head
    return out


def run_backfill(url: str, n: int, per_block: int, unfinalized: int) -> dict[str, float]:
    """Append and fold interleaved, one chunk of 200 blocks at a time, as the runner does."""
    engine = db.make_engine(url)
    db.upgrade(engine)
    store = EventStore(engine, CHAIN_ID)
    projector = Projector(engine, CHAIN_ID)
    seconds = cpu = 0.0
    total = 0
    for chunk in _chunks(Chain(per_block).blocks(n), 200):
        started, cpu0 = time.perf_counter(), _cpu()
        total += store.append_blocks(chunk)
        head = chunk[-1][0].number
        write_status(
            engine,
            chain_id=CHAIN_ID,
            indexed_head=head,
            finalized_block=head - unfinalized,
            node_head=head + unfinalized,
            events_per_second=0,
        )
        projector.run()
        prune_undo(engine, head - unfinalized)  # as the runner does once blocks are final
        seconds += time.perf_counter() - started
        cpu += _cpu() - cpu0
    engine.dispose()
    return {
        "backfill_eps": total / seconds,
        "backfill_cpu": total / cpu,
        "rss_mb": _rss_mb(),
        "writer_rss_mb": _writer_rss_mb(),
        "events": total,
    }


def _pg_database() -> tuple[str, sa.Engine]:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"ascendnet_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, admin


def _drop_pg(url: str, admin: sa.Engine) -> None:
    db.drop_pg_database(admin, url.rsplit("/", 1)[1])


def child(args: argparse.Namespace) -> None:
    """One measurement in this process: prints a JSON line."""
    with tempfile.TemporaryDirectory(prefix="ascendnet-bench-") as tmp:
        if args.backend == "sqlite":
            url, admin = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", None
        else:
            url, admin = _pg_database()
        try:
            run = run_backfill if args.phase == "backfill" else run_backend
            # The collector settings `indexer run` and `rebuild` use (indexer/gctune.py).
            with batch_gc():
                print(json.dumps(run(url, args.events, args.per_block, args.unfinalized)))
        finally:
            if admin is not None:
                _drop_pg(url, admin)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-block", type=int, default=10)
    parser.add_argument(
        "--unfinalized", type=int, default=64, help="blocks below the head that are not final"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--phase", choices=["store", "backfill"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase is not None:
        child(args)
        return
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    load_before = os.getloadavg()[0]
    print(
        f"indexer storage benchmark: {args.events:,} events, {args.per_block} logs/block, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'backend':<10} {'append ev/s':>12} {'fold ev/s':>10} {'backfill ev/s':>14} "
        f"{'rebuild ev/s':>13} {'peak RSS MB':>12} {'writer RSS MB':>14}"
    )
    for backend in backends:
        results = {}
        for phase in ("store", "backfill"):
            cmd = [
                sys.executable,
                __file__,
                "--phase",
                phase,
                "--backend",
                backend,
                "--events",
                str(args.events),
                "--per-block",
                str(args.per_block),
                "--unfinalized",
                str(args.unfinalized),
            ]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            results[phase] = json.loads(done.stdout.strip().splitlines()[-1])
        s, b = results["store"], results["backfill"]
        rss = max(s["rss_mb"], b["rss_mb"])
        writer_rss = max(s["writer_rss_mb"], b["writer_rss_mb"])
        print(
            f"{backend:<10} {s['append_eps']:>12,.0f} {s['fold_eps']:>10,.0f} {b['backfill_eps']:>14,.0f} "
            f"{s['rebuild_eps']:>13,.0f} {rss:>12,.0f} {writer_rss:>14,.0f}"
        )
        print(
            f"{'  per CPU s':<10} {s['append_cpu']:>12,.0f} {s['fold_cpu']:>10,.0f} "
            f"{b['backfill_cpu']:>14,.0f} {s['rebuild_cpu']:>13,.0f}"
        )
    # Other processes on the machine skew every figure: say how busy it was.
    print(f"load average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
