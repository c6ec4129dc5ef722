"""End to end, as a new user runs it: `ascendnet dev` as a subprocess on free ports, then
`ascendnet demo` against it. Every outcome is asserted through the API, then the stack is
stopped with SIGINT (Ctrl-C) and nothing it started may be left: no process, no container."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from ascendnet.apiview import ApiUnavailable, ApiView
from chain.anvil import dev_accounts
from tests.conftest import free_port, stop_process

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anvil
ETHER = 10**18
FEE_BPS = 300


def fee(amount: int) -> int:
    return -(-amount * FEE_BPS // 10_000)


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    rpc_url: str
    api: ApiView
    data_dir: Path
    log: Path
    #: Every process the stack started (taken while it ran), to prove none outlives it.
    descendants: list[psutil.Process]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ascendnet.cli", *args]


def _wait_until_serving(stack: Stack, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    agent_status = stack.data_dir / "agent-status.json"
    while time.monotonic() < deadline:
        assert stack.process.poll() is None, "ascendnet dev exited:\n" + stack.output()[-4000:]
        try:
            stack.api.get("/health")
            out = stack.output()
            if "Running." in out and (agent_status.exists() or "agent: not running" in out):
                return
        except ApiUnavailable:
            pass
        time.sleep(0.5)
    raise AssertionError("ascendnet dev did not come up:\n" + stack.output()[-4000:])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dev")
    rpc_port, api_port = free_port(), free_port()
    log = tmp / "dev.out"
    env = {**os.environ, "COLUMNS": "200", "ASCENDNET_LOG_FORMAT": "json"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            _cli(
                "dev",
                "--rpc-port",
                str(rpc_port),
                "--api-port",
                str(api_port),
                "--data-dir",
                str(tmp / "data"),
            ),
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    s = Stack(
        process, f"http://127.0.0.1:{rpc_port}", ApiView(f"http://127.0.0.1:{api_port}", timeout=60),
        tmp / "data", log, [],
    )  # fmt: skip
    try:
        _wait_until_serving(s)
        s.descendants = psutil.Process(process.pid).children(recursive=True)
        yield s
    finally:
        stop_process(process, signal.SIGINT, timeout=60)
        for child in s.descendants:  # only what this stack started, by PID
            if child.is_running():
                child.kill()


@pytest.fixture(scope="module")
def demo(stack: Stack) -> dict[str, Any]:
    """Runs the demo once; returns its summary (ids) and its output."""
    result = subprocess.run(
        _cli(
            "demo", "--rpc-url", stack.rpc_url, "--api-url", stack.api.url,
            "--data-dir", str(stack.data_dir), "--timeout", "120",
        ),
        cwd=REPO, capture_output=True, text=True, timeout=500, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:] + stack.output()[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("demo complete: "), last
    summary = json.loads(last.removeprefix("demo complete: "))
    return {**summary, "output": result.stdout, "end_block": demo_block(stack)}


def test_every_demo_step_prints_its_transaction_and_the_api_state(demo: dict[str, Any]) -> None:
    out: str = demo["output"]
    steps = [line for line in out.splitlines() if line[:3].rstrip(". ").isdigit()]
    assert len(steps) >= 10, out
    assert out.count("tx 0x") >= 10
    assert out.count("  API /") >= 10 and "not shown" not in out


def test_prompt_licence_and_sale_as_the_api_shows_them(stack: Stack, demo: dict[str, Any]) -> None:
    accounts = dev_accounts(5)
    seller, buyer, collector = accounts[1].address, accounts[2].address, accounts[4].address
    token, licence_id = demo["prompt"], demo["licence"]
    prompt = stack.api.get(f"/prompts/{token}")["data"]
    assert prompt["creator"] == seller and prompt["owner"] == collector
    assert prompt["listed"] is False and prompt["sales_count"] == 1 and prompt["licences_sold"] == 1
    assert prompt["rating"]["count"] == 1 and prompt["rating"]["average"] == 5
    # The dev indexer resolved the metadata document the demo stored in the dev content store.
    assert prompt["metadata"] == {
        "status": "resolved",
        "title": "Haiku master",
        "description": "Writes one surprising haiku about any topic.",
        "error": None,
    }
    assert [p["token_id"] for p in stack.api.get("/prompts", q="HAIKU")["data"]] == [token]

    (licence,) = stack.api.get("/licences", token_id=token)["data"]
    price = ETHER // 100
    assert licence["license_id"] == licence_id and licence["buyer"] == buyer
    assert licence["state"] == "delivered" and licence["encrypted_key"] not in (None, "0x")
    assert int(licence["fee"]) == fee(price) and int(licence["seller_proceeds"]) == price - fee(price)

    (sale,) = stack.api.get("/sales", token_id=token)["data"]
    sale_price = ETHER // 20
    assert sale["buyer"] == collector and sale["seller"] == seller and int(sale["price"]) == sale_price
    assert int(sale["royalty"]) == sale_price * 500 // 10_000  # paid to the creator, who is the seller here
    assert int(sale["fee"]) == fee(sale_price)

    delivered = stack.api.get("/events", event="KeyDelivered")["data"]
    assert [int(e["args"]["license_id"]) for e in delivered] == [licence_id]


def test_compute_job_ran_finalized_and_everyone_withdrew(stack: Stack, demo: dict[str, Any]) -> None:
    seller, client = dev_accounts(4)[1].address, dev_accounts(4)[3].address
    job = stack.api.get(f"/jobs/{demo['job']}")["data"]
    assert job["client"] == client and job["provider"] == seller  # the dev agent runs as account 1
    assert job["state"] == "completed"
    result = job["result"]
    assert result["provider"] == seller and result["result_hash"].startswith("0x") and result["result_cid"]
    price = int(job["price"])
    assert int(job["settlement"]["provider_payout"]) == price - fee(price)
    assert int(job["settlement"]["client_refund"]) == ETHER // 100 - price

    for address in (seller, client):
        account = stack.api.get(f"/accounts/{address}")["data"]
        assert all(int(o["owed"]) == 0 for o in account["owed_by_asset"]), account
    treasury = dev_accounts(1)[0].address  # the deployer, also the treasury on a dev chain
    withdrawals = stack.api.get("/events", event="Withdrawn")["data"]
    assert {e["args"]["account"] for e in withdrawals} >= {seller, treasury}
    assert int(stack.api.get("/fees")["totals"][0]["amount"]) > 0


def test_status_command_sees_the_whole_stack(stack: Stack, demo: dict[str, Any]) -> None:
    result = subprocess.run(
        _cli(
            "status", "--rpc-url", stack.rpc_url, "--api-url", stack.api.url,
            "--data-dir", str(stack.data_dir), "--json",
        ),
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(result.stdout)
    assert status["healthy"] is True and status["chain"]["chain_id"] == 31337
    assert status["agent"]["running"] is True and status["agent"]["sandbox"] is True
    assert status["agent"]["jobs_by_phase"].get("done", 0) >= 1
    assert status["jobs_by_state"].get("completed", 0) >= 1
    # Blocks come every second; the indexer follows within a couple of them.
    assert status["indexer"]["indexed_head"] >= demo["end_block"] - 2
    assert status["indexer"]["indexed_head"] >= status["chain"]["head"] - 5


def demo_block(stack: Stack) -> int:
    from chain.rpc import connect

    return int(connect(stack.rpc_url).eth.block_number)


def test_ctrl_c_stops_everything_and_leaves_nothing_behind(
    stack: Stack, demo: dict[str, Any], docker_client: Any
) -> None:
    # Last in the module: it stops the stack the other tests used.
    names = {p.name() for p in stack.descendants}
    assert len(stack.descendants) >= 4, names  # anvil, indexer, API, agent
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=60) == 0, stack.output()[-3000:]
    time.sleep(0.5)
    alive = [p for p in stack.descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [p.cmdline() for p in alive]
    assert "stopped." in stack.output()
    owner = "agent-" + dev_accounts(2)[1].address[2:12].lower()  # the dev agent's sandbox owner label
    leftovers = docker_client.containers.list(all=True, filters={"label": f"ascendnet.sandbox={owner}"})
    assert [c.name for c in leftovers] == []


def _restart(stack: Stack, *flags: str) -> Stack:
    """`ascendnet dev` again on the same data dir and ports (after the stack above stopped)."""
    log = stack.log.with_name(f"dev-{len(flags)}-{time.monotonic_ns()}.out")
    rpc_port = stack.rpc_url.rsplit(":", 1)[1]
    api_port = stack.api.url.rsplit(":", 1)[1]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            _cli("dev", "--rpc-port", rpc_port, "--api-port", api_port,
                 "--data-dir", str(stack.data_dir), *flags),
            cwd=REPO, env={**os.environ, "COLUMNS": "200"}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    again = Stack(process, stack.rpc_url, stack.api, stack.data_dir, log, [])
    _wait_until_serving(again)
    again.descendants = psutil.Process(process.pid).children(recursive=True)
    return again


def _stop(stack: Stack) -> None:
    stack.process.send_signal(signal.SIGTERM)  # as a service manager stops it
    assert stack.process.wait(timeout=60) == 0, stack.output()[-3000:]
    assert not [p for p in stack.descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_restart_resumes_and_redeploy_starts_over(stack: Stack, demo: dict[str, Any]) -> None:
    # After test_ctrl_c_stops_everything_and_leaves_nothing_behind: the first stack is stopped.
    assert stack.process.poll() is not None
    manifest = stack.data_dir / "deployments" / "31337.json"
    before = json.loads(manifest.read_text())["contracts"]

    resumed = _restart(stack, "--no-agent")
    try:
        assert "reusing contracts" in resumed.output() and "agent: not running" in resumed.output()
        assert stack.api.get(f"/prompts/{demo['prompt']}")["data"]["owner"] == dev_accounts(5)[4].address
        assert stack.api.get(f"/jobs/{demo['job']}")["data"]["state"] == "completed"
        # Without an agent nobody delivers keys or runs jobs: the demo refuses at once, saying why.
        refused = subprocess.run(
            _cli("demo", "--rpc-url", stack.rpc_url, "--api-url", stack.api.url,
                 "--data-dir", str(stack.data_dir)),
            cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        assert refused.returncode != 0 and "runs no agent" in refused.stdout + refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        _stop(resumed)

    redeployed = _restart(stack, "--redeploy")
    try:
        assert "deployed contracts" in redeployed.output()
        after = json.loads(manifest.read_text())["contracts"]
        assert after["ComputeRental"] != before["ComputeRental"]
        assert list(manifest.parent.glob("31337.replaced-*.json"))  # the old manifest is kept
        with pytest.raises(ApiUnavailable, match="404"):
            stack.api.get(f"/prompts/{demo['prompt']}")  # read models of the new contracts only
    finally:
        _stop(redeployed)
