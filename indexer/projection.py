"""The projector: folds the event store into the read models, exactly once.

Each step reads the events after the tracked position and, in ONE transaction on the read-model
database, writes the rows the folds changed, the raw event log, the undo log, the block digests
and the new tracking position (the `eventsourcing` library's tracking recorder). A crash at any
instant leaves either all of a step or none of it, so no event is lost or applied twice.

Steps are pipelined: the folding thread reads and folds batch n+1 while a writer process commits
batch n (its writes are built beforehand, indexer/bulk.py). The folding thread keeps every row
it changed in its cache until the database holds it, so it never reads a row the writer has
not committed yet; a batch that carries a reorg waits for the writer and runs on its own.

Reorgs (Ponder's undo log): before a block first changes a row, the row's before-image is kept
in `undo_log` under that block. A `LogOrphaned` event for blocks above `ancestor` restores the
before-images of those blocks, newest first, drops their undo entries and digests, and flags the
orphaned raw events; the canonical blocks appended after it then fold normally. Blocks at or
below the finalized block need no undo entries (`prune_undo` drops old ones).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from eventsourcing.persistence import Tracking
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import Session

from indexer import argforms, bulk, db, digest, folds, models
from indexer.domain import FoldEvent, IndexedLog, LogOrphaned
from indexer.models import ROW_BY_TABLE, TABLES, Row, row_fields, values_getter
from indexer.store import EventStore, projection_tracking, store_blocks, tracking_recorder_for

#: The tracking name of the read-model projection.
APPLICATION_NAME = "readmodels"
DEFAULT_BATCH = 5_000
#: Rows a projector run keeps cached between batches (bounds its memory).
MAX_CACHED_ROWS = 50_000
#: Events behind the store from which a run reads ahead on a thread and writes in a writer
#: process (see `_Writer`).
PIPELINE_EVENTS = 2 * DEFAULT_BATCH
#: Events the writer puts in one transaction at most (see `_Writer`).
COMMIT_EVENTS = 20_000
#: SQLite: WAL growth after which the writer checkpoints (see `_Writer`).
WRITER_CHECKPOINT_BYTES = 32 * 1024 * 1024
#: The interpreter's switch interval while a writer thread commits (see `_Writer`).
WRITER_SWITCH_INTERVAL = 0.000_1
#: Whether the writer is a forked process (else a thread; see `_Writer`).
WRITER_PROCESS = sys.platform == "linux"
#: Batches sent to the writer process before the folding thread waits for the first of them.
WRITER_DEPTH = 2
#: SQLite: once the write-ahead log is larger, the next batch waits for the writer and the WAL
#: is checkpointed and truncated (see `_checkpoint`).
WAL_TRUNCATE_BYTES = 256 * 1024 * 1024

R = TypeVar("R", bound=Row)
_WRITERS = {kind: bulk.TableWriter(table, kind.KEY) for kind, table in TABLES.items()}
_EVENTS = bulk.TableWriter(models.events, ("id",))
_DIGESTS = bulk.TableWriter(models.block_digests, ("block_number",))
_UNDO = bulk.TableWriter(models.undo_log, (), ("block_number", "tbl", "row_key", "before"))
RowRef = tuple[type[Row], tuple[Any, ...]]
#: Row class -> its key, as a tuple.
_KEY_OF = {kind: kind.key_getter() for kind in TABLES}
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


class _FoldState:
    """What a projector carries from one batch to the next: the rows it has looked at or
    written, whether each is in the database, the last block digest, and the store position all
    of it reflects. It is trusted only while the tracked position is `position` (a rebuild or
    another writer moves it) and dropped on any failure."""

    def __init__(self) -> None:
        #: Current value of every row looked at (None: no such row).
        self.rows: dict[RowRef, Row | None] = {}
        #: Whether each cached row exists in the database (decides INSERT or UPDATE); rows a
        #: fold created without looking are absent (written with an upsert).
        self.in_db: dict[RowRef, bool] = {}
        self.last_digest: str | None = None
        self.position: int | None = None
        #: Every row the read models hold is in `rows` (they were empty at position 0 and
        #: nothing was dropped since): a row not cached does not exist, no need to look.
        self.complete = False

    def drop_rows(self) -> None:
        self.rows.clear()
        self.in_db.clear()
        self.complete = False

    def reset(self) -> None:
        self.drop_rows()
        self.last_digest = None
        self.position = None


class Projector:
    """Folds the event store of `chain_id` into the read models in `engine`.

    `source` is the database holding the event store when it is not `engine` (rebuilding into
    another database). Undo entries are kept for blocks above the finalized block recorded in
    the source's `indexer_status` (all blocks when there is none), and for every block a reorg
    has orphaned, so that a replay undoes exactly what the live indexer undid.

    Batches are pipelined: while one batch's writes and tracking position commit on a writer
    thread, the next batch is read and folded (`pipeline=False` does each batch in turn). A
    batch that carries a reorg runs alone, after the one before it has committed.
    """

    def __init__(
        self,
        engine: sa.Engine,
        chain_id: int,
        *,
        source: sa.Engine | None = None,
        batch_events: int = DEFAULT_BATCH,
        pipeline: bool = True,
    ) -> None:
        self.engine = engine
        self.chain_id = chain_id
        self.source = source if source is not None else engine
        self.store = EventStore(self.source, chain_id)
        self.tracking = tracking_recorder_for(engine)
        self.batch_events = batch_events
        # NOTE: an in-memory SQLite database is one connection, which two threads cannot share.
        self.pipeline = pipeline and not (_in_memory(engine) or _in_memory(self.source))
        self._state = _FoldState()

    def position(self) -> int:
        with self.engine.connect() as conn:
            return tracked_position(conn)

    def run(
        self,
        *,
        max_events: int | None = None,
        until: int | None = None,
        start_over: bool = False,
        drop_indexes: Sequence[sa.Index] = (),
    ) -> int:
        """Fold the store's events after the tracked position into the read models, one batch
        per transaction, until caught up (or about `max_events` were folded: a batch always
        ends at a block boundary; or store position `until` is reached). Returns the number of
        events processed. Everything it folded is committed when it returns.

        `start_over` folds from the start of the store instead: the read models are emptied
        (and `drop_indexes` dropped) in the first batch's transaction, so nothing commits an
        empty half-way state, and the first batch folds while that runs."""
        with self.source.connect() as conn:
            found = finalized_block(conn)
            orphaned = self._ever_orphaned(conn)
            latest = self.store.recorder.max_notification_id_on(conn)
        floor = -1 if found is None else found
        state = self._state
        total = 0
        try:
            with contextlib.ExitStack() as stack:
                conns = stack.enter_context(_Connections(self.source, self.engine))
                with conns.rows.begin():
                    position = 0 if start_over else tracked_position(conns.rows)
                # NOTE: a reader and a writer only for a long catch-up: a few blocks are folded
                # sooner alone.
                pipelined = self.pipeline and latest - position >= PIPELINE_EVENTS
                writer = stack.enter_context(_Writer(self, enabled=pipelined, start_over=start_over))
                pending = _start_over(drop_indexes) if start_over else []
                with conns.rows.begin():
                    if start_over:
                        state.reset()
                        state.position, state.complete, state.last_digest = 0, True, digest.GENESIS
                    if position != state.position:
                        state.reset()
                        state.position = position
                        # NOTE: at position 0 the read models are empty (migrations create them
                        # so, a rebuild empties them with the position in one transaction).
                        state.complete = position == 0
                    if state.last_digest is None:
                        state.last_digest = _last_digest(conns.rows)
                stream = stack.enter_context(_Stream(self, conns, position, until, ahead=pipelined))
                while max_events is None or total < max_events:
                    limit = (
                        self.batch_events
                        if max_events is None
                        else min(self.batch_events, max_events - total)
                    )
                    with conns.begin():
                        batch = stream.take(limit)
                        reorg = any(isinstance(e, LogOrphaned) for _, e in batch)
                        work = None
                        if batch and writer.enabled and not reorg:
                            work = _Batch(
                                conns.rows, state, floor=floor, orphaned=orphaned, dialect=self.engine.dialect
                            )
                            _fold_all(work, batch)
                            work.flush()
                    if not batch:
                        break
                    if work is not None:
                        writer.submit([*pending, *work.writes], batch[-1][0], len(batch))
                        pending = []
                        if _wal_bytes(self.engine) > WAL_TRUNCATE_BYTES:
                            writer.drain()
                            _checkpoint(self.engine)
                    else:
                        writer.drain()
                        if pending:
                            _write_alone(self.engine, pending)
                            pending = []
                        if not self._step_alone(batch, position, floor, orphaned):
                            # Another writer moved the tracked position: start again from it.
                            state.reset()
                            with conns.rows.begin():
                                position = state.position = tracked_position(conns.rows)
                                state.last_digest = _last_digest(conns.rows)
                            stream.close()
                            stream = stack.enter_context(
                                _Stream(self, conns, position, until, ahead=pipelined)
                            )
                            continue
                    position = state.position = batch[-1][0]
                    total += len(batch)
                    if len(state.rows) > MAX_CACHED_ROWS:
                        # Rows are dropped only once the database holds all of them.
                        writer.drain()
                        state.drop_rows()
                writer.drain()
                if pending:
                    _write_alone(self.engine, pending)  # an empty store: start over all the same
                if writer.used and _wal_bytes(self.engine) > db.WAL_CHECKPOINT_PAGES * 4096:
                    # What the writer's commits left unchecked (see `_autocheckpoint`).
                    _checkpoint(self.engine)
        except BaseException:
            state.reset()
            raise
        return total

    # ------------------------------------------------------------ one transaction

    def _step_alone(
        self, batch: list[tuple[int, FoldEvent]], position: int, floor: int, orphaned: set[str]
    ) -> bool:
        """Fold `batch` in one transaction of this thread, reading and writing on one
        connection (reorgs read back the undo log they write). False, with nothing done, when
        the tracked position is no longer `position`."""
        with Session(self.engine) as session, session.begin():
            conn = session.connection()
            if tracked_position(conn) != position:
                return False
            work = _Batch(
                conn,
                self._state,
                floor=floor,
                orphaned=orphaned,
                dialect=self.engine.dialect,
                sink=lambda writes: bulk.run_all(conn, writes),
            )
            _fold_all(work, batch)
            work.flush()
            # NOTE: the library's tracking recorder refuses a position it already has
            # (IntegrityError), the last guard against folding a batch twice.
            self.tracking._insert_tracking(session, Tracking(APPLICATION_NAME, batch[-1][0]))
        return True

    def _ever_orphaned(self, conn: Connection) -> set[str]:
        t = store_blocks
        return set(
            conn.execute(
                sa.select(t.c.hash).where(t.c.chain_id == self.chain_id, t.c.orphaned_by.is_not(None))
            ).scalars()
        )


def _start_over(drop_indexes: Sequence[sa.Index]) -> list[bulk.Write]:
    """Writes that empty every read-model table and the projection's tracking row (the event
    store is untouched), dropping `drop_indexes` first."""
    t = projection_tracking
    return [
        *(_Core(sa.schema.DropIndex(index, if_exists=True), []) for index in drop_indexes),
        *(_Core(table.delete(), []) for table in models.READ_MODEL_TABLES),
        _Core(t.delete().where(t.c.application_name == APPLICATION_NAME), []),
    ]


def _write_alone(engine: sa.Engine, writes: list[bulk.Write]) -> None:
    with engine.begin() as conn:
        bulk.run_all(conn, writes)


def _wal_bytes(engine: sa.Engine) -> int:
    """Size of a SQLite database's write-ahead log (0 for other databases, or none)."""
    if engine.dialect.name != "sqlite" or _in_memory(engine):
        return 0
    try:
        return os.path.getsize(f"{engine.url.database}-wal")
    except OSError:
        return 0


