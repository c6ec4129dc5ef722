"""kill -9 the real `ascendnet agent run` process at random points of its jobs, restart it, and
check the chain: exactly one bid, one result and at most one finalize per job, all sent by the
agent, and every job completed."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from agent.images import ensure_busybox_image
from ascendnet.storage import LocalContentStore
from chain import manifest
from chain.anvil import Anvil
from chain.contracts import Protocol
from chain.tx import TxSender
from tests.chain.flows import NATIVE, PARAMS, advance, now

MAX_PRICE = 10**18
COMPLETED = 4


def _agent_env(
    anvil: Anvil, manifest_path: Path, data_dir: Path, keystore: Path, image: str
) -> dict[str, str]:
    return {
        **os.environ,
        "ASCENDNET_RPC_URL": anvil.rpc_url,
        "ASCENDNET_MANIFEST": str(manifest_path),
        "ASCENDNET_KEYSTORE": str(keystore),
        "ASCENDNET_KEYSTORE_PASSWORD": "crash test password",
        "ASCENDNET_CONFIRMATIONS": "0",
        "ASCENDNET_POLL_INTERVAL": "0.05",
        "ASCENDNET_POLICY__ALLOWED_IMAGES": json.dumps([image]),
        "ASCENDNET_WITHDRAW_THRESHOLD_WEI": str(10**30),
        "ASCENDNET_LOG_FORMAT": "json",
    }


def _calls_by(w3: Web3, protocol: Protocol, sender: str, from_block: int) -> dict[tuple[str, int], int]:
    """(function name, job id) -> number of transactions `sender` sent to ComputeRental."""
    counts: dict[tuple[str, int], int] = {}
    for n in range(from_block, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            if tx["from"] != sender or tx["to"] != protocol.compute.address:  # type: ignore[index]
                continue
            fn, args = protocol.compute.decode_function_input(tx["input"])  # type: ignore[index]
            key = (fn.fn_name, int(args.get("jobId", -1)))
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_kill_9_at_random_points_never_acts_twice(
    anvil: Anvil, protocol: Protocol, senders: list[TxSender], docker_client: Any, tmp_path: Path
) -> None:
    w3 = protocol.w3
    image = ensure_busybox_image(docker_client).id
    provider_key = senders[6].account.key
    provider = senders[6].address
    keystore = tmp_path / "provider.json"
    keystore.write_text(json.dumps(Account.encrypt(provider_key, "crash test password")))
    manifest_path = manifest.write(protocol.deployment, tmp_path / "deployments.json")
    data_dir = tmp_path / "agent"
    env = _agent_env(anvil, manifest_path, data_dir, keystore, image)
    store = LocalContentStore(data_dir / "content")  # the agent's own local store: same directory
    c = protocol.compute
    if not c.functions.isActiveProvider(provider).call():
        senders[6].transact(c.functions.registerProvider("bafkreicrash"), value=PARAMS.min_stake)
    start_block = w3.eth.block_number
    client = senders[1]

    job_ids = []
    for n in range(3):
        spec = {
            "schema_version": "ascendnet.job/v1",
            "image": image,
            "command": ["sh", "-c", f"sleep 1; echo {n} > /outputs/n"],
            "timeout_seconds": 20,
            "resources": {"cpus": 0.5, "memory_mb": 64, "disk_mb": 8},
        }
        raw = json.dumps(spec).encode()
        cid = store.put(raw)
        client.transact(
            c.functions.postJob(NATIVE, MAX_PRICE, hashlib.sha256(raw).digest(), cid, now(w3) + 900, 3600),
            value=MAX_PRICE,
        )
        job_ids.append(int(c.functions.jobCount().call()))

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "ascendnet.cli", "agent", "run", "--data-dir", str(data_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "agent.log", "ab"),  # noqa: SIM115
        )

    def accept_new_bids() -> None:
        for job_id in job_ids:
            state = int(c.functions.getJob(job_id).call()[3])
            price = int(c.functions.bidOf(job_id, provider).call())
            if state == 1 and price:
                client.transact(c.functions.acceptBid(job_id, provider, price))

    def all_completed() -> bool:
        return all(int(c.functions.getJob(j).call()[3]) == COMPLETED for j in job_ids)

    rng = random.Random(20261124)
    kills = 0
    for _ in range(8):
        proc = start()
        deadline = time.monotonic() + rng.uniform(0.3, 3.5)
        while time.monotonic() < deadline:
            accept_new_bids()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        kills += 1
        advance(w3, PARAMS.challenge_window + 1)

    proc = start()
    try:
        deadline = time.monotonic() + 120
        while not all_completed() and time.monotonic() < deadline:
            accept_new_bids()
            advance(w3, PARAMS.challenge_window + 1)
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert kills == 8
    assert all_completed(), (tmp_path / "agent.log").read_text()[-3000:]

    calls = _calls_by(w3, protocol, provider, start_block + 1)
    for job_id in job_ids:
        assert calls.get(("placeBid", job_id)) == 1, calls
        assert calls.get(("submitResult", job_id)) == 1, calls
        assert calls.get(("finalize", job_id), 0) <= 1, calls
    # Nothing else was ever sent by the agent (no duplicates that reverted, no strays).
    assert set(calls) <= {(f, j) for f in ("placeBid", "submitResult", "finalize") for j in job_ids}
    # Every result on chain is the hash of what the agent stored.
    for job_id in job_ids:
        (ev,) = c.events.ResultSubmitted().get_logs(
            from_block=start_block, argument_filters={"jobId": job_id}
        )
        assert hashlib.sha256(store.get(ev["args"]["resultCid"])).digest() == ev["args"]["resultHash"]
    leftovers = docker_client.containers.list(all=True, filters={"label": "ascendnet.sandbox"})
    assert not [x for x in leftovers if x.labels.get("ascendnet.sandbox", "").startswith("agent-")]
