"""The agent journal: phases only move forward, and what was committed survives a crash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.journal import IllegalTransition, Journal, JournalError, Phase


def test_phases_move_forward_only(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.db")
    j.observe(7, spec_cid="bafkreispec", spec_hash="0x" + "ab" * 32)
    j.advance(7, Phase.BIDDING, bid_price=10**30)  # wei beyond 64 bits round-trips
    rec = j.advance(7, Phase.BID, bid_tx="0x01")
    assert rec.phase is Phase.BID and rec.bid_price == 10**30 and rec.spec_cid == "bafkreispec"
    with pytest.raises(IllegalTransition, match="bid -> bidding"):
        j.advance(7, Phase.BIDDING)
    j.advance(7, Phase.LOST, reason="assigned to another provider")
    with pytest.raises(IllegalTransition):
        j.advance(7, Phase.ASSIGNED)
    assert j.active() == []


def test_observe_is_idempotent_and_active_lists_unfinished(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.db")
    j.observe(1)
    j.advance(1, Phase.BIDDING, bid_price=5)
    again = j.observe(1, spec_cid="other")
    assert again.phase is Phase.BIDDING and again.spec_cid is None
    j.observe(2)
    j.advance(2, Phase.SKIPPED, reason="price below policy")
    assert [r.job_id for r in j.active()] == [1]
    assert j.count(Phase.SKIPPED) == 1


def test_unknown_field_and_job_are_refused(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.db")
    with pytest.raises(JournalError, match="not in the journal"):
        j.advance(3, Phase.BID)
    j.observe(3)
    with pytest.raises(JournalError, match="unknown journal field"):
        j.advance(3, Phase.BID, colour="red")


def test_identity_binding_refuses_another_chain(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.db")
    j.bind(31337, "0xAbC", "0x01")
    j.bind(31337, "0xabc", "0x01")  # same identity, any case
    with pytest.raises(JournalError, match="belongs to"):
        j.bind(1, "0xabc", "0x01")


def test_committed_intent_survives_kill_9(tmp_path: Path) -> None:
    """A process that commits an intent and is then SIGKILLed leaves the intent durable."""
    db = tmp_path / "journal.db"
    code = (
        "import os, signal; from pathlib import Path; from agent.journal import Journal, Phase\n"
        f"j = Journal(Path({str(db)!r})); j.observe(9)\n"
        "j.advance(9, Phase.SUBMITTING, result_hash='0xfeed')\n"
        "j.set_cursor(42, '0xbeef'); os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, env=os.environ)
    assert proc.returncode == -9
    j = Journal(db)
    rec = j.get(9)
    assert rec is not None and rec.phase is Phase.SUBMITTING and rec.result_hash == "0xfeed"
    assert j.cursor() == (42, "0xbeef")
