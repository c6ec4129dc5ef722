"""The agent's crash-safe local journal (SQLite).

Each job the agent touches has one row whose `phase` only moves forward. Before a transaction is
sent, the intent is committed (`bidding`, `submitting`, `finalizing`); after its receipt, the
outcome. A restarted agent reads the journal, checks the chain for every job caught between an
intent and an outcome, and never sends anything twice. The chain is the source of truth: the
journal only remembers what this agent was doing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agent.errors import AgentError
from agent.phased import PhasedJournal


class Phase(StrEnum):
    SEEN = "seen"  # JobPosted observed; not yet decided
    SKIPPED = "skipped"  # decided not to bid (reason recorded)
    BIDDING = "bidding"  # placeBid intent committed, tx maybe sent
    BID = "bid"  # placeBid mined
    ASSIGNED = "assigned"  # JobAssigned to us observed
    RUNNING = "running"  # container started
    STORED = "stored"  # output packed, stored, hash known
    SUBMITTING = "submitting"  # submitResult intent committed
    SUBMITTED = "submitted"  # submitResult mined; waiting for the challenge window
    FINALIZING = "finalizing"  # finalize intent committed
    DONE = "done"  # Completed (by us, the client or anyone)
    LOST = "lost"  # assigned to another provider, cancelled or expired
    FAILED = "failed"  # cannot complete (spec invalid after assignment, deadline passed, ...)


TERMINAL = frozenset({Phase.SKIPPED, Phase.DONE, Phase.LOST, Phase.FAILED})
#: Phases in which a transaction may have been sent but its outcome is not recorded.
IN_FLIGHT = frozenset({Phase.BIDDING, Phase.SUBMITTING, Phase.FINALIZING})


class JournalError(AgentError):
    """The journal cannot be opened or a transition is not allowed."""


class IllegalTransition(JournalError):
    def __init__(self, job_id: int, current: Phase, wanted: Phase) -> None:
        self.job_id = job_id
        self.current = current
        self.wanted = wanted
        super().__init__(
            f"job {job_id}: the journal refuses {current} -> {wanted} (phases only move forward)"
        )


_ORDER = {
    Phase.SEEN: 0,
    Phase.BIDDING: 1,
    Phase.BID: 2,
    Phase.ASSIGNED: 3,
    Phase.RUNNING: 4,
    Phase.STORED: 5,
    Phase.SUBMITTING: 6,
    Phase.SUBMITTED: 7,
    Phase.FINALIZING: 8,
    Phase.DONE: 9,
    Phase.SKIPPED: 9,
    Phase.LOST: 9,
    Phase.FAILED: 9,
}


@dataclass(frozen=True)
class JobRecord:
    job_id: int
    phase: Phase
    updated_at: float
    spec_cid: str | None = None
    spec_hash: str | None = None
    bid_price: int | None = None
    bid_tx: str | None = None
    result_hash: str | None = None
    result_cid: str | None = None
    submit_tx: str | None = None
    finalize_tx: str | None = None
    reason: str | None = None
    attempts: int = 0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY,
    phase TEXT NOT NULL,
    updated_at REAL NOT NULL,
    spec_cid TEXT,
    spec_hash TEXT,
    bid_price TEXT,
    bid_tx TEXT,
    result_hash TEXT,
    result_cid TEXT,
    submit_tx TEXT,
    finalize_tx TEXT,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_phase ON jobs (phase);
"""


class Journal(PhasedJournal[JobRecord]):
    """A durable record of this agent's work. Thread-safe; each call is one transaction."""

    record_type = JobRecord
    phase_type = Phase
    table = "jobs"
    schema = _SCHEMA
    terminal = TERMINAL
    order = _ORDER
    title = "journal"
    noun = "job"
    error = JournalError

    def bump_attempts(self, job_id: int) -> int:
        with self._lock:
            self._db.execute("UPDATE jobs SET attempts = attempts + 1 WHERE job_id = ?", (job_id,))
            row = self._db.execute("SELECT attempts FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return int(row[0]) if row else 0

    def _illegal(self, key: int, current: StrEnum, wanted: StrEnum) -> AgentError:
        return IllegalTransition(key, Phase(current), Phase(wanted))

    def _encode(self, values: dict[str, Any]) -> dict[str, Any]:
        # NOTE: wei amounts overflow SQLite's 64-bit integers, so prices are stored as text.
        return {
            k: str(v) if k == "bid_price" and v is not None else v for k, v in super()._encode(values).items()
        }

    def _decode(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["bid_price"] is not None:
            data["bid_price"] = int(data["bid_price"])
        return data
