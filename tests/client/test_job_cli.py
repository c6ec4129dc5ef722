"""`ascendnet job ...` and `ascendnet withdraw` as a client runs them, against a real anvil."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chain import manifest
from chain.anvil import Anvil
from chain.contracts import Protocol
from chain.tx import TxSender
from tests.chain.flows import PARAMS

SPEC = {
    "schema_version": "ascendnet.job/v1",
    "image": "sha256:" + "ab" * 32,
    "command": ["echo", "hi"],
    "timeout_seconds": 60,
}


def ascendnet(
    anvil: Anvil, manifest_path: Path, data_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASCENDNET_RPC_URL": anvil.rpc_url, "ASCENDNET_MANIFEST": str(manifest_path),
           "ASCENDNET_DATA_DIR": str(data_dir), "ASCENDNET_API_URL": "off", "COLUMNS": "200"}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "ascendnet.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip


def test_post_bid_accept_cancel_and_withdraw(
    anvil: Anvil, protocol: Protocol, senders: list[TxSender], tmp_path: Path
) -> None:
    m = manifest.write(protocol.deployment, tmp_path / "m.json")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    c = protocol.compute

    posted = ascendnet(anvil, m, tmp_path, "job", "post", "--spec", str(spec), "--max-price", "0.5ether")
    assert posted.returncode == 0, posted.stderr
    job_id = int(c.functions.jobCount().call())
    assert f"posted job {job_id}" in posted.stdout and "Open" in posted.stdout
    job = c.functions.getJob(job_id).call()
    assert job[10] == 5 * 10**17  # escrow
    # The spec is in the client's content store under the CID the chain names.
    (ev,) = c.events.JobPosted().get_logs(from_block=0, argument_filters={"jobId": job_id})
    assert (tmp_path / "content").exists() and ev["args"]["specCid"] in posted.stdout

    cheap, dear = senders[2], senders[3]
    for s, price in ((cheap, 10**17), (dear, 2 * 10**17)):
        if not c.functions.isActiveProvider(s.address).call():
            s.transact(c.functions.registerProvider("bafkreicli"), value=PARAMS.min_stake)
        s.transact(c.functions.placeBid(job_id, price))
    bids = ascendnet(anvil, m, tmp_path, "job", "bids", str(job_id))
    assert bids.stdout.index(cheap.address) < bids.stdout.index(dear.address)

    accepted = ascendnet(anvil, m, tmp_path, "job", "accept", str(job_id))
    assert accepted.returncode == 0, accepted.stderr
    assert "Assigned" in accepted.stdout and cheap.address in accepted.stdout
    assert c.functions.getJob(job_id).call()[2] == cheap.address

    # A call that would revert is refused with the contract's custom error; nothing is sent.
    refused = ascendnet(anvil, m, tmp_path, "job", "cancel", str(job_id))
    assert refused.returncode == 2 and "WrongJobState" in refused.stderr

    other = ascendnet(anvil, m, tmp_path, "job", "post", "--spec", str(spec), "--max-price", "1000")
    other_id = int(c.functions.jobCount().call())
    assert other.returncode == 0
    cancelled = ascendnet(anvil, m, tmp_path, "job", "cancel", str(other_id))
    assert "Cancelled" in cancelled.stdout

    withdrew = ascendnet(anvil, m, tmp_path, "withdraw")
    assert withdrew.returncode == 0, withdrew.stderr
    assert "withdrew" in withdrew.stdout
    assert c.functions.owed(protocol.deployment.deployer, "0x" + "00" * 20).call() == 0


def test_malformed_spec_and_amount_are_refused_naming_the_problem(
    anvil: Anvil, protocol: Protocol, tmp_path: Path
) -> None:
    m = manifest.write(protocol.deployment, tmp_path / "m.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**SPEC, "timeout_seconds": "soon"}))
    out = ascendnet(anvil, m, tmp_path, "job", "post", "--spec", str(bad), "--max-price", "1ether")
    assert out.returncode == 2 and "timeout_seconds" in out.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps(SPEC))
    out = ascendnet(anvil, m, tmp_path, "job", "post", "--spec", str(good), "--max-price", "lots")
    assert out.returncode == 2 and "not an amount" in out.stderr
