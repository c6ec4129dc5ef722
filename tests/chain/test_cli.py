"""The chain commands as a user runs them: real subprocesses against a real anvil."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from web3 import Web3

from chain import manifest
from chain.anvil import Anvil
from chain.rpc import connect
from tests.conftest import free_port

ASCENDNET = [sys.executable, "-m", "ascendnet.cli"]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ASCENDNET, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )


def rpc_answers(url: str) -> bool:
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_deploy_writes_manifest_and_refuses_to_overwrite(anvil: Anvil, tmp_path: Path) -> None:
    path = tmp_path / "deployments" / "31337.json"
    first = run("deploy", "--rpc-url", anvil.rpc_url, "--manifest", str(path))
    assert first.returncode == 0, first.stderr + first.stdout
    d = manifest.read(path)
    assert d.chain_id == 31337 and d.abi_matches
    w3 = connect(anvil.rpc_url)
    for address in d.contracts.values():
        assert len(w3.eth.get_code(address)) > 0
    assert d.deploy_block <= w3.eth.block_number
    assert set(d.contracts) == {"ComputeRental", "PromptMarketplace", "TestToken"}

    again = run("deploy", "--rpc-url", anvil.rpc_url, "--manifest", str(path))
    assert again.returncode == 2
    assert "already exists" in again.stderr and "--overwrite" in again.stderr
    assert manifest.read(path).contracts == d.contracts

    forced = run("deploy", "--rpc-url", anvil.rpc_url, "--manifest", str(path), "--overwrite")
    assert forced.returncode == 0, forced.stderr
    assert manifest.read(path).contracts["ComputeRental"] != d.contracts["ComputeRental"]


def test_non_local_chain_refuses_dev_key_and_deploys_from_keystore(tmp_path: Path) -> None:
    """A chain that is not a local anvil dev chain (here chain id 1337) never gets the public
    dev key; an encrypted keystore works."""
    other = Anvil(port=free_port(), chain_id=1337).start()
    try:
        refused = run("deploy", "--rpc-url", other.rpc_url, "--manifest", str(tmp_path / "m.json"))
        assert refused.returncode == 2
        assert "dev key is refused" in refused.stderr and "--keystore" in refused.stderr

        pw = tmp_path / "pw"
        pw.write_text("correct horse battery\n")
        ks = tmp_path / "deployer.json"
        made = run("account", "new", "--keystore", str(ks), "--password-file", str(pw))
        assert made.returncode == 0, made.stderr
        address = made.stdout.split()[1]
        assert oct(ks.stat().st_mode & 0o777) == "0o600"
        w3 = Web3(Web3.HTTPProvider(other.rpc_url))
        w3.provider.make_request("anvil_setBalance", [address, hex(10**20)])  # type: ignore[arg-type]

        wrong = tmp_path / "wrong"
        wrong.write_text("nope nope nope")
        bad = run("deploy", "--rpc-url", other.rpc_url, "--keystore", str(ks), "--password-file", str(wrong),
                  "--manifest", str(tmp_path / "m.json"))  # fmt: skip
        assert bad.returncode == 2 and "wrong password" in bad.stderr

        ok = run("deploy", "--rpc-url", other.rpc_url, "--keystore", str(ks), "--password-file", str(pw),
                 "--manifest", str(tmp_path / "m.json"))  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        d = manifest.read(tmp_path / "m.json")
        assert d.chain_id == 1337 and d.deployer == address
        assert "TestToken" not in d.contracts  # never on a non-local chain by default
        assert d.params["challenge_window"] == 24 * 3600  # production parameters
    finally:
        other.stop()


def test_unreachable_rpc_says_what_to_do() -> None:
    out = run("deploy", "--rpc-url", f"http://127.0.0.1:{free_port()}", timeout=60)
    assert out.returncode == 2
    assert "Cannot reach" in out.stderr and "ascendnet chain up" in out.stderr


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 90) -> str:
    """Collect the process's output lines until one contains `marker` (or it exits)."""
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if marker in line or not line:
            break
    return "".join(lines)


def test_chain_up_serves_then_stops_on_ctrl_c() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*ASCENDNET, "chain", "up", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        out = read_until(proc, "Ctrl-C to stop")
        assert "anvil is up" in out and f"127.0.0.1:{port}" in out, out
        assert rpc_answers(f"http://127.0.0.1:{port}")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not rpc_answers(f"http://127.0.0.1:{port}")  # anvil went down with it


def _api_status(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as resp:
            body = json.loads(resp.read())
            return body.get("data") if isinstance(body, dict) else None
    except (OSError, ValueError):
        return None


def test_dev_runs_the_stack_and_resumes_after_restart(tmp_path: Path) -> None:
    """`ascendnet dev` deploys once, runs the indexer, the API and an agent, stops them all on
    Ctrl-C, and a restart resumes the same chain and contracts."""
    port, api_port = free_port(), free_port()
    data = tmp_path / "dev"

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                *ASCENDNET,
                "dev",
                "--rpc-port",
                str(port),
                "--api-port",
                str(api_port),
                "--data-dir",
                str(data),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )

    def wait_indexed() -> dict[str, object]:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = _api_status(api_port)
            if status and status.get("caught_up"):
                return status
            time.sleep(0.5)
        raise AssertionError(
            "the API never reported a caught-up indexer; logs: " + str(list(data.glob("*.log")))
        )

    first = start()
    try:
        out1 = read_until(first, "Running.")
        assert "deployed" in out1 and "agent: running" in out1, out1
        m1 = json.loads((data / "deployments" / "31337.json").read_text())
        status = wait_indexed()
        assert status["chain_id"] == 31337
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert (data / "anvil-state.json").exists()
    assert _api_status(api_port) is None  # the API went down with it

    second = start()
    try:
        out2 = read_until(second, "Running.")
        assert "reusing" in out2, out2
        m2 = json.loads((data / "deployments" / "31337.json").read_text())
        assert m2["contracts"] == m1["contracts"]
        wait_indexed()
        second.send_signal(signal.SIGINT)
        second.wait(timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0
    assert not rpc_answers(f"http://127.0.0.1:{port}")
    assert _api_status(api_port) is None


@pytest.mark.parametrize("tool", ["anvil"])
def test_missing_toolchain_names_the_setup_step(
    tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ascendnet import toolchain
    from ascendnet.errors import ToolchainMissing

    monkeypatch.setattr(toolchain, "NODE_BIN", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainMissing, match="make setup"):
        toolchain.find_tool(tool)