def _autocheckpoint(conn: Connection, pages: int) -> None:
    """Set a SQLite connection's automatic checkpoint (0: none).

    NOTE: the writer's commits do not checkpoint: with the folding thread always reading, a
    checkpoint at commit could never finish, and each one that tried copied what it could and
    synced the file (half of the writer's commit time). `_checkpoint` runs instead, between
    batches. The connection goes back to the pool with the usual setting."""
    conn.connection.driver_connection.execute(f"PRAGMA wal_autocheckpoint={pages}")  # type: ignore[union-attr]


def _checkpoint(engine: sa.Engine) -> None:
    """Copy a SQLite WAL into the database and truncate it.

    NOTE: while the pipeline runs, the folding thread always holds a read transaction, so the
    automatic checkpoints at commit cannot finish and the WAL never starts over: it grew by
    2 KB per event folded. This runs while nothing of the projector reads; a reader of
    another process (the API) may still keep it from finishing, which only defers it."""
    with engine.connect() as conn:
        # On the driver's connection: outside of any transaction, as a checkpoint must run.
        conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]


def _in_memory(engine: sa.Engine) -> bool:
    database = engine.url.database or ""
    return engine.dialect.name == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in database or engine.url.query.get("mode") == "memory"
    )


def _fold_all(work: _Batch, batch: list[tuple[int, FoldEvent]]) -> None:
    for run in _runs(batch):
        if isinstance(run[0][1], LogOrphaned):
            for nid, orphan in run:
                assert isinstance(orphan, LogOrphaned)
                work.orphan(nid, orphan)
        else:
            indexed = [(nid, e) for nid, e in run if isinstance(e, IndexedLog)]
            work.prefetch([e for _, e in indexed])
            work.fold(indexed)


