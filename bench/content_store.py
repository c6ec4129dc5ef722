"""Content store throughput: CID computation, put, get (with verification) and put_file, on the
local backend, for 1 MiB and 64 MiB inputs.

Each figure is the median of several runs, in MB/s (10^6 bytes per second). Every put stores new
bytes (the first 8 bytes carry a counter), so no run is skipped as already stored. `get` re-hashes
what it reads to check the CID, so it costs about one CID computation on top of the read.

    .venv/bin/python bench/content_store.py [--runs 5] [--dir /path/on/the/disk/to/measure]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ascendnet import log  # noqa: E402
from ascendnet.storage import ImportOptions, LocalContentStore, compute_cid  # noqa: E402

MiB = 1 << 20


def median_seconds(fn: Callable[[bytes], object], inputs: list[bytes]) -> float:
    """Median time of `fn` over `inputs` (prepared beforehand, outside the timing)."""
    times = []
    for data in inputs:
        start = time.perf_counter()
        fn(data)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def variants(base: bytes, runs: int, offset: int) -> list[bytes]:
    """`runs` distinct inputs of len(base): the first 8 bytes carry a counter."""
    return [(offset + i).to_bytes(8, "big") + base[8:] for i in range(runs)]


def bench(size: int, runs: int, root: Path) -> list[tuple[str, float]]:
    base = os.urandom(size)
    rows: list[tuple[str, float]] = []
    for label, options in (("CIDv0", ImportOptions()), ("CIDv1", ImportOptions(cid_version=1))):
        seconds = median_seconds(lambda d, o=options: compute_cid(d, o), variants(base, runs, 0))
        rows.append((f"compute_cid {label}", size / seconds / 1e6))
    store = LocalContentStore(root / f"store-{size}")
    cids: list[str] = []
    seconds = median_seconds(lambda d: cids.append(store.put(d)), variants(base, runs, 1000))
    rows.append(("put (hash + write + fsync)", size / seconds / 1e6))
    by_cid = iter(cids)
    seconds = median_seconds(lambda _: store.get(next(by_cid)), [b""] * runs)
    rows.append(("get (read + verify)", size / seconds / 1e6))
    sources = []
    for i, data in enumerate(variants(base, runs, 2000)):
        sources.append(root / f"src-{size}-{i}.bin")
        sources[-1].write_bytes(data)
    by_source = iter(sources)
    seconds = median_seconds(lambda _: store.put_file(next(by_source)), [b""] * runs)
    rows.append(("put_file (stream, hash, copy, fsync)", size / seconds / 1e6))
    by_cid = iter(cids)
    dest = root / f"out-{size}.bin"
    seconds = median_seconds(lambda _: store.get_to_file(next(by_cid), dest), [b""] * runs)
    rows.append(("get_to_file (verify + atomic write)", size / seconds / 1e6))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="Where the store lives (default: a temp dir).")
    args = parser.parse_args()
    log.configure("auto", "warning")
    print(f"# content store bench: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, median of {args.runs} runs")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for size in (MiB, 64 * MiB):
            print(f"\n{size // MiB} MiB")
            for name, rate in bench(size, args.runs, Path(tmp)):
                print(f"  {name:<38} {rate:8.1f} MB/s")


if __name__ == "__main__":
    main()
