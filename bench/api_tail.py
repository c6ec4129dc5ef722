"""Where the API's tail latency comes from: which worker and which connection each slow answer
belongs to.

Serves `--reuse`d read models with `ascendnet api serve --workers 2` (as bench/api_load.py does),
runs 64 keep-alive clients on random `/jobs/{id}` or `/events` 50-block ranges, records every
answer's start, latency and connection, and maps each connection to the worker process that owns
it (`ss -tnp` while the load runs). It prints:

- throughput, p50, p99 and max;
- per worker: how many connections the kernel dealt it (SO_REUSEPORT hashes each connection to
  one worker's socket) and the mean latency of its connections;
- which connections the slowest 1% of answers came from, and when they finished (a burst in one
  100 ms window is a stall; the same few connections throughout is unfair ordering).

    .venv/bin/python bench/api_tail.py sqlite:////tmp/ascendnet-api-bench-x/api-bench.sqlite3

Figures: docs/API.md ("Where the tail comes from").
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_load  # noqa: E402

#: --endpoint -> the start of its scenario's name in `api_load.scenarios`.
_SCENARIOS = {"events": "/events", "jobs": "/jobs/{id}"}


def _owners(port: int, into: dict[int, str]) -> None:
    """Client port -> pid of the server process holding that connection."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4 or "pid=" not in line:
            continue
        into[int(fields[3].rsplit(":", 1)[1])] = line.split("pid=")[1].split(",")[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", help="database URL of read models made by bench/api_load.py")
    parser.add_argument("--endpoint", choices=["events", "jobs"], default="events")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--port", type=int, default=8141)
    args = parser.parse_args()

    engine = api_load.db.make_engine(args.url)
    with engine.connect() as conn:
        jobs = int(conn.execute(api_load.sa.text("SELECT max(job_id) FROM jobs")).scalar_one())
        head = int(conn.execute(api_load.sa.text("SELECT indexed_head FROM indexer_status")).scalar_one())
    engine.dispose()
    # The same random paths bench/api_load.py asks for.
    scenario = api_load.scenarios(args.url, jobs, head)
    make_paths = next(make for name, make in scenario.items() if name.startswith(_SCENARIOS[args.endpoint]))

    proc = api_load.serve(args.url, args.port, 2, -1)
    records: list[tuple[float, float, int]] = []
    local_port: dict[int, int] = {}
    owner: dict[int, str] = {}
    try:
        api_load.wait_up(args.port, proc)
        time.sleep(3)  # both workers up

        async def client(i: int, until: float, measure_from: float) -> None:
            paths = make_paths(i)
            reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
            local_port[i] = writer.get_extra_info("sockname")[1]
            try:
                while True:
                    path = next(paths)
                    started = time.perf_counter()
                    if started >= until:
                        return
                    await api_load._request(reader, writer, path)
                    if started >= measure_from:
                        records.append((started, time.perf_counter() - started, i))
            finally:
                writer.close()

        async def run() -> None:
            now = time.perf_counter()
            until, measure_from = now + args.warmup + args.seconds, now + args.warmup
            await asyncio.gather(*(client(i, until, measure_from) for i in range(args.concurrency)))

        snapshot = threading.Timer(args.warmup, _owners, (args.port, owner))
        snapshot.start()
        gc.collect()
        gc.freeze()
        gc.disable()  # the client is the instrument: no collector pauses in it
        try:
            import uvloop

            uvloop.run(run())
        finally:
            gc.enable()
        snapshot.join()
    finally:
        api_load.stop(proc)

    records.sort(key=lambda r: r[1])
    n = len(records)
    if not n:
        raise SystemExit("no answers measured")
    p99 = records[min(n - 1, int(n * 0.99))][1]
    print(
        f"{args.endpoint}: {n / args.seconds:,.0f} req/s, p50 {records[n // 2][1] * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {records[-1][1] * 1000:.1f} ms"
    )
    per_connection: dict[int, list[float]] = defaultdict(list)
    for _, latency, i in records:
        per_connection[i].append(latency)
    by_worker: dict[str, list[float]] = defaultdict(list)
    for i, latencies in per_connection.items():
        by_worker[owner.get(local_port.get(i, -1), "?")].append(mean(latencies) * 1000)
    for worker, means in sorted(by_worker.items()):
        print(
            f"  worker {worker}: {len(means)} connections, their mean latencies {min(means):.1f} to "
            f"{max(means):.1f} ms (average {mean(means):.1f})"
        )
    slow = [r for r in records if r[1] >= p99]
    start = min(r[0] for r in records)
    windows = Counter(int((r[0] + r[1] - start) * 10) for r in slow)
    connections = Counter(r[2] for r in slow)
    workers = Counter(owner.get(local_port.get(r[2], -1), "?") for r in slow)
    print(f"  slowest 1% ({len(slow)} answers): by worker {dict(workers)}")
    print(
        f"    from {len(connections)} of {args.concurrency} connections; most: {connections.most_common(6)}"
    )
    print(f"    busiest 100 ms windows (window: answers): {windows.most_common(5)}")


if __name__ == "__main__":
    main()
