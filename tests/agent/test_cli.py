"""`ascendnet agent resources`: a table, or JSON with --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import typer
from click.testing import Result
from typer.testing import CliRunner

import agent.cli
from agent.cli import agent_app
from agent.monitor import DockerInfo, NvmlReader, ResourceMonitor
from tests.agent.fake_nvml import two_gpus

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> Result:
    """Run `ascendnet agent ...` in-process, mounted as the top-level CLI mounts it."""
    app = typer.Typer()
    app.add_typer(agent_app, name="agent")
    return CliRunner().invoke(app, ["agent", *args], terminal_width=200)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    # The command configures structlog on the runner's stderr, which is closed afterwards.
    yield
    structlog.reset_defaults()


@pytest.fixture()
def gpu_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    def monitor(data_dir: Path) -> ResourceMonitor:
        unreachable = DockerInfo(reachable=False, reason="Cannot connect to the Docker daemon")
        return ResourceMonitor(data_dir, nvml=NvmlReader(two_gpus()), docker_probe=lambda: unreachable)

    monkeypatch.setattr(agent.cli, "ResourceMonitor", monitor)


def test_table_shows_gpus_cpu_memory_disk_and_docker(gpu_machine: None, tmp_path: Path) -> None:
    result = invoke("resources", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "2 x NVIDIA A100-SXM4-80GB (driver 550.54.15, CUDA 12.4)" in out
    for label in ("CPU", "Memory", "Disk", "Docker"):
        assert label in out
    assert "unreachable (Cannot connect to the Docker daemon)" in out
    assert "GPU-bbbb" in out and "98 %" in out and "71 C" in out


def test_json_is_the_snapshot(gpu_machine: None, tmp_path: Path) -> None:
    result = invoke("resources", "--json", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["gpu"]["available"] is True
    assert [g["uuid"] for g in doc["gpu"]["gpus"]] == ["GPU-aaaa", "GPU-bbbb"]
    assert doc["disk"]["path"] == str(tmp_path)
    assert doc["docker"] == {
        "reachable": False,
        "version": None,
        "reason": "Cannot connect to the Docker daemon",
    }


def test_the_installed_command_on_this_machine(tmp_path: Path) -> None:
    """The real `ascendnet agent resources --json`, through the top-level CLI."""
    env = {**os.environ, "ASCENDNET_LOG_FORMAT": "json", "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    done = subprocess.run(
        [sys.executable, "-c", "from ascendnet.cli import main; main()", "agent", "resources", "--json",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # logs went to stderr, stdout is only the JSON
    assert doc["cpu"]["logical_cores"] == os.cpu_count()
    assert doc["docker"]["reachable"] is False
    if not Path("/dev/nvidiactl").exists():
        assert doc["gpu"]["available"] is False
        assert "monitor.cpu_only" in done.stderr  # and it says why, on stderr
