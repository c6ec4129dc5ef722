"""Load benchmark of the read-only API: p50/p99 latency and requests/s at 64 concurrent clients.

Data: `--jobs` jobs and `--prompts` prompts (default 1,000,000 and 200,000) made THROUGH THE
INDEXER, as the runner does it: typed contract events appended to the event store
(`EventStore.append_blocks`), then folded into the read models by the projector
(`Projector.run`, which calls `indexer.folds.apply`), chunk by chunk. Nothing is inserted by
hand. Job states are mixed (about 60% open, 25% cancelled, 10% assigned, 5% completed), over
10,000 clients and 500 providers; a fifth of the prompts are listed.

Load: `ascendnet api serve --workers N` on 127.0.0.1 over that database (rate limit off: the
bench is one client IP), and 64 concurrent keep-alive HTTP/1.1 connections from this process (a
minimal asyncio client on uvloop, so the client costs little CPU next to the server) for
`--seconds` per endpoint after a warm-up:

    /jobs?status=open&limit=50      /jobs/{id}      /accounts/{address}
    /events?from_block=a&to_block=a+49&limit=50
    /health (no database: what the HTTP stack alone serves, for scale)

The database is brought to the indexer's latest migration first (a `--reuse`d one may be
older), and the indexes `api/indexes.py` names must be there.

Cost of the client: it shares the machine's CPUs with the server, so the report gives the CPU
time the client and the server processes each spent per request (`client us/req`,
`server us/req`) besides latency and throughput.

    .venv/bin/python bench/api_load.py                                  # both backends, 1M/200k
    .venv/bin/python bench/api_load.py --backend sqlite --jobs 100000 --prompts 20000
    .venv/bin/python bench/api_load.py --reuse sqlite:////tmp/ascendnet-api-bench-x/api-bench.sqlite3

`--max-generate-seconds` stops generating early (the report says how many jobs were made);
`--keep` leaves the generated database in place for `--reuse`, `--generate-only` only makes it.
`--explain` prints the query plan of every statement each endpoint runs, `--server-root` serves
from another checkout (before/after comparisons), `--only` picks endpoints. Run measurements
under `flock /tmp/bench.lock` on a shared machine. Figures: docs/API.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.indexes import missing  # noqa: E402
from chain import events as E  # noqa: E402
from chain.provenance import ChainEvent  # noqa: E402
from indexer import db  # noqa: E402
from indexer.projection import Projector  # noqa: E402
from indexer.status import write_status  # noqa: E402
from indexer.store import BlockRef, EventStore  # noqa: E402
from tests.indexer.synthetic import CHAIN_ID, COMPUTE, MARKET, NATIVE, PARAMS  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "ASCENDNET_TEST_PG_URL", "postgresql+psycopg2://ascendnet:ascendnet@127.0.0.1:5432/ascendnet"
)
CLIENTS, PROVIDERS, CREATORS = 10_000, 500, 5_000
ETH = 10**18


def address(kind: str, i: int) -> str:
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address("0x" + hashlib.sha256(f"{kind}{i}".encode()).hexdigest()[:40]))


def _h(*parts: object) -> bytes:
    return hashlib.sha256(":".join(map(str, parts)).encode()).digest()


# ---------------------------------------------------------------- the history


class History:
    """Typed contract events in emission order: a whole job lifecycle, or a prompt, at a time."""

    def __init__(self, jobs: int, prompts: int) -> None:
        self.jobs, self.prompts = jobs, prompts
        self.clients = [address("client", i) for i in range(CLIENTS)]
        self.providers = [address("provider", i) for i in range(PROVIDERS)]
        self.creators = [address("creator", i) for i in range(CREATORS)]
        self.rng = random.Random(1)
        self.jobs_made = 0

    def flow(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        yield COMPUTE, "ParamsUpdated", {"params": PARAMS}
        for p in self.providers:
            yield COMPUTE, "ProviderRegistered", {"provider": p, "stake": 2 * ETH, "metadata_cid": "bafkprov"}
        every = max(self.jobs // max(self.prompts, 1), 1)
        token = 0
        for j in range(1, self.jobs + 1):
            yield from self._job(j)
            self.jobs_made = j
            if j % every == 0 and token < self.prompts:
                token += 1
                yield from self._prompt(token)
        while token < self.prompts:
            token += 1
            yield from self._prompt(token)

    def _job(self, j: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
        client = self.clients[j % CLIENTS]
        provider = self.providers[self.rng.randrange(PROVIDERS)]
        amount = ETH * (1 + j % 7) // 10
        yield (
            COMPUTE,
            "JobPosted",
            {
                "job_id": j,
                "client": client,
                "asset": NATIVE,
                "amount": amount,
                "spec_hash": _h("spec", j),
                "spec_cid": f"bafkspec{j}",
                "bid_deadline": 2_000_000_000 + j,
                "execution_timeout": 3600,
            },
        )
        roll = self.rng.random()
        if roll < 0.60:
            return  # open
        if roll < 0.85:
            yield COMPUTE, "Credited", {"account": client, "asset": NATIVE, "amount": amount}
            yield COMPUTE, "JobCancelled", {"job_id": j, "refund": amount}
            return
        price = amount * 9 // 10
        yield COMPUTE, "BidPlaced", {"job_id": j, "provider": provider, "price": price}
        yield (
            COMPUTE,
            "JobAssigned",
            {
                "job_id": j,
                "provider": provider,
                "price": price,
                "refund": amount - price,
                "execution_deadline": 2_000_003_600 + j,
            },
        )
        if roll < 0.95:
            return  # assigned
        fee = -(-price * 3 // 100)
        yield (
            COMPUTE,
            "ResultSubmitted",
            {
                "job_id": j,
                "provider": provider,
                "result_hash": _h("result", j),
                "result_cid": f"bafkres{j}",
                "challenge_end": 2_000_004_000 + j,
            },
        )
        yield (
            COMPUTE,
            "JobCompleted",
            {"job_id": j, "provider": provider, "payout": price - fee, "fee": fee, "by_client": True},
        )

    def _prompt(self, t: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
        creator = self.creators[t % CREATORS]
        yield MARKET, "Transfer", {"from_": NATIVE, "to": creator, "token_id": t}
        yield (
            MARKET,
            "PromptMinted",
            {
                "token_id": t,
                "creator": creator,
                "metadata_cid": f"bafkmeta{t}",
                "content_hash": _h("content", t),
                "royalty_bps": 500,
            },
        )
        if t % 5 == 0:
            yield MARKET, "PromptListed", {"token_id": t, "seller": creator, "asset": NATIVE, "price": ETH}

    def blocks(self, per_block: int) -> Iterator[tuple[BlockRef, list[ChainEvent]]]:
        flow = self.flow()
        number, parent, done = 0, "0x" + "00" * 32, False
        while not done:
            number += 1
            block_hash = "0x" + _h("block", number).hex()
            logs: list[ChainEvent] = []
            for i in range(per_block):
                try:
                    contract_address, name, args = next(flow)
                except StopIteration:
                    done = True
                    break
                logs.append(
                    E.EVENT_TYPES[name](
                        contract="ComputeRental" if contract_address == COMPUTE else "PromptMarketplace",
                        address=contract_address,
                        chain_id=CHAIN_ID,
                        block_number=number,
                        block_hash=block_hash,
                        tx_hash="0x" + _h("tx", number, i // 2).hex(),
                        log_index=i,
                        **args,
                    )
                )
            if logs:
                yield BlockRef(number, block_hash, parent, 1_700_000_000 + number * 12), logs
                parent = block_hash


def generate(url: str, jobs: int, prompts: int, per_block: int, max_seconds: float) -> dict[str, Any]:
    """Index the synthetic history into `url` through the event store and the projector."""
    engine = db.make_engine(url)
    db.upgrade(engine)
    store = EventStore(engine, CHAIN_ID)
    projector = Projector(engine, CHAIN_ID)
    history = History(jobs, prompts)
    started = time.perf_counter()
    events = head = 0
    chunk: list[tuple[BlockRef, list[ChainEvent]]] = []
    last_report = started

    def flush() -> None:
        nonlocal events, head
        events += store.append_blocks(chunk)
        head = chunk[-1][0].number
        # Everything is final (a backfill far below the head): the projector keeps no undo log.
        write_status(
            engine,
            chain_id=CHAIN_ID,
            indexed_head=head,
            finalized_block=head,
            node_head=head,
            events_per_second=0,
        )
        projector.run()
        chunk.clear()

    stopped_early = False
    for block in history.blocks(per_block):
        chunk.append(block)
        if len(chunk) == 500:
            flush()
            now = time.perf_counter()
            if now - last_report > 15:
                last_report = now
                rate = events / (now - started)
                made = history.jobs_made
                print(f"  ... {made:,} jobs, {events:,} events, {rate:,.0f} ev/s", file=sys.stderr)
            if now - started > max_seconds:
                stopped_early = True
                break
    if chunk:
        flush()
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        counts = {
            t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("jobs", "prompts", "events", "bids", "providers", "owed")
        }
    engine.dispose()
    return {
        "seconds": seconds,
        "events": events,
        "blocks": head,
        "counts": counts,
        "stopped_early": stopped_early,
    }


# ---------------------------------------------------------------- the load


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    #: Answers the API gave from its cache of kept answers (`X-Cache: hit`).
    hits: int = 0


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> tuple[int, bool]:
    """(the status, whether the answer was a kept one: `X-Cache: hit`)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n".encode())
    status = int((await reader.readline()).split(b" ", 2)[1])
    length, hit = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"x-cache":
            hit = value.strip() == b"hit"
    await reader.readexactly(length)
    return status, hit


