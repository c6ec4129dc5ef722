"""Sandbox overhead per job, beyond the command's own runtime, on a real dockerd.

Runs `true` (which takes about a millisecond) N times through `Sandbox.run`, one after another,
and reports the total time of each run: staging, outputs volume and holder, creating, starting and
waiting for the hardened container, copying out and packing /outputs, the log tails, and removing
the container. That total is the overhead, since the command itself costs nothing. Target: under
1 s. Figures are printed for both modes: with prewarming (the default: the next job's outputs
volume and holder are made while a job runs) and without (every run makes its own).

Also printed: `in container`, the time from the container's start to its exit as the agent sees
it (dockerd's start/wait round trips plus docker-init and the command).

    .venv/bin/python bench/sandbox_overhead.py [--runs 30] [--warmup 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from agent.images import ensure_busybox_image  # noqa: E402
from agent.sandbox import JobStatus, Sandbox, SandboxRequest  # noqa: E402
from ascendnet import log  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(client: docker.DockerClient, image: str, *, prewarm: bool, runs: int, warmup: int) -> None:
    request = SandboxRequest(image=image, command=["true"], timeout_seconds=30, memory_bytes=64 << 20)
    totals: list[float] = []
    inside: list[float] = []
    with (
        tempfile.TemporaryDirectory() as work,
        Sandbox(
            client, helper_image=image, work_dir=Path(work), owner="bench-overhead", prewarm=prewarm
        ) as sandbox,
    ):
        for i in range(warmup + runs):
            started = time.perf_counter()
            result = sandbox.run(request)
            elapsed = time.perf_counter() - started
            if result.status is not JobStatus.SUCCEEDED:
                raise SystemExit(f"run {i} ended {result.status}: {result.detail}")
            if i >= warmup:
                totals.append(elapsed)
                inside.append(result.duration_seconds)
    mode = "prewarm on " if prewarm else "prewarm off"
    print(
        f"{mode}  total per job: p50 {statistics.median(totals) * 1000:6.0f} ms  "
        f"p95 {percentile(totals, 0.95) * 1000:6.0f} ms  mean {statistics.fmean(totals) * 1000:6.0f} ms  "
        f"max {max(totals) * 1000:6.0f} ms  | in container: p50 {statistics.median(inside) * 1000:4.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    log.configure(level="warning")
    client = docker.from_env(timeout=60)
    version = client.version()
    image = ensure_busybox_image(client).id
    print(
        f"sandbox overhead: `true` x {args.runs} (after {args.warmup} warm-up runs); "
        f"dockerd {version['Version']}, {platform.machine()}, {os.cpu_count()} CPUs"
    )
    for prewarm in (True, False):
        measure(client, image, prewarm=prewarm, runs=args.runs, warmup=args.warmup)


if __name__ == "__main__":
    main()
