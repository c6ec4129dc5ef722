"""The projector: folds the event store into the read models, exactly once.

Each step reads the events after the tracked position and, in ONE transaction on the read-model
database, writes the rows the folds changed, the raw event log, the undo log, the block digests
and the new tracking position (the `eventsourcing` library's tracking recorder). A crash at any
instant leaves either all of a step or none of it, so no event is lost or applied twice.

Reorgs (Ponder's undo log): before a block first changes a row, the row's before-image is kept
in `undo_log` under that block. A `LogOrphaned` event for blocks above `ancestor` restores the
before-images of those blocks, newest first, drops their undo entries and digests, and flags the
orphaned raw events; the canonical blocks appended after it then fold normally. Blocks at or
below the finalized block need no undo entries (`prune_undo` drops old ones).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from eventsourcing.persistence import Tracking
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from indexer import bulk, digest, folds, models
from indexer.domain import LogIndexed, LogOrphaned, StoreEvent
from indexer.models import ROW_BY_TABLE, TABLES, Row, from_mapping, row_fields, values_getter
from indexer.store import EventStore, projection_tracking, store_blocks, tracking_recorder_for

#: The tracking name of the read-model projection.
APPLICATION_NAME = "readmodels"
DEFAULT_BATCH = 5_000
#: Rows a projector run keeps cached between batches (bounds its memory).
MAX_CACHED_ROWS = 50_000

R = TypeVar("R", bound=Row)
_WRITERS = {kind: bulk.TableWriter(table, kind.KEY) for kind, table in TABLES.items()}
_EVENTS = bulk.TableWriter(models.events, ("id",))
_DIGESTS = bulk.TableWriter(models.block_digests, ("block_number",))
RowRef = tuple[type[Row], tuple[Any, ...]]
#: Canonical JSON (sorted keys) of plain JSON values: args, row keys, before-images.
_json = msgspec.json.Encoder(order="sorted")


def tracked_position(connection: Connection) -> int:
    """The notification id the read models include everything up to (0: nothing yet)."""
    t = projection_tracking
    found = connection.execute(
        sa.select(t.c.notification_id).where(t.c.application_name == APPLICATION_NAME)
    ).scalar()
    return int(found or 0)


def finalized_block(connection: Connection) -> int | None:
    found = connection.execute(sa.select(models.indexer_status.c.finalized_block)).scalar()
    return None if found is None else int(found)


def prune_undo(engine: Engine, below_block: int) -> int:
    """Drop undo entries of blocks below `below_block` (final blocks are never revisited).
    Returns how many were dropped."""
    with engine.begin() as conn:
        result = conn.execute(models.undo_log.delete().where(models.undo_log.c.block_number < below_block))
        return int(result.rowcount or 0)


class Projector:
    """Folds the event store of `chain_id` into the read models in `engine`.

    `source` is the database holding the event store when it is not `engine` (rebuilding into
    another database). Undo entries are kept for blocks above the finalized block recorded in
    the source's `indexer_status` (all blocks when there is none), and for every block a reorg
    has orphaned, so that a replay undoes exactly what the live indexer undid.
    """

    def __init__(
        self,
        engine: sa.Engine,
        chain_id: int,
        *,
        source: sa.Engine | None = None,
        batch_events: int = DEFAULT_BATCH,
    ) -> None:
        self.engine = engine
        self.chain_id = chain_id
        self.source = source if source is not None else engine
        self.store = EventStore(self.source, chain_id)
        self.tracking = tracking_recorder_for(engine)
        self.batch_events = batch_events
        # Rows stay cached between batches and runs: they are what this projector's last
        # transaction committed. The cache is trusted only while the tracked position is the
        # one this projector left (a rebuild or another writer moves it) and dropped on failure.
        self._cache = _RowCache()
        self._cache_at: int | None = None

    def position(self) -> int:
        with self.engine.connect() as conn:
            return tracked_position(conn)

    def run(self, *, max_events: int | None = None, until: int | None = None) -> int:
        """Fold the store's events after the tracked position into the read models, one batch
        per transaction, until caught up (or about `max_events` were folded: a batch always
        ends at a block boundary; or store position `until` is reached). Returns the number of
        events processed."""
        with self.source.connect() as conn:
            floor = finalized_block(conn)
            orphaned = self._ever_orphaned(conn)
        total = 0
        cache = self._cache
        try:
            while max_events is None or total < max_events:
                limit = (
                    self.batch_events if max_events is None else min(self.batch_events, max_events - total)
                )
                done = self._step(limit, floor, orphaned, until, cache)
                if done == 0:
                    break
                total += done
                if len(cache.rows) > MAX_CACHED_ROWS:
                    cache.clear()
        except BaseException:
            cache.clear()
            self._cache_at = None
            raise
        return total

    # ------------------------------------------------------------ one transaction

    def _step(
        self, limit: int, floor: int | None, orphaned: set[str], until: int | None, cache: _RowCache
    ) -> int:
        with Session(self.engine) as session, session.begin():
            conn = session.connection()
            position = tracked_position(conn)
            if position != self._cache_at:
                cache.clear()
            batch = self._read(conn, position, limit, until)
            if not batch:
                self._cache_at = position
                return 0
            writer = _Batch(conn, cache, floor=-1 if floor is None else floor, orphaned=orphaned)
            for run in _runs(batch):
                if isinstance(run[0][1], LogIndexed):
                    indexed = [(nid, e) for nid, e in run if isinstance(e, LogIndexed)]
                    writer.prefetch([e for _, e in indexed])
                    for nid, li in indexed:
                        writer.fold(nid, li)
                else:
                    for nid, lo in run:
                        assert isinstance(lo, LogOrphaned)
                        writer.orphan(nid, lo)
            writer.flush()
            # NOTE: the library's tracking recorder refuses a position it already has
            # (IntegrityError), the last guard against folding a batch twice.
            self.tracking._insert_tracking(session, Tracking(APPLICATION_NAME, batch[-1][0]))
        self._cache_at = batch[-1][0]
        return len(batch)

    def _read(
        self, conn: Connection, position: int, limit: int, until: int | None
    ) -> list[tuple[int, StoreEvent]]:
        """Up to `limit` events after `position`, ending at a block boundary (a block's events
        are never split between two transactions, so its digest sees all of them)."""
        read_conn = conn if self.source is self.engine else None

        def fetch(after: int, n: int) -> list[tuple[int, StoreEvent]]:
            if read_conn is not None:
                return self.store.events_on(read_conn, after, n, until)
            return self.store.events(after, n, until)

        batch = fetch(position, limit)
        if len(batch) < limit or not isinstance(batch[-1][1], LogIndexed):
            return batch
        last = batch[-1][1]
        cut = len(batch)
        while cut > 0 and _same_block(batch[cut - 1][1], last):
            cut -= 1
        if cut > 0:
            return batch[:cut]
        # One block larger than the batch: take all of it.
        while True:
            more = fetch(batch[-1][0], limit)
            same = [x for x in more if _same_block(x[1], last)]
            batch.extend(same)
            if len(same) < len(more) or len(more) < limit:
                return batch

    def _ever_orphaned(self, conn: Connection) -> set[str]:
        t = store_blocks
        return set(
            conn.execute(
                sa.select(t.c.hash).where(t.c.chain_id == self.chain_id, t.c.orphaned_by.is_not(None))
            ).scalars()
        )


def _runs(batch: list[tuple[int, StoreEvent]]) -> list[list[tuple[int, StoreEvent]]]:
    """Split a batch into runs of consecutive events of the same kind."""
    runs: list[list[tuple[int, StoreEvent]]] = []
    for item in batch:
        if runs and type(runs[-1][-1][1]) is type(item[1]):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _same_block(event: StoreEvent, block: LogIndexed) -> bool:
    return (
        isinstance(event, LogIndexed)
        and event.block_number == block.block_number
        and event.block_hash == block.block_hash
    )


@dataclass
class _Block:
    number: int
    hash: str
    events: int
    changed: dict[RowRef, None]
    raw_lines: list[str]
    keep_undo: bool


class _RowCache:
    def __init__(self) -> None:
        #: Current value of every row looked at (None: no such row).
        self.rows: dict[RowRef, Row | None] = {}
        #: Whether each cached row exists in the database (decides INSERT or UPDATE); rows a
        #: fold created without looking are absent (written with an upsert).
        self.in_db: dict[RowRef, bool] = {}

    def clear(self) -> None:
        self.rows.clear()
        self.in_db.clear()


class _Peek:
    """The cached rows as a folds `State`, never loading (None when absent or not cached)."""

    def __init__(self, cache: dict[RowRef, Row | None]) -> None:
        self.cache = cache

    def get(self, kind: type[R], key: tuple[Any, ...]) -> R | None:
        return self.cache.get((kind, key))  # type: ignore[return-value]


class _Batch:
    """The in-memory state of one projector transaction: a row cache over the read models
    (the folds' `State`), the pending writes, undo entries and digests."""

    def __init__(self, conn: Connection, cache: _RowCache, *, floor: int, orphaned: set[str]) -> None:
        self.conn = conn
        self.floor = floor
        self.orphaned = orphaned
        self.row_cache = cache
        self.cache = cache.rows
        self.in_db = cache.in_db
        self.dirty: dict[RowRef, None] = {}
        self.raw: list[tuple[Any, ...]] = []
        self.orphan_marks: list[dict[str, Any]] = []
        self.undo: list[dict[str, Any]] = []
        self.pending_before: list[tuple[dict[str, Any], RowRef]] = []
        self.digests: list[tuple[Any, ...]] = []
        self.block: _Block | None = None
        #: The ancestor the read models were last rolled back to, until the next fold.
        self.undone_to: int | None = None
        self.last_digest = self._load_last_digest()

    # ------------------------------------------------------------ the folds' State

    def get(self, kind: type[R], key: tuple[Any, ...]) -> R | None:
        ref: RowRef = (kind, key)
        try:
            return self.cache[ref]  # type: ignore[return-value]
        except KeyError:
            self._load(kind, [key])
            return self.cache[ref]  # type: ignore[return-value]

    def prefetch(self, events: Sequence[LogIndexed]) -> None:
        """Load the rows a run of events will look up, a few queries per table: first those the
        events name, then those found through them (a job's provider, a prompt's listing)."""
        peek = _Peek(self.cache)
        for reads in (folds.reads, lambda e: folds.reads_through(peek, e)):
            wanted: dict[type[Row], set[tuple[Any, ...]]] = {}
            for event in events:
                for kind, key in reads(event):
                    if (kind, key) not in self.cache:
                        wanted.setdefault(kind, set()).add(key)
            for kind, keys in wanted.items():
                self._load(kind, list(keys))

    def _fetch(self, kind: type[Row], keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], Row]:
        """The rows with these keys as the database holds them (absent ones left out)."""
        table = TABLES[kind]
        key_cols = [table.c[k] for k in kind.KEY]
        out: dict[tuple[Any, ...], Row] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            if len(key_cols) == 1:
                cond = key_cols[0].in_([k[0] for k in chunk])
            else:
                cond = sa.tuple_(*key_cols).in_(chunk)
            for r in self.conn.execute(sa.select(table).where(cond)).mappings():
                row = from_mapping(kind, r)
                out[row.key()] = row
        return out

    def _load(self, kind: type[Row], keys: list[tuple[Any, ...]]) -> None:
        found = self._fetch(kind, keys)
        for key in keys:
            ref = (kind, key)
            row = found.get(key)
            self.cache[ref] = row
            self.in_db[ref] = row is not None

    # ------------------------------------------------------------ folding

    def fold(self, nid: int, event: LogIndexed) -> None:
        block = self.block
        if block is None or block.number != event.block_number or block.hash != event.block_hash:
            self._end_block()
            block = self.block = _Block(
                number=event.block_number,
                hash=event.block_hash,
                events=0,
                changed={},
                raw_lines=[],
                keep_undo=event.block_number > self.floor or event.block_hash in self.orphaned,
            )
        block.events += 1
        # The raw event row and its digest line share these fields, in this order.
        line = (
            event.chain_id,
            event.block_number,
            event.block_hash,
            event.block_timestamp,
            event.tx_hash,
            event.log_index,
            event.contract,
            event.address,
            event.event,
            _json.encode(event.args).decode(),
        )
        self.raw.append((nid, *line, False, None))  # not orphaned, by no reorg
        block.raw_lines.append(digest.raw_line(*line))
        self.undone_to = None
        for row in folds.apply(self, event):
            ref: RowRef = (type(row), row.key())
            if ref not in block.changed:
                block.changed[ref] = None
                if block.keep_undo:
                    entry: dict[str, Any] = {
                        "block_number": block.number,
                        "tbl": ref[0].TABLE,
                        "row_key": _json.encode(ref[1]).decode(),
                        "before": None,
                    }
                    if ref in self.cache:
                        entry["before"] = _before_image(self.cache[ref])
                    else:
                        # Never looked at in this run, so the database still holds its
                        # before-image: read it with the others at flush, in one query.
                        self.pending_before.append((entry, ref))
                    self.undo.append(entry)
            self.cache[ref] = row
            self.dirty[ref] = None

    def _end_block(self) -> None:
        block = self.block
        if block is None:
            return
        lines = list(block.raw_lines)
        for ref in block.changed:
            row = self.cache[ref]
            assert row is not None  # folds never delete rows
            lines.append(digest.row_line(row))
        self.last_digest = digest.chain(self.last_digest, lines)
        self.digests.append((block.number, block.hash, self.last_digest, block.events, len(block.changed)))
        self.block = None

    # ------------------------------------------------------------ reorgs

    def orphan(self, nid: int, event: LogOrphaned) -> None:
        if self.undone_to != event.ancestor:
            self.flush()
            self._undo_above(event.ancestor)
            self.undone_to = event.ancestor
        self.orphan_marks.append(
            {
                "_k_block_hash": event.block_hash,
                "_k_tx_hash": event.tx_hash,
                "_k_log_index": event.log_index,
                "_by": nid,
            }
        )

    def _undo_above(self, ancestor: int) -> None:
        u = models.undo_log
        entries = self.conn.execute(
            sa.select(u.c.tbl, u.c.row_key, u.c.before)
            .where(u.c.block_number > ancestor)
            .order_by(u.c.block_number.desc(), u.c.id.desc())
        ).all()
        if entries:
            # Newest first: the last image written per row is its state at the end of `ancestor`.
            images: dict[tuple[str, str], str | None] = {}
            for tbl, row_key, before in entries:
                images[(tbl, row_key)] = before
            by_table: dict[str, list[tuple[list[Any], str | None]]] = {}
            for (tbl, row_key), before in images.items():
                by_table.setdefault(tbl, []).append((json.loads(row_key), before))
            for tbl, items in by_table.items():
                kind = ROW_BY_TABLE[tbl]
                table = TABLES[kind]
                key_cols = kind.KEY
                self.conn.execute(
                    table.delete().where(*(table.c[k] == sa.bindparam(f"_k_{k}") for k in key_cols)),
                    [{f"_k_{k}": v for k, v in zip(key_cols, key, strict=True)} for key, _ in items],
                )
                restored = [_decode_row(kind, before) for _, before in items if before is not None]
                if restored:
                    self.conn.execute(table.insert(), restored)
            self.conn.execute(u.delete().where(u.c.block_number > ancestor))
        self.conn.execute(models.block_digests.delete().where(models.block_digests.c.block_number > ancestor))
        self.row_cache.clear()
        self.last_digest = self._load_last_digest()

    # ------------------------------------------------------------ writing

    def flush(self) -> None:
        """Write everything pending into the transaction (not committing it)."""
        self._end_block()
        conn = self.conn
        if self.pending_before:
            wanted: dict[type[Row], list[tuple[Any, ...]]] = {}
            for _, (kind, key) in self.pending_before:
                wanted.setdefault(kind, []).append(key)
            found = {kind: self._fetch(kind, keys) for kind, keys in wanted.items()}
            for entry, (kind, key) in self.pending_before:
                before = found[kind].get(key)
                entry["before"] = _before_image(before)
                self.in_db[(kind, key)] = before is not None
            self.pending_before = []
        if self.raw:
            _EVENTS.insert(conn, self.raw)
            self.raw = []
        if self.orphan_marks:
            e = models.events.c
            mark = (
                models.events.update()
                .where(
                    e.block_hash == sa.bindparam("_k_block_hash"),
                    e.tx_hash == sa.bindparam("_k_tx_hash"),
                    e.log_index == sa.bindparam("_k_log_index"),
                    e.orphaned.is_(False),
                )
                .values(orphaned=True, orphaned_by=sa.bindparam("_by"))
            )
            conn.execute(mark, self.orphan_marks)
            self.orphan_marks = []
        inserts: dict[type[Row], list[tuple[Any, ...]]] = {}
        updates: dict[type[Row], list[tuple[Any, ...]]] = {}
        upserts: dict[type[Row], list[tuple[Any, ...]]] = {}
        cache, in_db = self.cache, self.in_db
        for ref in self.dirty:
            row = cache[ref]
            assert row is not None
            kind = ref[0]
            exists = in_db.get(ref)
            # Created by a fold without looking (and no undo needed): may or may not exist.
            target = updates if exists else upserts if exists is None else inserts
            target.setdefault(kind, []).append(values_getter(kind)(row))
            in_db[ref] = True
        self.dirty = {}
        for kind, rows in inserts.items():
            _WRITERS[kind].insert(conn, rows)
        for kind, rows in updates.items():
            _WRITERS[kind].update(conn, rows)
        for kind, rows in upserts.items():
            _WRITERS[kind].upsert(conn, rows)
        if self.undo:
            conn.execute(models.undo_log.insert(), self.undo)
            self.undo = []
        if self.digests:
            _DIGESTS.insert(conn, self.digests)
            self.digests = []

    def _load_last_digest(self) -> str:
        t = models.block_digests
        found = self.conn.execute(sa.select(t.c.digest).order_by(t.c.block_number.desc()).limit(1)).scalar()
        return found or digest.GENESIS


def _before_image(row: Row | None) -> str | None:
    """An undo entry's before-image: the row's values in column order, as JSON."""
    if row is None:
        return None
    cls = type(row)
    return _json.encode(digest.json_values(cls, values_getter(cls)(row))).decode()


def _decode_row(kind: type[Row], before: str) -> dict[str, Any]:
    values: dict[str, Any] = dict(zip(row_fields(kind), json.loads(before), strict=True))
    # Bytes columns were written as 0x-hex; give them back as bytes.
    for name in row_fields(kind):
        column = TABLES[kind].c[name]
        if isinstance(column.type, sa.LargeBinary) and isinstance(values.get(name), str):
            values[name] = bytes.fromhex(values[name][2:])
    return values


def fold_events(state: folds.State, events: Sequence[LogIndexed]) -> list[Row]:
    """Every row change `events` make, in order (a pure helper for tests and tools)."""
    out: list[Row] = []
    for event in events:
        out.extend(folds.apply(state, event))
    return out
