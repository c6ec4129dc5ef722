"""The agent end to end, in process: real anvil, real dockerd, real contracts and content store.

A client posts a job with escrow, the agent bids, the client accepts, the agent runs a real
container, posts the output hash, finalizes after the challenge window and withdraws."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.bidding import PricePolicy
from agent.images import ensure_busybox_image
from agent.jobspec import AgentPolicy
from agent.journal import Journal, Phase
from agent.packing import entries_from_tar
from agent.sandbox import Sandbox
from agent.worker import Agent, AgentConfig
from ascendnet.storage import LocalContentStore
from chain.contracts import Protocol
from chain.tx import TxSender
from tests.chain.flows import NATIVE, PARAMS, advance, now

PRICE = 6 * 10**17
MAX_PRICE = 10**18


@pytest.fixture(scope="module")
def busybox(docker_client: Any) -> str:
    return ensure_busybox_image(docker_client).id


@pytest.fixture()
def store(tmp_path: Path) -> LocalContentStore:
    return LocalContentStore(tmp_path / "content")


@pytest.fixture()
def running_agent(
    protocol: Protocol, senders: list[TxSender], docker_client: Any, busybox: str, store: LocalContentStore,
    tmp_path: Path,
) -> Iterator[Agent]:  # fmt: skip
    provider = senders[2]
    c = protocol.compute
    if not c.functions.isActiveProvider(provider.address).call():
        provider.transact(c.functions.registerProvider("bafkreiprovider"), value=PARAMS.min_stake)
    agent = Agent(
        protocol=protocol,
        sender=provider,
        journal=Journal(tmp_path / "journal.db"),
        store=store,
        sandbox=Sandbox(
            docker_client, helper_image=busybox, work_dir=tmp_path / "sandbox", owner="test-worker"
        ),
        config=AgentConfig(
            policy=AgentPolicy(allowed_images=[busybox], max_timeout_seconds=600),
            prices=PricePolicy.from_names(10**15, 10_000, ["native"]),
            confirmations=0,
            poll_interval=0.05,
            withdraw_threshold=1,
            tick_interval=0.2,
        ),
        work_dir=tmp_path / "agent",
    )
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    yield agent
    stop.set()
    thread.join(30)


def post_job(protocol: Protocol, client: TxSender, store: LocalContentStore, spec: dict[str, Any]) -> int:
    raw = json.dumps(spec, sort_keys=True).encode()
    cid = store.put(raw)
    client.transact(
        protocol.compute.functions.postJob(
            NATIVE, MAX_PRICE, hashlib.sha256(raw).digest(), cid, now(protocol.w3) + 600, 3600
        ),
        value=MAX_PRICE,
    )
    return int(protocol.compute.functions.jobCount().call())


def spec_for(image: str, script: str, timeout: int = 30) -> dict[str, Any]:
    return {
        "schema_version": "ascendnet.job/v1",
        "image": image,
        "command": ["sh", "-c", script],
        "timeout_seconds": timeout,
        "resources": {"cpus": 0.5, "memory_mb": 64, "disk_mb": 16},
    }


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def job_state(protocol: Protocol, job_id: int) -> int:
    return int(protocol.compute.functions.getJob(job_id).call()[3])


def test_whole_job_is_run_posted_finalized_and_withdrawn(
    running_agent: Agent, protocol: Protocol, senders: list[TxSender], store: LocalContentStore, busybox: str
) -> None:
    client, provider = senders[1], senders[2]
    c = protocol.compute
    job_id = post_job(protocol, client, store, spec_for(busybox, "echo hello > /outputs/greeting.txt"))

    price = wait_for("the agent's bid", lambda: c.functions.bidOf(job_id, provider.address).call())
    assert price == MAX_PRICE  # bid share 100% of the escrow
    client.transact(c.functions.acceptBid(job_id, provider.address, price))

    wait_for("the result", lambda: job_state(protocol, job_id) == 3)  # Submitted
    job = c.functions.getJob(job_id).call()
    events = c.events.ResultSubmitted().get_logs(from_block=0, argument_filters={"jobId": job_id})
    (submitted,) = events
    result_cid = submitted["args"]["resultCid"]
    tar = store.get(result_cid)
    assert hashlib.sha256(tar).digest() == bytes(job[12])  # on-chain resultHash = hash of the outputs
    (entry,) = [e for e in entries_from_tar([tar]) if e.path == "greeting.txt"]
    assert entry.data == b"hello\n"

    advance(protocol.w3, PARAMS.challenge_window + 1)
    wait_for("finalize", lambda: job_state(protocol, job_id) == 4)  # Completed
    completed = c.events.JobCompleted().get_logs(from_block=0, argument_filters={"jobId": job_id})
    assert completed[0]["args"]["byClient"] is False
    fee = -(-price * 300 // 10_000)
    withdrawn = wait_for(
        "the withdrawal",
        lambda: c.events.Withdrawn().get_logs(from_block=0, argument_filters={"account": provider.address}),
    )
    assert sum(w["args"]["amount"] for w in withdrawn) >= price - fee
    assert c.functions.owed(provider.address, NATIVE).call() == 0
    rec = running_agent.journal.get(job_id)
    assert rec is not None and rec.phase is Phase.DONE


def test_spec_hash_mismatch_is_refused_and_agent_keeps_serving(
    running_agent: Agent, protocol: Protocol, senders: list[TxSender], store: LocalContentStore, busybox: str
) -> None:
    client, provider = senders[1], senders[2]
    c = protocol.compute
    good = json.dumps(spec_for(busybox, "true"), sort_keys=True).encode()
    cid = store.put(good)
    client.transact(
        c.functions.postJob(NATIVE, MAX_PRICE, hashlib.sha256(b"something else").digest(), cid,
                            now(protocol.w3) + 600, 3600),
        value=MAX_PRICE,
    )  # fmt: skip
    bad_id = int(c.functions.jobCount().call())
    rec = wait_for("the refusal", lambda: running_agent.journal.get(bad_id))
    wait_for("the decision", lambda: running_agent.journal.get(bad_id).phase is Phase.SKIPPED)  # type: ignore[union-attr]
    assert "spec" in (running_agent.journal.get(bad_id).reason or "")  # type: ignore[union-attr]
    assert c.functions.bidOf(bad_id, provider.address).call() == 0
    assert rec is not None

    ok_id = post_job(protocol, client, store, spec_for(busybox, "true"))
    wait_for("a bid on the next job", lambda: c.functions.bidOf(ok_id, provider.address).call())


def test_hostile_job_times_out_with_a_receipt_while_another_completes(
    running_agent: Agent, protocol: Protocol, senders: list[TxSender], store: LocalContentStore, busybox: str
) -> None:
    client, provider = senders[1], senders[2]
    c = protocol.compute
    hostile = post_job(protocol, client, store, spec_for(busybox, "while true; do :; done", timeout=3))
    normal = post_job(protocol, client, store, spec_for(busybox, "echo ok > /outputs/ok"))
    for job_id in (hostile, normal):
        price = wait_for("a bid", lambda j=job_id: c.functions.bidOf(j, provider.address).call())
        client.transact(c.functions.acceptBid(job_id, provider.address, price))
    wait_for("both results", lambda: job_state(protocol, hostile) == 3 and job_state(protocol, normal) == 3)
    hostile_rec = running_agent.journal.get(hostile)
    assert hostile_rec is not None and hostile_rec.reason == "timed_out"
    receipt = json.loads(
        next(
            e.data
            for e in entries_from_tar([store.get(hostile_rec.result_cid or "")])
            if e.path.endswith(".json")
        )
    )
    assert receipt["status"] == "timed_out"
    normal_rec = running_agent.journal.get(normal)
    assert normal_rec is not None and normal_rec.reason == "succeeded"
