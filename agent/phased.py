"""What the agent's two crash-safe journals share: one SQLite file whose rows each carry a `phase`
that only moves forward, a chain cursor, and the identity the file is bound to.

`agent/journal.py` (jobs) and `agent/delivery.py` (licence deliveries) subclass
`PhasedJournal` with their table, record type and phase order. Every method is one transaction,
and the file runs with `synchronous=FULL`, so a `kill -9` right after an intent was committed
never loses it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from agent.errors import AgentError

R = TypeVar("R")

_COMMON_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    block INTEGER NOT NULL,
    block_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class PhasedJournal(Generic[R]):
    """A durable record per key (a job id, a licence id) in one SQLite table. Thread-safe."""

    #: The record dataclass; its first three fields are the key, `phase` and `updated_at`.
    record_type: ClassVar[type[Any]]
    phase_type: ClassVar[type[StrEnum]]
    table: ClassVar[str]
    #: Table-specific DDL (the cursor and meta tables are added here).
    schema: ClassVar[str]
    terminal: ClassVar[frozenset[Any]]
    #: Rank of each phase: a row may stay in its phase or move to a higher rank, never back.
    order: ClassVar[Mapping[Any, int]]
    #: How messages name the file ("agent journal") and a row ("job").
    title: ClassVar[str]
    noun: ClassVar[str]
    error: ClassVar[type[AgentError]]

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise self.error(f"cannot open the {self.title} at {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # NOTE: FULL, not NORMAL: a kill -9 right after a commit must never lose the intent.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(self.schema + _COMMON_SCHEMA)
        self.path = path
        self._columns = [f.name for f in fields(self.record_type)]
        self._key = self._columns[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ identity

    def bind(self, chain_id: int, account: str, contract_address: str) -> None:
        """Tie the file to one chain, account and contract; refuse to mix them up."""
        identity = f"{chain_id}:{account.lower()}:{contract_address.lower()}"
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta (key, value) VALUES ('identity', ?)", (identity,))
            elif row[0] != identity:
                raise self.error(
                    f"the {self.title} at {self.path} belongs to {row[0]}, not {identity}. "
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

    # ------------------------------------------------------------------ rows

    def get(self, key: int) -> R | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(self._columns)} FROM {self.table} WHERE {self._key} = ?", (key,)
            ).fetchone()
        return self._record(row) if row else None

    def active(self) -> list[R]:
        """Every row not in a terminal phase, oldest first."""
        marks = ", ".join("?" for _ in self.terminal)
        return self._select(f"WHERE phase NOT IN ({marks})", tuple(self.terminal))

    def all(self) -> list[R]:
        return self._select("", ())

    def count(self, *phases: StrEnum) -> int:
        marks = ", ".join("?" for _ in phases)
        with self._lock:
            row = self._db.execute(
                f"SELECT COUNT(*) FROM {self.table} WHERE phase IN ({marks})", phases
            ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        """How many rows are in each phase (phases with none are left out)."""
        with self._lock:
            rows = self._db.execute(f"SELECT phase, COUNT(*) FROM {self.table} GROUP BY phase").fetchall()
        return {str(phase): int(n) for phase, n in rows}

    def observe(self, key: int, phase: StrEnum | None = None, **values: Any) -> R:
        """Record a row the first time it is seen (in its first phase unless told otherwise);
        a no-op for a row already journaled."""
        first = phase if phase is not None else next(iter(self.phase_type))
        cols = {self._key: key, "phase": first.value, "updated_at": time.time(), **self._encode(values)}
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        with self._lock:
            self._db.execute(
                f"INSERT OR IGNORE INTO {self.table} ({names}) VALUES ({marks})", tuple(cols.values())
            )
        return self._require(key)

    def advance(self, key: int, phase: StrEnum, **values: Any) -> R:
        """Move a row forward to `phase`, recording `values`. Re-entering the same phase is
        allowed (it updates the values); going backwards, or leaving a terminal phase, is not."""
        with self._lock:
            row = self._db.execute(f"SELECT phase FROM {self.table} WHERE {self._key} = ?", (key,)).fetchone()
            if row is None:
                raise self.error(f"{self.noun} {key} is not in the {self.title}")
            current = self.phase_type(row[0])
            if current != phase and (current in self.terminal or self.order[phase] < self.order[current]):
                raise self._illegal(key, current, phase)
            cols = {"phase": phase.value, "updated_at": time.time(), **self._encode(values)}
            sets = ", ".join(f"{k} = ?" for k in cols)
            self._db.execute(f"UPDATE {self.table} SET {sets} WHERE {self._key} = ?", (*cols.values(), key))
        return self._require(key)

    # ------------------------------------------------------------------ hooks and helpers

    def _illegal(self, key: int, current: StrEnum, wanted: StrEnum) -> AgentError:
        return self.error(f"{self.noun} {key}: the {self.title} refuses {current} -> {wanted}")

    def _encode(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check the field names; subclasses also convert values SQLite cannot hold."""
        for name in values:
            if name not in self._columns or name in (self._key, "phase", "updated_at"):
                raise self.error(f"unknown {self.title} field {name}")
        return values

    def _decode(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def _record(self, row: tuple[Any, ...]) -> R:
        data = dict(zip(self._columns, row, strict=True))
        data["phase"] = self.phase_type(data["phase"])
        record: R = self.record_type(**self._decode(data))
        return record

    def _select(self, where: str, params: tuple[Any, ...]) -> list[R]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(self._columns)} FROM {self.table} {where} ORDER BY {self._key}", params
            ).fetchall()
        return [self._record(r) for r in rows]

    def _require(self, key: int) -> R:
        record = self.get(key)
        if record is None:  # NOTE: rows are never deleted, so this means a corrupted file
            raise self.error(f"{self.noun} {key} vanished from the {self.title} at {self.path}")
        return record