async def _client(port: int, paths: Iterator[str], until: float, measure_from: float, result: Result) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            path = next(paths)
            started = time.perf_counter()
            if started >= until:
                return
            try:
                status, hit = await _request(reader, writer, path)
            except (ConnectionError, asyncio.IncompleteReadError, IndexError, ValueError):
                # A dropped connection counts as an error; carry on with a new one.
                status, hit = 0, False
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            took = time.perf_counter() - started
            if started >= measure_from:
                result.latencies.append(took)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                result.hits += hit
                if status != 200:
                    result.errors += 1
    finally:
        writer.close()


async def _load(port: int, make_paths: Any, concurrency: int, seconds: float, warmup: float) -> Result:
    result = Result()
    now = time.perf_counter()
    measure_from, until = now + warmup, now + warmup + seconds
    await asyncio.gather(
        *(_client(port, make_paths(i), until, measure_from, result) for i in range(concurrency))
    )
    return result


def _cpu_seconds(pid: int) -> float:
    """CPU time of the server: the process `pid` and its workers."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def load(
    port: int, server_pid: int, make_paths: Any, concurrency: int, seconds: float, warmup: float
) -> dict[str, Any]:
    """Run the clients (on uvloop when installed: a cheaper client) and measure."""
    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        run = asyncio.run
    # NOTE: the client is a measuring instrument: a full collection of its heap (the indexer,
    # SQLAlchemy and web3 are imported) paused every connection at once for up to 0.15 s, which
    # the server was blamed for. Its garbage is acyclic, so collection is off while it runs.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        client_cpu, server_cpu = time.process_time(), _cpu_seconds(server_pid)
        result = run(_load(port, make_paths, concurrency, seconds, warmup))
    finally:
        gc.enable()
        gc.unfreeze()
    client_cpu, server_cpu = time.process_time() - client_cpu, _cpu_seconds(server_pid) - server_cpu
    lat = sorted(result.latencies)
    n = len(lat)
    # NOTE: CPU times cover the warm-up too; divide by every request sent, not just measured.
    sent = max(n * (seconds + warmup) / seconds, 1)
    return {
        "requests": n,
        "rps": n / seconds,
        "p50_ms": 1000 * statistics.median(lat) if lat else None,
        "p99_ms": 1000 * lat[min(n - 1, int(n * 0.99))] if lat else None,
        "errors": result.errors,
        "statuses": result.statuses,
        "cache_hits": result.hits / n if n else 0.0,
        "client_us_per_request": 1e6 * client_cpu / sent,
        "server_us_per_request": 1e6 * server_cpu / sent,
    }


def scenarios(url: str, jobs: int, head: int) -> dict[str, Any]:
    """The four endpoints, each as a factory of endless, per-client path sequences."""
    engine = db.make_engine(url)
    with engine.connect() as conn:
        busy = [r[0] for r in conn.execute(sa.text("SELECT client FROM jobs GROUP BY client LIMIT 2000"))]
    engine.dispose()

    def endless(pick: Any) -> Any:
        def make(i: int) -> Iterator[str]:
            rng = random.Random(i)
            while True:
                yield pick(rng)

        return make

    return {
        "/health (no database: the HTTP stack)": endless(lambda rng: "/health"),
        "/jobs?status=open&limit=50": endless(lambda rng: "/jobs?status=open&limit=50"),
        "/jobs/{id}": endless(lambda rng: f"/jobs/{rng.randint(1, jobs)}"),
        "/accounts/{address}": endless(lambda rng: f"/accounts/{rng.choice(busy)}"),
        "/events?from_block..to_block (50 blocks)": endless(
            lambda rng: (lambda a: f"/events?from_block={a}&to_block={a + 49}&limit=50")(
                rng.randint(1, max(head - 50, 1))
            )
        ),
    }


def explain(url: str, paths: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """The query plan of every statement each path runs: the app is run in this process and
    the statements are captured as it sends them (Core queries and `api.prepared` ones)."""
    from fastapi.testclient import TestClient

    from api import prepared
    from api.main import create_app
    from api.settings import ApiSettings

    settings = ApiSettings(_env_file=None, env="local", database_url=url, api_rate_limit=0, api_threads=0)
    app = create_app(settings)
    captured: list[tuple[str, Any]] = []
    plain_run = prepared.Prepared._run

    def spy(self: prepared.Prepared, conn: sa.Connection, params: dict[str, Any]) -> Any:
        compiled = self._for(conn.dialect)
        values = compiled.values(params)
        order = compiled.order
        captured.append((compiled.sql, tuple(values[n] for n in order) if order is not None else values))
        return plain_run(self, conn, params)

    def on_execute(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        if statement.strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            captured.append((statement, parameters))

    sa.event.listen(app.state.engine, "before_cursor_execute", on_execute)
    prepared.Prepared._run = spy  # type: ignore[method-assign]
    plans: dict[str, list[tuple[str, str]]] = {}
    planner = db.make_engine(url)
    try:
        with TestClient(app) as client, planner.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            for name, path in paths.items():
                captured.clear()
                assert client.get(path).status_code == 200, path
                plans[name] = []
                for sql, params in captured:
                    if sqlite:
                        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
                        plan = "; ".join(str(r[-1]) for r in rows)
                    else:
                        rows = conn.exec_driver_sql(f"EXPLAIN {sql}", params).all()
                        plan = "; ".join(str(r[0]).strip() for r in rows if "->" in r[0] or r is rows[0])
                    plans[name].append((" ".join(sql.split())[:100], plan))
    finally:
        prepared.Prepared._run = plain_run  # type: ignore[method-assign]
        planner.dispose()
    return plans


def serve(
    url: str, port: int, workers: int, threads: int, root: Path = REPO, cache_mb: float | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ASCENDNET_API_RATE_LIMIT": "0",  # the bench is one client IP: no rate limit
        **({"ASCENDNET_API_THREADS": str(threads)} if threads >= 0 else {}),
        **({"ASCENDNET_API_CACHE_MB": f"{cache_mb:g}"} if cache_mb is not None else {}),
        "ASCENDNET_LOG_LEVEL": "warning",
        "ASCENDNET_LOG_FORMAT": "json",
        "ASCENDNET_ENV": "local",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ascendnet.cli",
            "api",
            "serve",
            "--port",
            str(port),
            "--database-url",
            url,
            "--workers",
            str(workers),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own process group, so that the workers it forks are stopped with it.
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group; SIGKILL it if it has not exited in 30 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the API server exited")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("the API server did not come up")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_database() -> str:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"ascendnet_apibench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg(url: str) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = url.rsplit("/", 1)[1]
    db.drop_pg_database(admin, name)
    admin.dispose()


def run_backend(backend: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend}
    made_here = args.reuse is None
    if args.reuse:
        url = args.reuse
    elif backend == "sqlite":
        url = f"sqlite:///{tmp / 'api-bench.sqlite3'}"
    else:
        url = _pg_database()
    try:
        if made_here:
            print(
                f"{backend}: generating {args.jobs:,} jobs and {args.prompts:,} prompts through the indexer",
                file=sys.stderr,
            )
            out["generate"] = generate(
                url, args.jobs, args.prompts, args.per_block, args.max_generate_seconds
            )
            print(f"{backend}: {json.dumps(out['generate'])}", file=sys.stderr)
        if args.generate_only:
            print(f"{backend}: generated {url}", file=sys.stderr)
            return out
        engine = db.make_engine(url)
        db.upgrade(engine)
        lacking = missing(engine)
        if lacking:
            raise SystemExit(f"{backend}: the database lacks {', '.join(w.name for w in lacking)}")
        with engine.connect() as conn:
            jobs = int(conn.execute(sa.text("SELECT max(job_id) FROM jobs")).scalar_one())
            head = int(conn.execute(sa.text("SELECT indexed_head FROM indexer_status")).scalar_one())
            out["rows"] = {
                t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in ("jobs", "prompts", "events")
            }
        engine.dispose()
        if args.explain:
            one = {name: make(0).__next__() for name, make in scenarios(url, jobs, head).items()}
            out["plans"] = explain(url, {n: p for n, p in one.items() if "/health" not in n})
            for name, plans in out["plans"].items():
                print(f"{backend}: {name}", file=sys.stderr)
                for sql, plan in plans:
                    print(f"    {sql}\n      -> {plan}", file=sys.stderr)
            return out
        port = free_port()
        proc = serve(url, port, args.workers, args.threads, args.server_root, args.cache_mb)
        try:
            wait_up(port, proc)
            out["load"] = {}
            for name, make_paths in scenarios(url, jobs, head).items():
                if args.only and not any(o in name for o in args.only):
                    continue
                figures = load(port, proc.pid, make_paths, args.concurrency, args.seconds, args.warmup)
                out["load"][name] = figures
                print(f"{backend}: {name:42} {_figures(figures)}", file=sys.stderr)
        finally:
            stop(proc)
    finally:
        if made_here and backend == "postgresql" and not args.keep:
            _drop_pg(url)
        elif made_here and args.keep:
            print(f"{backend}: kept {url}", file=sys.stderr)
    return out


HEADINGS = (
    f"{'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'server us/req':>13} {'client us/req':>13}"
    f" {'kept':>5}"
)


def _figures(f: dict[str, Any]) -> str:
    return (
        f"{f['rps']:8,.0f} {f['p50_ms']:7.1f} {f['p99_ms']:7.1f} {f['errors']:6} "
        f"{f['server_us_per_request']:13,.0f} {f['client_us_per_request']:13,.0f} {f['cache_hits']:5.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--prompts", type=int, default=200_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--reuse", help="benchmark an existing database (made with --keep) instead of generating"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument(
        "--generate-only", action="store_true", help="generate (and keep) the database, measure nothing"
    )
    parser.add_argument("--per-block", type=int, default=20)
    parser.add_argument("--max-generate-seconds", type=float, default=1800)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=-1,
        help="read threads per worker (ASCENDNET_API_THREADS; 0: on the event loop; default: the API's)",
    )
    parser.add_argument(
        "--cache-mb",
        type=float,
        help="the API's kept answers per worker, MB (ASCENDNET_API_CACHE_MB; 0: off; default: the API's)",
    )
    parser.add_argument(
        "--only", action="append", help="only endpoints whose name contains this (repeatable)"
    )
    parser.add_argument(
        "--server-root",
        type=Path,
        default=REPO,
        help="serve from this checkout of the repository (e.g. an older commit, to compare)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print the query plan of each endpoint's statements, measure nothing",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    args.keep = args.keep or args.generate_only
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if args.reuse:
        backends = ["postgresql" if args.reuse.startswith("postgresql") else "sqlite"]
    results = []
    with contextlib.ExitStack() as stack:
        # A kept database lives in a directory that outlives the run.
        if args.keep:
            tmp_path = Path(tempfile.mkdtemp(prefix="ascendnet-api-bench-"))
        else:
            tmp_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ascendnet-api-bench-")))
        for backend in backends:
            results.append(run_backend(backend, args, tmp_path))
    print(
        f"API load: {args.concurrency} clients, {args.seconds:g} s per endpoint, {args.workers} worker(s), "
        f"{args.threads if args.threads >= 0 else 'default'} read thread(s) each, {os.cpu_count()} CPUs, "
        f"cache {'default' if args.cache_mb is None else f'{args.cache_mb:g} MB'}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'backend':11} {'endpoint':42} {HEADINGS}")
    for r in results:
        for name, f in r.get("load", {}).items():
            print(f"{r['backend']:11} {name:42} {_figures(f)}")
        print(
            f"{r['backend']:11} rows: {r.get('rows', r.get('generate', {}).get('counts'))}"
            + (f", generated in {r['generate']['seconds']:.0f} s" if "generate" in r else "")
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
