"""The agent's crash-safe local journal (SQLite).

Each job the agent touches has one row whose `phase` only moves forward. Before a transaction is
sent, the intent is committed (`bidding`, `submitting`, `finalizing`); after its receipt, the
outcome. A restarted agent reads the journal, checks the chain for every job caught between an
intent and an outcome, and never sends anything twice. The chain is the source of truth: the
journal only remembers what this agent was doing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from agent.errors import AgentError


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


_COLUMNS = [f.name for f in fields(JobRecord)]
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
CREATE TABLE IF NOT EXISTS cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    block INTEGER NOT NULL,
    block_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Journal:
    """A durable record of this agent's work. Thread-safe; each call is one transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the agent journal at {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # NOTE: FULL, not NORMAL: a kill -9 right after a commit must never lose the intent.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.path = path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ identity

    def bind(self, chain_id: int, provider: str, compute_address: str) -> None:
        """Tie the journal to one chain, provider and contract; refuse to mix them up."""
        identity = f"{chain_id}:{provider.lower()}:{compute_address.lower()}"
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta (key, value) VALUES ('identity', ?)", (identity,))
            elif row[0] != identity:
                raise JournalError(
                    f"the journal at {self.path} belongs to {row[0]}, not {identity}. "
                    "Use another data dir for another chain, account or deployment."
                )

    # ------------------------------------------------------------------ cursor

    def cursor(self) -> tuple[int, str] | None:
        with self._lock:
            row = self._db.execute("SELECT block, block_hash FROM cursor WHERE id = 1").fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def set_cursor(self, block: int, block_hash: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO cursor (id, block, block_hash) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET block = excluded.block, block_hash = excluded.block_hash",
                (block, block_hash),
            )

    # ------------------------------------------------------------------ jobs

    def get(self, job_id: int) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return _record(row) if row else None

    def active(self) -> list[JobRecord]:
        """Every job not in a terminal phase, oldest first."""
        marks = ", ".join("?" for _ in TERMINAL)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE phase NOT IN ({marks}) ORDER BY job_id",
                tuple(TERMINAL),
            ).fetchall()
        return [_record(r) for r in rows]

    def count(self, *phases: Phase) -> int:
        marks = ", ".join("?" for _ in phases)
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM jobs WHERE phase IN ({marks})", phases).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        """How many jobs are in each phase (phases with none are left out)."""
        with self._lock:
            rows = self._db.execute("SELECT phase, COUNT(*) FROM jobs GROUP BY phase").fetchall()
        return {str(phase): int(n) for phase, n in rows}

    def observe(self, job_id: int, **values: Any) -> JobRecord:
        """Record a job the first time it is seen; a no-op for a job already journaled."""
        cols = {"job_id": job_id, "phase": Phase.SEEN.value, "updated_at": time.time(), **_encode(values)}
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        with self._lock:
            self._db.execute(f"INSERT OR IGNORE INTO jobs ({names}) VALUES ({marks})", tuple(cols.values()))
        record = self.get(job_id)
        assert record is not None
        return record

    def advance(self, job_id: int, phase: Phase, **values: Any) -> JobRecord:
        """Move a job forward to `phase`, recording `values`. Re-entering the same phase is
        allowed (it updates the values); going backwards, or leaving a terminal phase, is not."""
        with self._lock:
            row = self._db.execute("SELECT phase FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                raise JournalError(f"job {job_id} is not in the journal")
            current = Phase(row[0])
            if current != phase and (current in TERMINAL or _ORDER[phase] < _ORDER[current]):
                raise IllegalTransition(job_id, current, phase)
            cols = {"phase": phase.value, "updated_at": time.time(), **_encode(values)}
            sets = ", ".join(f"{k} = ?" for k in cols)
            self._db.execute(f"UPDATE jobs SET {sets} WHERE job_id = ?", (*cols.values(), job_id))
        record = self.get(job_id)
        assert record is not None
        return record

    def bump_attempts(self, job_id: int) -> int:
        with self._lock:
            self._db.execute("UPDATE jobs SET attempts = attempts + 1 WHERE job_id = ?", (job_id,))
            row = self._db.execute("SELECT attempts FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return int(row[0]) if row else 0


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _COLUMNS or key in ("job_id", "phase", "updated_at"):
            raise JournalError(f"unknown journal field {key}")
        # NOTE: wei amounts overflow SQLite's 64-bit integers, so prices are stored as text.
        out[key] = str(value) if key == "bid_price" and value is not None else value
    return out


def _record(row: tuple[Any, ...]) -> JobRecord:
    data = dict(zip(_COLUMNS, row, strict=True))
    data["phase"] = Phase(data["phase"])
    if data["bid_price"] is not None:
        data["bid_price"] = int(data["bid_price"])
    return JobRecord(**data)