def _last_digest(conn: Connection) -> str:
    t = models.block_digests
    found = conn.execute(sa.select(t.c.digest).order_by(t.c.block_number.desc()).limit(1)).scalar()
    return found or digest.GENESIS


class _Connections:
    """The connections a run reads on: the event store's, and the read models' (the same one
    when both live in one database)."""

    def __init__(self, source: sa.Engine, target: sa.Engine) -> None:
        self._source, self._target = source, target
        self.events: Connection
        self.rows: Connection

    def __enter__(self) -> _Connections:
        self.events = self._source.connect()
        self.rows = self.events if self._target is self._source else self._target.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.rows is not self.events:
            self.rows.close()
        self.events.close()

    def begin(self) -> contextlib.AbstractContextManager[Any]:
        """One read transaction on each connection (short: a SQLite checkpoint waits for readers)."""
        stack = contextlib.ExitStack()
        stack.enter_context(self.events.begin())
        if self.rows is not self.events:
            stack.enter_context(self.rows.begin())
        return stack


class _Stream:
    """The store's events after a position, in batches that never split a block, read ahead
    of the folding on a thread of its own (inline when the projector does not pipeline).

    NOTE: a chunk of the store is read in one statement (`EventStore.fold_chunk`) that runs
    with the GIL released, on the reader thread's own connection, while the folding thread
    folds the chunk before: reading the store no longer costs the folding thread but decoding.
    """

    def __init__(
        self, projector: Projector, conns: _Connections, after: int, until: int | None, *, ahead: bool
    ) -> None:
        self.store = projector.store
        self.source = projector.source
        self.conns = conns
        self.until = until
        self.chunk = projector.batch_events
        self._after = after
        self._buffer: list[tuple[int, FoldEvent]] = []
        self._exhausted = False
        self._first = True
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="projector-reader") if ahead else None
        self._pending: Future[str] | None = None
        self._conn: Connection | None = None

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            if self._pending is not None:
                self._pending.cancel()
            self._pool.submit(self._close_reader).result()
            self._pool.shutdown(wait=True)
            self._pool = None

    def take(self, limit: int) -> list[tuple[int, FoldEvent]]:
        """The next events, at most `limit` unless one block alone has more (a batch never
        splits a block, so its digest sees all of it); empty when the store has no more."""
        buffer = self._buffer
        if self._pool is not None and (self._first or self._exhausted):
            # NOTE: read ahead, the first batch and the last ones are small: the writer starts
            # sooner, and the caller waits less for the writer at the end.
            limit = max(limit // 4, 1)
            self._first = False
        while len(buffer) <= limit and not self._exhausted:
            self._more()
        cut = min(limit, len(buffer))
        if cut < len(buffer):
            last = buffer[cut - 1][1]
            if isinstance(last, IndexedLog) and _same_block(buffer[cut][1], last):
                while cut > 0 and _same_block(buffer[cut - 1][1], last):
                    cut -= 1
                if cut == 0:
                    # One block larger than the batch: all of it.
                    while True:
                        while cut < len(buffer) and _same_block(buffer[cut][1], last):
                            cut += 1
                        if cut < len(buffer) or self._exhausted:
                            break
                        self._more()
        out = buffer[:cut]
        del buffer[:cut]
        return out

    def _more(self) -> None:
        """Append the next chunk to the buffer (and start reading the one after)."""
        if self._pool is None:
            text = self.store.fold_chunk(self.conns.events, self._after, self.chunk, self.until)
        else:
            pending, self._pending = self._pending, None
            if pending is None or pending.cancelled():
                pending = self._pool.submit(self._read, self._after)
            text = pending.result()
        chunk = self.store.decode_fold_chunk(self.conns.events, text)
        if len(chunk) < self.chunk:
            self._exhausted = True
        if chunk:
            self._after = chunk[-1][0]
        self._buffer.extend(chunk)
        if self._pool is not None and not self._exhausted:
            self._pending = self._pool.submit(self._read, self._after)

    def _read(self, after: int) -> str:
        """One chunk's text (on the reader thread, in a read transaction of its own)."""
        if self._conn is None:
            self._conn = self.source.connect()
            if self._conn.dialect.name == "sqlite":
                # It reads the store once, in order: the OS caches the file for it.
                self._conn.connection.driver_connection.execute("PRAGMA cache_size=-2048")  # type: ignore[union-attr]
        with self._conn.begin():
            return self.store.fold_chunk(self._conn, after, self.chunk, self.until)

    def _close_reader(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Writer:
    """Writes batches while the caller folds the next one: in a writer process of its own
    (forked, on Linux) or else on a writer thread.

    Each batch's writes run as soon as it is submitted, in a transaction the writer keeps open
    over several batches: it commits, with the tracking position of the last batch, once
    `COMMIT_EVENTS` events are in it, and whenever the caller drains it. A crash or a database
    error leaves the last commit: whole batches, their tracking position with them.

    NOTE: why a process. The writes are a few large statements per batch (indexer/bulk.py),
    and SQLite and psycopg2 release the GIL while the database works, but a writer *thread*
    still took the folding thread's GIL to bind every parameter and each time it came back from
    the database: with the switch interval at 0.1 ms the folding thread ran at two thirds of
    its speed alone (a rebuild: 3.7 s of CPU in a 5.6 s wall for what took it 2.5 s alone). A
    forked process has a GIL of its own; the batch's statements reach it through a pipe as
    MessagePack (`_pack`: 0.13 to 0.2 s of the folding thread's time per 100,000 events), and the
    second core does all of the database's work.
    - It is forked before the reader thread starts, so no thread of the projector holds a lock
      the child could need; the child drops the inherited pool without closing its connections
      (`Engine.dispose(close=False)`, as SQLAlchemy documents for forks) and opens its own.
    - It dies with the process that forked it (PR_SET_PDEATHSIG): a `kill -9` of the indexer
      leaves no writer behind holding a transaction, or the indexer's lock.
    - Committing less often writes less: a commit writes every page the transaction changed to
      the WAL, and the pages of an index on random keys (a transaction hash) change in every
      batch. Commits every 5,000 events wrote 2.1 KB of WAL per event, every 20,000 1.2 KB.
    - SQLite: the writer's commits do not checkpoint (see `_autocheckpoint`).
    """

    def __init__(self, projector: Projector, *, enabled: bool, start_over: bool = False) -> None:
        self.projector = projector
        self.enabled = enabled
        self._start_over = start_over
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None
        self._switch = 0.0
        #: The transaction of a writer thread (where there is no writer process).
        self._core: _WriterCore | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._channel: multiprocessing.connection.Connection | None = None
        #: Answers the writer process owes.
        self._awaiting = 0
        self._used = False
        #: Batches went to the writer since it last committed.
        self._uncommitted = False

    def __enter__(self) -> _Writer:
        if self.enabled and WRITER_PROCESS:
            context = multiprocessing.get_context("fork")
            ours, theirs = context.Pipe()
            self._process = context.Process(
                target=_writer_process,
                args=(theirs, self.projector, self._start_over, os.getpid()),
                name="projector-writer",
                daemon=True,
            )
            self._process.start()
            theirs.close()
            self._channel = ours
        return self

    def __exit__(self, *exc: object) -> None:
        # Batches the writer applied are committed even when the caller fails (they are whole
        # batches); a failure of the writer's own rolls its transaction back.
        try:
            self.drain()
        except BaseException:
            if exc[0] is None:
                raise
        finally:
            if self._channel is not None:
                self._stop_process()
            if self._pool is not None and self._core is not None:
                self._pool.submit(self._core.close).result()
                self._pool.shutdown(wait=True)
                sys.setswitchinterval(self._switch)

    @property
    def used(self) -> bool:
        """Whether any batch went through the writer."""
        return self._used

    def submit(self, writes: list[bulk.Write], position: int, events: int) -> None:
        """Run a batch's writes on the writer (after the previous batch's)."""
        packed = _pack(writes) if self._channel is not None else None
        if packed is not None:
            self._call(("packed", packed, position, events))
        else:
            self._call(("apply", writes, position, events))
        self._used = self._uncommitted = True

    def drain(self) -> None:
        """Wait until every submitted batch is committed (raising what failed)."""
        self._wait()
        if self._uncommitted:
            self._uncommitted = False
            self._call(("commit",))
            self._wait()

    # ------------------------------------------------------------ transports

    def _call(self, message: tuple[Any, ...]) -> None:
        if self._channel is not None:
            # The next batch is sent while the writer still works on the one before: a batch
            # the writer is slower with does not hold the folding up.
            self._wait(keep=WRITER_DEPTH - 1)
            try:
                self._channel.send(message)
            except (BrokenPipeError, EOFError, ConnectionResetError):
                raise self._died() from None
            self._awaiting += 1
            return
        self._wait()
        if self._pool is None or self._core is None:
            self._core = _WriterCore(self.projector.engine, self.projector.tracking, self._start_over)
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="projector-writer")
            # NOTE: the folding thread gives the GIL up only every switch interval (5 ms by
            # default): 40% of a writer thread's time went to waiting for it.
            self._switch = sys.getswitchinterval()
            sys.setswitchinterval(WRITER_SWITCH_INTERVAL)
        self._pending = self._pool.submit(self._core.handle, message)

    def _wait(self, keep: int = 0) -> None:
        """Wait for the writer's answers until at most `keep` are outstanding (raising what
        failed, once every outstanding answer is in)."""
        if self._channel is not None:
            failed: BaseException | None = None
            while self._awaiting > keep or (failed is not None and self._awaiting):
                try:
                    reply = self._channel.recv()
                except (EOFError, ConnectionResetError):
                    self._awaiting = 0
                    raise self._died() from None
                self._awaiting -= 1
                if reply[0] == "error" and failed is None:
                    failed = reply[1]
            if failed is not None:
                raise failed
            return
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _died(self) -> RuntimeError:
        process = self._process
        if process is not None:
            process.join(5)
        code = None if process is None else process.exitcode
        return RuntimeError(
            f"the projector's writer process ended unexpectedly (exit code {code}); "
            "what it had not committed was rolled back, and the next run folds it again"
        )

    def _stop_process(self) -> None:
        channel, process = self._channel, self._process
        self._channel = self._process = None
        assert channel is not None and process is not None
        try:
            for _ in range(self._awaiting):
                channel.recv()
            self._awaiting = 0
            channel.send(("close",))
            channel.recv()
        except (BrokenPipeError, EOFError, ConnectionResetError):
            pass
        finally:
            channel.close()
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()


class _WriterCore:
    """The writer's open transaction, on the writer thread or in the writer process."""

    def __init__(self, engine: Engine, tracking: Any, start_over: bool) -> None:
        self.engine = engine
        self.tracking = tracking
        #: Its first transaction empties the read models (the tracking row included).
        self._start_over = start_over
        self._conn: Connection | None = None
        self._session: Session | None = None
        self._position = 0
        self._events = 0
        #: WAL size at the writer's last checkpoint.
        self._checkpointed = 0
        #: A message failed: what follows it is refused (its batch was rolled back, a later
        #: batch must not commit without it).
        self._failed = False

    def handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if self._failed and kind != "close":
            raise RuntimeError("the projector's writer refused a batch: an earlier one failed")
        try:
            self._handle(kind, message)
        except BaseException:
            self._failed = True
            raise

    def _handle(self, kind: str, message: tuple[Any, ...]) -> None:
        if kind == "apply":
            self.apply(*message[1:])
        elif kind == "packed":
            self.apply(_unpack(message[1]), *message[2:])
        elif kind == "commit":
            if self._session is not None:
                self.commit()
        elif kind == "close":
            self.close()
        else:
            raise ValueError(f"unknown writer message {kind!r}")

    def apply(self, writes: list[bulk.Write], position: int, events: int) -> None:
        try:
            if self._session is None:
                self._conn = self.engine.connect()
                if self._conn.dialect.name == "sqlite":
                    _autocheckpoint(self._conn, 0)
                self._session = Session(bind=self._conn)
                self._session.begin()
            bulk.run_all(self._session.connection(), writes)
        except BaseException:
            self.close()
            raise
        self._position = position
        self._events += events
        if self._events >= COMMIT_EVENTS:
            self.commit()

    def commit(self) -> None:
        session = self._session
        assert session is not None
        try:
            if self._start_over:
                # NOTE: the library's recorder checks the position against the committed one,
                # which this transaction is replacing: the row is written here instead.
                session.execute(
                    projection_tracking.insert().values(
                        application_name=APPLICATION_NAME, notification_id=self._position
                    )
                )
            else:
                # NOTE: the library's tracking recorder refuses a position it already has
                # (IntegrityError), the last guard against folding a batch twice.
                self.tracking._insert_tracking(session, Tracking(APPLICATION_NAME, self._position))
            session.commit()
            self._start_over = False
            conn = self._conn
            if conn is not None and conn.dialect.name == "sqlite":
                wal = _wal_bytes(self.engine)
                if wal - self._checkpointed >= WRITER_CHECKPOINT_BYTES:
                    # As far as the folding thread's reads allow; `run` cuts the WAL at the end.
                    conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
                    self._checkpointed = wal
        finally:
            self.close()

    def close(self) -> None:
        """End the writer's transaction (rolling back what was not committed)."""
        session, conn = self._session, self._conn
        self._session = self._conn = None
        self._events = 0
        if session is not None:
            session.close()
        if conn is not None:
            try:
                if conn.dialect.name == "sqlite" and not conn.closed:
                    _autocheckpoint(conn, db.WAL_CHECKPOINT_PAGES)
            finally:
                conn.close()


def _writer_process(
    channel: multiprocessing.connection.Connection, projector: Projector, start_over: bool, parent: int
) -> None:
    """The forked writer: runs the messages it receives until told to close, or until the
    process that forked it is gone."""
    _die_with_parent(parent)
    # NOTE: the parent decides when to stop: a Ctrl-C (the terminal's whole process group) or a
    # service manager's SIGTERM (the whole control group) reaches the writer too, and would
    # otherwise cut the batches the parent is about to commit on its way out.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    engine = projector.engine
    # NOTE: the inherited pool's connections are the parent's: dropped, never closed here.
    engine.dispose(close=False)
    core = _WriterCore(engine, tracking_recorder_for(engine), start_over)
    # NOTE: a thread takes the messages off the pipe while the writer works, so the folding
    # thread's send of the next batch (megabytes, through a 64 KB pipe) does not wait for it.
    inbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()

    def receive() -> None:
        try:
            while True:
                inbox.put(channel.recv())
        except (EOFError, ConnectionResetError, OSError):
            inbox.put(None)

    threading.Thread(target=receive, name="projector-writer-inbox", daemon=True).start()
    try:
        while True:
            message = inbox.get()
            if message is None:
                return
            try:
                core.handle(message)
                reply: tuple[Any, ...] = ("ok",)
            except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
                reply = ("error", _portable(exc))
            channel.send(reply)
            if message[0] == "close":
                return
    finally:
        core.close()
        engine.dispose()


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


_pack_encoder = msgspec.msgpack.Encoder()
_pack_decoder = msgspec.msgpack.Decoder(list[tuple[int, str, Any]])


def _pack(writes: list[bulk.Write]) -> bytes | None:
    """A batch's statements as MessagePack, for the writer process: three times quicker to
    encode than a pickle (0.13 s of the folding thread's time per 100,000 events, not 0.45).
    None when a write is of another kind, or a value has no MessagePack form (an int beyond
    64 bits): those batches are pickled."""
    wire: list[tuple[int, str, Any]] = []
    for write in writes:
        if type(write) is bulk.Statement:
            wire.append((0, write.sql, write.params))
        elif type(write) is bulk.Copy:
            wire.append((1, write.sql, write.text))
        else:
            return None
    try:
        return _pack_encoder.encode(wire)
    except (OverflowError, TypeError):
        return None


def _unpack(packed: bytes) -> list[bulk.Write]:
    return [
        bulk.Statement(sql, data) if kind == 0 else bulk.Copy(sql, data)
        for kind, sql, data in _pack_decoder.decode(packed)
    ]


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling, else a RuntimeError that names it."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any unpicklable exception
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _runs(batch: list[tuple[int, FoldEvent]]) -> list[list[tuple[int, FoldEvent]]]:
    """Split a batch into runs of consecutive events of the same kind."""
    runs: list[list[tuple[int, FoldEvent]]] = []
    for item in batch:
        if runs and type(runs[-1][-1][1]) is type(item[1]):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _same_block(event: FoldEvent, block: FoldEvent) -> bool:
    return (
        isinstance(event, IndexedLog)
        and event.block_number == block.block_number
        and event.block_hash == block.block_hash
    )


@dataclass(slots=True)
class _Block:
    number: int
    hash: str
    changed: dict[RowRef, None]
    #: The digest lines of its raw events, one per event.
    raw_lines: list[bytes]
    keep_undo: bool


class _Peek:
    """The cached rows as a folds `State`, never loading (None when absent or not cached)."""

    def __init__(self, cache: dict[RowRef, Row | None]) -> None:
        self.cache = cache

    def get(self, kind: type[R], key: tuple[Any, ...]) -> R | None:
        return self.cache.get((kind, key))  # type: ignore[return-value]


class _Batch:
    """One batch of the projector: the folds' `State` (the rows cached in the fold state,
    loading the others through `conn`), and the batch's writes, undo entries and digests.

    `flush` turns what is pending into writes and hands them to `sink` (default: keep them in
    `writes`, for the writer thread). `conn` is only read, except through `sink` and, for a
    reorg, `orphan` (which needs `sink` to write on `conn` at once).
    """

    def __init__(
        self,
        conn: Connection,
        state: _FoldState,
        *,
        floor: int,
        orphaned: set[str],
        dialect: Dialect,
        sink: Callable[[list[bulk.Write]], None] | None = None,
    ) -> None:
        self.conn = conn
        self.state = state
        self.floor = floor
        self.orphaned = orphaned
        self.dialect = dialect
        self.writes: list[bulk.Write] = []
        self.sink = sink if sink is not None else self.writes.extend
        self.cache = state.rows
        self.in_db = state.in_db
        self.dirty: dict[RowRef, None] = {}
        self.raw: list[tuple[Any, ...]] = []
        self.orphan_marks: list[dict[str, Any]] = []
        self.undo: list[list[Any]] = []
        self.pending_before: list[tuple[list[Any], RowRef]] = []
        self.digests: list[tuple[Any, ...]] = []
        self.block: _Block | None = None
        #: The ancestor the read models were last rolled back to, until the next fold.
        self.undone_to: int | None = None
        assert state.last_digest is not None
        self.last_digest: str = state.last_digest

    # ------------------------------------------------------------ the folds' State

    def get(self, kind: type[R], key: tuple[Any, ...]) -> R | None:
        ref: RowRef = (kind, key)
        try:
            return self.cache[ref]  # type: ignore[return-value]
        except KeyError:
            if self.state.complete:
                self.cache[ref] = None
                self.in_db[ref] = False
                return None
            self._load(kind, [key])
            return self.cache[ref]  # type: ignore[return-value]

    def prefetch(self, events: Sequence[IndexedLog]) -> None:
        """Load the rows a run of events will look up, a few queries per table: first those the
        events name, then those found through them (a job's provider, a prompt's listing)."""
        if self.state.complete:
            return
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
        return _reader(kind, self.conn.dialect).fetch(self.conn, keys)

    def _load(self, kind: type[Row], keys: list[tuple[Any, ...]]) -> None:
        found = self._fetch(kind, keys)
        for key in keys:
            ref = (kind, key)
            row = found.get(key)
            self.cache[ref] = row
            self.in_db[ref] = row is not None

    # ------------------------------------------------------------ folding

    def fold(self, items: Sequence[tuple[int, IndexedLog]]) -> None:
        """Fold a run of logs (at store positions `nid`), block by block: each log's raw event
        row and digest line, the rows it changes, their undo entries."""
        self.undone_to = None
        cache, dirty, raw, apply = self.cache, self.dirty, self.raw, folds.apply
        encode_args, encode, keys, api_args = _json.encode, digest.encode, _KEY_OF, argforms.api_args
        block = self.block
        for nid, e in items:
            number, block_hash = e.block_number, e.block_hash
            if block is None or block.number != number or block.hash != block_hash:
                self._end_block()
                block = self.block = _Block(
                    number, block_hash, {}, [], number > self.floor or block_hash in self.orphaned
                )
            changed, keep_undo = block.changed, block.keep_undo
            # The raw event row and its digest line share these fields, in this order.
            chain_id, ts, tx, index, contract, address, name = (
                e.chain_id,
                e.block_timestamp,
                e.tx_hash,
                e.log_index,
                e.contract,
                e.address,
                e.event,
            )
            # The table stores the arguments in the API's form, the digest covers the canonical
            # form (indexer/argforms.py).
            args = e.args
            text = encode_args(api_args(args)).decode()
            raw.append(
                (nid, chain_id, number, block_hash, ts, tx, index, contract, address, name, text, False, None)
            )
            block.raw_lines.append(
                encode(
                    (
                        "events",
                        chain_id,
                        number,
                        block_hash,
                        ts,
                        tx,
                        index,
                        contract,
                        address,
                        name,
                        encode_args(args).decode(),
                    )
                )
            )
            for row in apply(self, e):
                kind = type(row)
                ref: RowRef = (kind, keys[kind](row))
                if ref not in changed:
                    changed[ref] = None
                    if keep_undo:
                        self._undo_entry(block.number, ref)
                cache[ref] = row
                dirty[ref] = None

    def _undo_entry(self, number: int, ref: RowRef) -> None:
        """The before-image of a row block `number` changes first, for the undo log."""
        entry: list[Any] = [number, ref[0].TABLE, _json.encode(ref[1]).decode(), None]
        if ref in self.cache:
            entry[3] = _before_image(self.cache[ref])
        else:
            # Never looked at in this run, so the database still holds its before-image: read
            # it with the others at flush, in one query.
            self.pending_before.append((entry, ref))
        self.undo.append(entry)

    def _end_block(self) -> None:
        block = self.block
        if block is None:
            return
        events = len(block.raw_lines)
        cache = self.cache
        lines = block.raw_lines + [digest.row_line_bytes(cache[ref]) for ref in block.changed]  # type: ignore[arg-type]
        self.last_digest = digest.chain_bytes(self.last_digest, lines)
        self.digests.append((block.number, block.hash, self.last_digest, events, len(block.changed)))
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
        self.state.drop_rows()
        self.last_digest = self.state.last_digest = _last_digest(self.conn)

    # ------------------------------------------------------------ writing

    def flush(self) -> None:
        """Turn everything pending into writes and hand them to the sink."""
        self._end_block()
        dialect = self.dialect
        writes: list[bulk.Write] = []
        if self.pending_before:
            wanted: dict[type[Row], list[tuple[Any, ...]]] = {}
            for _, (kind, key) in self.pending_before:
                wanted.setdefault(kind, []).append(key)
            found = {
                kind: {} if self.state.complete else self._fetch(kind, keys) for kind, keys in wanted.items()
            }
            for entry, (kind, key) in self.pending_before:
                before = found[kind].get(key)
                entry[3] = _before_image(before)
                self.in_db[(kind, key)] = before is not None
            self.pending_before = []
        if self.raw:
            writes += _EVENTS.writes(dialect, "insert", self.raw)
            self.raw = []
        if self.orphan_marks:
            writes.append(_Core(_MARK_ORPHANED, self.orphan_marks))
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
            writes += _WRITERS[kind].writes(dialect, "insert", rows)
        for kind, rows in updates.items():
            writes += _WRITERS[kind].writes(dialect, "update", rows)
        for kind, rows in upserts.items():
            writes += _WRITERS[kind].writes(dialect, "upsert", rows)
        if self.undo:
            writes += _UNDO.writes(dialect, "insert", [tuple(e) for e in self.undo])
            self.undo = []
        if self.digests:
            writes += _DIGESTS.writes(dialect, "insert", self.digests)
            self.digests = []
        self.state.last_digest = self.last_digest
        self.sink(writes)


class _RowReader:
    """Reads rows of one kind by key on the driver's cursor, giving back the row class.

    NOTE: through SQLAlchemy (a compiled `IN` with expanding parameters, result processing,
    a mapping per row) loading the rows a batch looks up cost a tenth of a rebuild. Here the
    SQL is written once per chunk size and each column the driver gives in another form than
    the row holds is converted by one function: uint256 text (SQLite) or Decimal (PostgreSQL)
    to int, 0/1 to bool (SQLite), memoryview to bytes (PostgreSQL)."""

    CHUNK = 500

    def __init__(self, kind: type[Row], dialect: Dialect) -> None:
        self.kind = kind
        table = TABLES[kind]
        mark = "?" if dialect.name == "sqlite" else "%s"
        columns = [c.name for c in table.c]
        key = kind.KEY
        self.key_at = tuple(columns.index(k) for k in key)
        self._sql: Callable[[int], str]
        select = f"SELECT {', '.join(bulk.quote(c) for c in columns)} FROM {bulk.quote(table.name)} WHERE "
        if len(key) == 1:
            self._sql = lambda n: select + f"{bulk.quote(key[0])} IN ({', '.join([mark] * n)})"
        else:
            one = "(" + ", ".join([mark] * len(key)) + ")"
            names = ", ".join(bulk.quote(k) for k in key)
            self._sql = lambda n: select + f"({names}) IN (VALUES {', '.join([one] * n)})"
        self.converters: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(table.c):
            if isinstance(column.type, models.Uint256):
                self.converters.append((i, int))
            elif isinstance(column.type, sa.Boolean) and dialect.name == "sqlite":
                self.converters.append((i, bool))
            elif isinstance(column.type, sa.LargeBinary) and dialect.name != "sqlite":
                self.converters.append((i, bytes))
        self._texts: dict[int, str] = {}

    def fetch(self, conn: Connection, keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], Row]:
        out: dict[tuple[Any, ...], Row] = {}
        cls, key_at, converters = self.kind, self.key_at, self.converters
        for i in range(0, len(keys), self.CHUNK):
            chunk = keys[i : i + self.CHUNK]
            sql = self._texts.get(len(chunk))
            if sql is None:
                sql = self._texts[len(chunk)] = self._sql(len(chunk))
            params = [k[0] for k in chunk] if len(key_at) == 1 else [v for k in chunk for v in k]
            with bulk.driver_cursor(conn, sql) as cursor:
                cursor.execute(sql, params)
                found = cursor.fetchall()
            for values in found:
                if converters:
                    values = list(values)
                    for at, convert in converters:
                        if values[at] is not None:
                            values[at] = convert(values[at])
                row = cls(*values)
                out[tuple(values[at] for at in key_at)] = row
        return out


