"""Agent pickup latency and throughput, on a real anvil with a real dockerd.

Pickup: from the moment the agent's poll returns the block holding a JobPosted, to the moment its
placeBid transaction is handed to the node. Also reported: from the client's postJob receipt (the
block exists) to the bid being sent, which adds the agent's polling delay.
Throughput: trivial jobs (`true`) posted back to back and accepted at once; jobs per minute from
the first post to the last result on chain.

    .venv/bin/python bench/agent_pickup.py [--jobs 40] [--throughput-jobs 30]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from agent.bidding import PricePolicy  # noqa: E402
from agent.images import ensure_busybox_image  # noqa: E402
from agent.jobspec import AgentPolicy  # noqa: E402
from agent.journal import Journal  # noqa: E402
from agent.sandbox import Sandbox  # noqa: E402
from agent.worker import Agent, AgentConfig  # noqa: E402
from ascendnet import log  # noqa: E402
from ascendnet.storage import LocalContentStore  # noqa: E402
from chain import events as ev  # noqa: E402
from chain.anvil import Anvil, dev_accounts  # noqa: E402
from chain.contracts import Protocol  # noqa: E402
from chain.deploy import DeployOptions, ProtocolParams, deploy  # noqa: E402
from chain.rpc import connect  # noqa: E402
from chain.tx import TxSender  # noqa: E402

NATIVE = "0x0000000000000000000000000000000000000000"


class TimedSender(TxSender):
    """Records when each placeBid is handed to the node."""

    bid_sent: dict[int, float]

    def transact(self, fn, *, value=0):  # type: ignore[no-untyped-def, override]
        if fn.fn_name == "placeBid":
            self.bid_sent[int(fn.args[0])] = time.perf_counter()
        return super().transact(fn, value=value)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.1f}  p95 {pct(values, 95):.1f}  max {max(values):.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=40)
    ap.add_argument("--throughput-jobs", type=int, default=30)
    ap.add_argument("--port", type=int, default=18645)
    args = ap.parse_args()
    log.configure("json", "warning")
    tmp = Path(tempfile.mkdtemp(prefix="ascendnet-bench-"))
    anvil = Anvil(port=args.port).start()
    try:
        w3 = connect(anvil.rpc_url)
        keys = dev_accounts(3)
        admin, client_key, provider_key = keys
        deployment = deploy(w3, TxSender(w3, admin), DeployOptions(params=ProtocolParams.local()))
        protocol = Protocol.load(w3, deployment)
        client = TxSender(w3, client_key)
        provider = TimedSender(w3, provider_key)
        provider.bid_sent = {}
        provider.transact(protocol.compute.functions.registerProvider("bafkreibench"), value=10**18)
        dc = docker.from_env()
        image = ensure_busybox_image(dc).id
        store = LocalContentStore(tmp / "content")
        agent = Agent(
            protocol=protocol,
            sender=provider,
            journal=Journal(tmp / "journal.db"),
            store=store,
            sandbox=Sandbox(dc, helper_image=image, work_dir=tmp / "sandbox", owner="bench"),
            config=AgentConfig(
                policy=AgentPolicy(allowed_images=[image]),
                prices=PricePolicy.from_names(1, 10_000, ["native"]),
                max_concurrent_jobs=2,
                max_open_bids=10_000,
                confirmations=0,
                poll_interval=0.05,
                withdraw_threshold=10**30,
            ),
            work_dir=tmp / "agent",
        )
        seen: dict[int, float] = {}
        original = agent._on_posted

        def on_posted(e):  # type: ignore[no-untyped-def]
            seen.setdefault(e.job_id, time.perf_counter())
            original(e)

        agent._handlers[ev.JobPosted] = on_posted
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()

        spec = json.dumps(
            {
                "schema_version": "ascendnet.job/v1",
                "image": image,
                "command": ["true"],
                "timeout_seconds": 30,
                "resources": {"cpus": 0.5, "memory_mb": 64, "disk_mb": 8},
            }
        ).encode()
        cid = store.put(spec)
        digest = hashlib.sha256(spec).digest()

        def post() -> tuple[int, float]:
            deadline = int(w3.eth.get_block("latest")["timestamp"]) + 3600
            client.transact(
                protocol.compute.functions.postJob(NATIVE, 10**15, digest, cid, deadline, 3600), value=10**15
            )
            return int(protocol.compute.functions.jobCount().call()), time.perf_counter()

        # --- pickup latency: one job at a time, nothing else happening
        after_seen, after_block = [], []
        for _ in range(args.jobs):
            job_id, mined = post()
            t0 = time.monotonic()
            while job_id not in provider.bid_sent and time.monotonic() - t0 < 10:
                time.sleep(0.002)
            after_seen.append((provider.bid_sent[job_id] - seen[job_id]) * 1000)
            after_block.append((provider.bid_sent[job_id] - mined) * 1000)
        print(f"pickup, block seen -> bid sent (ms) over {args.jobs} jobs: {summary(after_seen)}")
        print(f"pickup, block mined -> bid sent (ms): {summary(after_block)}")

        # --- throughput: trivial jobs, accepted as soon as the bid lands
        c = protocol.compute
        first = time.perf_counter()
        ids = [post()[0] for _ in range(args.throughput_jobs)]
        pending = set(ids)
        accepted: set[int] = set()
        while pending and time.perf_counter() - first < 600:
            for j in list(pending):
                if j not in accepted:
                    price = c.functions.bidOf(j, provider.address).call()
                    if price:
                        client.transact(c.functions.acceptBid(j, provider.address, price))
                        accepted.add(j)
                elif int(c.functions.getJob(j).call()[3]) == 3:
                    pending.discard(j)
            time.sleep(0.02)
        elapsed = time.perf_counter() - first
        done = len(ids) - len(pending)
        print(
            f"throughput: {done} trivial jobs in {elapsed:.1f}s = {done / elapsed * 60:.0f} jobs/minute "
            f"(max_concurrent_jobs=2, 2-core machine)"
        )
        stop.set()
        thread.join(30)
    finally:
        anvil.stop()


if __name__ == "__main__":
    main()
