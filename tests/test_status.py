"""`ascendnet status`'s probes, on their own: the agent's status file (fresh, stale, dead PID,
garbage) and components that are down. The whole command runs against a live stack in
tests/e2e."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ascendnet.apiview import ApiView
from ascendnet.status import Snapshot, collect, compact, probe_agent
from tests.conftest import free_port


def _write(path: Path, **fields: object) -> Path:
    doc = {"provider": "0xabc", "pid": os.getpid(), "updated_at": time.time(), "sandbox": True,
           "running_jobs": [7], "jobs_by_phase": {"done": 2, "running": 1}, **fields}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def test_a_fresh_status_file_of_a_live_process_is_running(tmp_path: Path) -> None:
    agent = probe_agent(_write(tmp_path / "agent-status.json"))
    assert agent["running"] is True and agent["why"] == "" and agent["provider"] == "0xabc"


def test_a_stale_status_file_is_not_running(tmp_path: Path) -> None:
    agent = probe_agent(_write(tmp_path / "agent-status.json", updated_at=time.time() - 120))
    assert agent["running"] is False and "old" in agent["why"]


def test_a_status_file_whose_process_is_gone_is_not_running(tmp_path: Path) -> None:
    agent = probe_agent(_write(tmp_path / "agent-status.json", pid=2**22 + 12345))
    assert agent["running"] is False and agent["why"] == "its process is gone"


def test_missing_or_garbage_status_files_say_so(tmp_path: Path) -> None:
    assert "no status file" in probe_agent(tmp_path / "none.json")["why"]
    (tmp_path / "bad.json").write_text("{not json")
    assert "unreadable" in probe_agent(tmp_path / "bad.json")["why"]


def test_nothing_running_is_unhealthy_and_says_why(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    snapshot = collect(dead, ApiView(dead, timeout=1), tmp_path)
    assert not snapshot.healthy
    assert snapshot.chain["up"] is False and "Cannot reach" in snapshot.chain["error"]
    assert snapshot.api["up"] is False and snapshot.indexer["started"] is False
    assert snapshot.jobs_by_state is None  # no read models in this data dir


def test_compact_line_names_head_jobs_and_agent() -> None:
    s = Snapshot(
        chain={"up": True, "head": 12},
        indexer={"started": True, "indexed_head": 11},
        agent={"running": True, "running_jobs": [3], "jobs_by_phase": {"running": 1, "done": 4}},
        jobs_by_state={"assigned": 1, "completed": 4},
    )
    assert (
        compact(s)
        == "head 12 | indexed 11 | jobs: assigned 1, completed 4 | agent: up, 1 running, done 4, running 1"
    )
