"""`rebuild`: recreate the read models from the event store alone (no RPC). `verify`: compare
the read models of two databases, or of one database and a fresh rebuild, block by block."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from indexer import db, digest, models
from indexer.gctune import batch_gc
from indexer.projection import APPLICATION_NAME, DEFAULT_BATCH, Projector, tracked_position
from indexer.store import projection_tracking


@dataclass(frozen=True, slots=True)
class RebuildReport:
    events: int
    seconds: float
    #: Store position the rebuilt read models include.
    position: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def reset_read_models(engine: Engine) -> None:
    """Empty every read-model table and the projection's tracking row, in one transaction
    (the event store is untouched)."""
    with engine.begin() as conn:
        for table in models.READ_MODEL_TABLES:
            conn.execute(table.delete())
        t = projection_tracking
        conn.execute(t.delete().where(t.c.application_name == APPLICATION_NAME))


#: Indexes a rebuild drops while it fills the read models and creates again at the end.
#: NOTE: an index on random keys (a transaction hash) changes pages all over itself with every
#: batch; kept up row by row it was half the cost of writing the raw event log. Built once at
#: the end from the finished table it costs a sort. A rebuild that dies before the end leaves
#: it missing: `db.upgrade`, which `indexer run` and `indexer rebuild` start with, creates it.
DEFERRED_INDEXES: tuple[sa.Index, ...] = tuple(
    i for i in models.events.indexes if i.name == "ix_events_tx_hash"
)


def rebuild(
    engine: Engine,
    chain_id: int,
    *,
    target: Engine | None = None,
    until: int | None = None,
    batch_events: int = DEFAULT_BATCH,
) -> RebuildReport:
    """Recreate the read models from the event store in `engine`, into `target` (default: the
    same database, whose read models are replaced). `until` stops at that store position.

    Into the same database, readers see the read models emptied with the first batch's commit
    and then filling until it ends; a crash part-way leaves a consistent prefix that `indexer
    run` or another rebuild continues.
    """
    target = engine if target is None else target
    if target is not engine:
        db.upgrade(target)
    started = time.perf_counter()
    projector = Projector(target, chain_id, source=engine, batch_events=batch_events)
    with batch_gc():
        events = projector.run(until=until, start_over=True, drop_indexes=DEFERRED_INDEXES)
    with target.begin() as conn:
        for index in DEFERRED_INDEXES:
            conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
    return RebuildReport(events=events, seconds=time.perf_counter() - started, position=projector.position())


@dataclass(frozen=True, slots=True)
class Difference:
    block: int
    #: "rows": the tables as they are now differ at that block (`table` says which);
    #: "digest": the stored block digests differ (the two folded different histories).
    kind: str
    table: str | None
    left: str | None
    right: str | None


@dataclass(frozen=True, slots=True)
class VerifyReport:
    #: Highest block either side has state for.
    up_to_block: int | None
    first_difference: Difference | None
    left_position: int
    right_position: int

    @property
    def identical(self) -> bool:
        return self.first_difference is None

    def __str__(self) -> str:
        d = self.first_difference
        if d is None:
            return f"identical up to block {self.up_to_block}"
        where = f" in table {d.table}" if d.table else ""
        what = "rows differ" if d.kind == "rows" else "stored block digests differ"
        return f"first difference at block {d.block}: {what}{where}"


def compare(left: Engine, right: Engine) -> VerifyReport:
    """Compare two databases' read models block by block: their stored block digests, and the
    current rows grouped by the block that last changed them. Reports the first block where
    they differ."""
    with left.connect() as lc, right.connect() as rc:
        l_digests, r_digests = digest.stored_digests(lc), digest.stored_digests(rc)
        l_rows, r_rows = digest.row_digests(lc), digest.row_digests(rc)
        l_pos, r_pos = tracked_position(lc), tracked_position(rc)
    first: Difference | None = None
    for block in sorted(set(l_digests) | set(r_digests)):
        a, b = l_digests.get(block), r_digests.get(block)
        if a != b:
            first = Difference(block, "digest", None, a, b)
            break
    for block in sorted(set(l_rows) | set(r_rows)):
        if first is not None and block > first.block:
            break
        a_tables, b_tables = l_rows.get(block, {}), r_rows.get(block, {})
        if a_tables != b_tables:
            table = min(t for t in set(a_tables) | set(b_tables) if a_tables.get(t) != b_tables.get(t))
            first = Difference(block, "rows", table, a_tables.get(table), b_tables.get(table))
            break
    blocks = set(l_digests) | set(r_digests) | set(l_rows) | set(r_rows)
    return VerifyReport(
        up_to_block=max(blocks) if blocks else None,
        first_difference=first,
        left_position=l_pos,
        right_position=r_pos,
    )


def verify(engine: Engine, chain_id: int, *, other: Engine | None = None) -> VerifyReport:
    """Compare the read models in `engine` with `other`, or with a fresh rebuild of its own
    event store (into a temporary SQLite file, up to the same store position)."""
    if other is not None:
        return compare(engine, other)
    with engine.connect() as conn:
        position = tracked_position(conn)
    with tempfile.TemporaryDirectory(prefix="ascendnet-verify-") as tmp:
        scratch = db.make_engine(f"sqlite:///{Path(tmp) / 'rebuild.sqlite3'}")
        try:
            db.upgrade(scratch)
            rebuild(engine, chain_id, target=scratch, until=position)
            return compare(engine, scratch)
        finally:
            scratch.dispose()


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows per read-model table (for reports)."""
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in models.READ_MODEL_TABLES
        }