_READERS: dict[tuple[type[Row], str], _RowReader] = {}


def _reader(kind: type[Row], dialect: Dialect) -> _RowReader:
    found = _READERS.get((kind, dialect.name))
    if found is None:
        found = _READERS[(kind, dialect.name)] = _RowReader(kind, dialect)
    return found


@dataclass(frozen=True, slots=True)
class _Core:
    """A SQLAlchemy Core statement with its rows of parameters, if any (the rare writes: a
    reorg's, starting over)."""

    statement: sa.Executable
    params: list[dict[str, Any]]

    def run(self, conn: Connection) -> None:
        if self.params:
            conn.execute(self.statement, self.params)
        else:
            conn.execute(self.statement)


_e = models.events.c
_MARK_ORPHANED = (
    models.events.update()
    .where(
        _e.block_hash == sa.bindparam("_k_block_hash"),
        _e.tx_hash == sa.bindparam("_k_tx_hash"),
        _e.log_index == sa.bindparam("_k_log_index"),
        _e.orphaned.is_(False),
    )
    .values(orphaned=True, orphaned_by=sa.bindparam("_by"))
)


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


def fold_events(state: folds.State, events: Sequence[folds.Log]) -> list[Row]:
    """Every row change `events` make, in order (a pure helper for tests and tools)."""
    out: list[Row] = []
    for event in events:
        out.extend(folds.apply(state, event))
    return out
