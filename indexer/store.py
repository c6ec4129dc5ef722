"""The append-only event store: the `eventsourcing` library's SQLAlchemy recorder, plus the
canonical block refs that say how far the chain has been indexed.

- Every log becomes a `LogIndexed` domain event, stored through the library's
  `SQLAlchemyApplicationRecorder` (table `stored_events`), whose notification ids give the one
  global order the projections track.
- Block refs (`store_blocks`) record which block hash is canonical at each height. A reorg
  marks refs orphaned and appends a compensating `LogOrphaned` for each of their logs; nothing
  is ever deleted or updated in `stored_events`.
- One database indexes one chain (`store_meta` binds it on first use).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
import sqlalchemy as sa
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.utils import get_topic
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder, SQLAlchemyTrackingRecorder
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from chain.provenance import ChainEvent
from indexer import bulk, models
from indexer.domain import (
    LOG_INDEXED_TOPIC,
    FoldEvent,
    IndexedLog,
    LogIndexed,
    LogOrphaned,
    StoreEvent,
    block_datetime,
    decode_indexed,
    indexed_state,
    log_originator_id,
    make_mapper,
)
from indexer.errors import BlockConflict, StoreMismatch, UnknownBlock

EVENTS_TABLE = "stored_events"
TRACKING_TABLE = "projection_tracking"


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block as the node reported it: enough to detect a reorg and to date its events."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int


class StoreRecorder(SQLAlchemyApplicationRecorder):
    """The library's application recorder, writing and reading in batches.

    NOTE: the library's recorder adds one ORM object per event and reads through ORM queries,
    about 9,000 events/s on SQLite. Overriding its two hooks with batched Core statements on the
    very same table (same columns, unique index, table lock and NOTIFY) is four times faster; the
    rest of the library's API (`select_events`, `max_notification_id`, `subscribe`) is unchanged.
    """

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        self.insert_rows(
            session, [(e.originator_id, e.originator_version, e.topic, e.state) for e in stored_events]
        )
        # NOTE: notification ids are not returned (RETURNING costs a third of the insert rate);
        # `EventStore` records a lower bound per block instead.
        return []

    def insert_rows(self, session: Session, rows: Sequence[tuple[Any, int, str, bytes]]) -> None:
        """Insert stored events given as `(originator_id, originator_version, topic, state)`,
        under the library's table lock, with its NOTIFY: what `insert_events` does, without a
        `StoredEvent` object or SQLAlchemy's per-value type processing for each event."""
        table = self.events_record_cls.__table__
        self._lock_table(session)
        if not rows:
            return
        conn = session.connection()
        if bulk.supported(conn.dialect):
            # sqlalchemy_utils' UUIDType binds a UUID as its 16 bytes on SQLite and as text on
            # PostgreSQL (a native uuid column).
            as_param = _uuid_bytes if conn.dialect.name == "sqlite" else str
            bulk.insert_columns(
                conn, table, _EVENT_COLUMNS, [(as_param(u), v, topic, state) for u, v, topic, state in rows]
            )
        else:
            conn.execute(table.insert(), [dict(zip(_EVENT_COLUMNS, r, strict=True)) for r in rows])
        self._notify_channel(session)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        engine = self.datastore.engine
        assert isinstance(engine, Engine)
        with engine.connect() as connection:
            return self.select_notifications_on(
                connection, start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )

    def select_notifications_on(
        self,
        connection: Connection,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        """`select_notifications` on a given connection (inside the caller's transaction)."""
        query = self._notifications_query(start, limit, stop, topics, inclusive_of_start)
        return [
            Notification(id=r[0], originator_id=_uuid(r[1]), originator_version=r[2], topic=r[3], state=r[4])
            for r in _rows(connection, query)
        ]

    def select_rows_on(
        self, connection: Connection, after: int, limit: int, stop: int | None = None
    ) -> list[tuple[int, Any, int, str, bytes]]:
        """The notifications after `after` (up to `stop`) as plain `(id, raw originator id,
        version, topic, state)` tuples, the originator id as the driver gives it (see `_uuid`)."""
        return _rows(connection, self._notifications_query(after, limit, stop, (), False))

    def _notifications_query(
        self, start: int | None, limit: int, stop: int | None, topics: Sequence[str], inclusive_of_start: bool
    ) -> sa.Select[Any]:
        t = self.events_record_cls.__table__
        # NOTE: the raw column value, converted by the caller: sqlalchemy_utils' UUIDType result
        # processing costs more than everything else in this query.
        raw_id = sa.type_coerce(t.c.originator_id, sa.types.NullType())
        q = sa.select(t.c.id, raw_id, t.c.originator_version, t.c.topic, t.c.state)
        if start is not None:
            q = q.where(t.c.id >= start if inclusive_of_start else t.c.id > start)
        if stop is not None:
            q = q.where(t.c.id <= stop)
        if topics:
            q = q.where(t.c.topic.in_(topics))
        return q.order_by(t.c.id).limit(limit)

    def max_notification_id_on(self, connection: Connection) -> int:
        t = self.events_record_cls.__table__
        return int(connection.execute(sa.select(sa.func.coalesce(sa.func.max(t.c.id), 0))).scalar_one())


#: Topic -> class, for the classes `EventStore._to_domain` builds itself (class_version 1).
_DOMAIN_CLASSES: dict[str, type[LogIndexed | LogOrphaned]] = {
    get_topic(cls): cls for cls in (LogIndexed, LogOrphaned) if getattr(cls, "class_version", 1) == 1
}
_EVENT_COLUMNS = ("originator_id", "originator_version", "topic", "state")
#: `EventStore.fold_chunk`'s query per dialect; parameters: LogIndexed's topic, after, stop, limit.
_FOLD_CHUNK = {
    "sqlite": (
        "SELECT '[' || group_concat('[' || id || ',' || (topic = ?) || ',' || CAST(state AS TEXT) || ']',"
        f" ',') || ']' FROM (SELECT id, topic, state FROM {EVENTS_TABLE}"
        " WHERE id > ? AND id <= ? ORDER BY id LIMIT ?)"
    ),
    "postgresql": (
        "SELECT '[' || string_agg('[' || id || ',' || (topic = %s)::int || ',' || convert_from(state, 'UTF8')"
        f" || ']', ',' ORDER BY id) || ']' FROM (SELECT id, topic, state FROM {EVENTS_TABLE}"
        " WHERE id > %s AND id <= %s ORDER BY id LIMIT %s) AS chunk"
    ),
}
_decode_chunk = msgspec.json.Decoder(list[tuple[int, int, IndexedLog]]).decode
_decode_raw_chunk = msgspec.json.Decoder(list[tuple[int, int, msgspec.Raw]]).decode
_NO_STOP = 2**63 - 1


def _as_indexed(event: LogIndexed) -> IndexedLog:
    """The `IndexedLog` of a `LogIndexed` the library's mapper built (an upcast one)."""
    return IndexedLog(**{name: getattr(event, name) for name in _INDEXED_FIELDS})


#: The fields an `IndexedLog` takes from a `LogIndexed` (all but the stored class version).
_INDEXED_FIELDS = tuple(name for name in IndexedLog.__struct_fields__ if name != "class_version")


def _rows(connection: Connection, query: sa.Select[Any]) -> list[tuple[int, Any, int, str, bytes]]:
    return [
        (r[0], r[1], r[2], r[3], bytes(r[4]) if isinstance(r[4], memoryview) else r[4])
        for r in connection.execute(query)
    ]


def _uuid_bytes(value: uuid.UUID) -> bytes:
    return value.bytes


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, bytes):
        return uuid.UUID(bytes=value)
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, memoryview):
        return uuid.UUID(bytes=bytes(value))
    return uuid.UUID(str(value))


def recorder_for(engine: Engine) -> StoreRecorder:
    datastore = SQLAlchemyDatastore(session_maker=sessionmaker(bind=engine))
    return StoreRecorder(datastore, events_table_name=EVENTS_TABLE)


def tracking_recorder_for(engine: Engine) -> SQLAlchemyTrackingRecorder:
    datastore = SQLAlchemyDatastore(session_maker=sessionmaker(bind=engine))
    return SQLAlchemyTrackingRecorder(datastore, tracking_table_name=TRACKING_TABLE)


# The library's own tables, copied into our metadata so one Alembic history creates everything.
_probe = sa.create_engine("sqlite://")
stored_events: sa.Table = recorder_for(_probe).events_record_cls.__table__.to_metadata(models.metadata)
projection_tracking: sa.Table = tracking_recorder_for(_probe).tracking_table.to_metadata(models.metadata)
_probe.dispose()

store_meta = sa.Table(
    "store_meta",
    models.metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

#: Every block ref the store was given; `canonical` is false once a reorg orphaned it.
store_blocks = sa.Table(
    "store_blocks",
    models.metadata,
    sa.Column("chain_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(66), primary_key=True),
    sa.Column("parent_hash", sa.String(66), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("canonical", sa.Boolean, nullable=False),
    #: How often this block had been orphaned before it (last) became canonical.
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    #: Its events' notification ids are all greater than this.
    sa.Column("notifications_after", sa.BigInteger, nullable=False),
    #: The reorg (store_reorgs.id) that orphaned it last.
    sa.Column("orphaned_by", sa.BigInteger, nullable=True),
    sa.Index("ix_store_blocks_canonical_number", "chain_id", "canonical", "number"),
)

#: One row per reorg the store was told about.
store_reorgs = sa.Table(
    "store_reorgs",
    models.metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("ancestor", sa.BigInteger, nullable=False),
    sa.Column("depth", sa.BigInteger, nullable=False),
    sa.Column("old_head", sa.BigInteger, nullable=True),
    sa.Column("blocks_orphaned", sa.BigInteger, nullable=False),
    sa.Column("events_orphaned", sa.BigInteger, nullable=False),
    sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
)


def _ref(row: Any) -> BlockRef:
    return BlockRef(
        number=int(row.number), hash=row.hash, parent_hash=row.parent_hash, timestamp=int(row.timestamp)
    )


class EventStore:
    """The indexer's event store for one chain, in the database behind `engine`.

    Writes are one transaction each. Reads see committed data only.
    """

    def __init__(self, engine: Engine, chain_id: int) -> None:
        self.engine = engine
        self.chain_id = chain_id
        self.recorder = recorder_for(engine)
        self.mapper = make_mapper()
        self._bound = False

    # ------------------------------------------------------------ writing

    def append_blocks(self, blocks: Sequence[tuple[BlockRef, Sequence[ChainEvent]]]) -> int:
        """Record each block ref as canonical and each of its logs as a `LogIndexed` event, in
        ONE transaction. Returns the number of events appended.

        Blocks must come in ascending order, each with exactly its own logs (in log order).
        Appending a block that is already canonical with the same hash is a no-op, so a crash
        between fetching and appending never doubles anything; the library's unique
        `(originator_id, originator_version)` index makes a doubled log impossible anyway.

        Raises `BlockConflict` when a block contradicts the stored canonical chain (another hash
        at that height, a parent that is not the stored block below it, or logs for a height
        already passed as empty): detect the reorg and call `orphan_after` first.
        """
        if not blocks:
            return 0
        numbers = [b.number for b, _ in blocks]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise ValueError("append_blocks needs blocks in strictly ascending order")
        with Session(self.engine) as session, session.begin():
            conn = session.connection()
            self._bind_chain(conn)
            t = store_blocks
            known = {
                (int(r.number), r.hash): r
                for r in conn.execute(
                    sa.select(t).where(
                        t.c.chain_id == self.chain_id,
                        t.c.number >= numbers[0] - 1,
                        t.c.number <= numbers[-1],
                    )
                )
            }
            canonical = {n: h for (n, h), r in known.items() if r.canonical}
            head = self._head_on(conn)
            new_refs: list[dict[str, Any]] = []
            revived: list[dict[str, Any]] = []
            stored: list[tuple[uuid.UUID, int, str, bytes]] = []
            after = self.recorder.max_notification_id_on(conn)
            for block, logs in blocks:
                self._check_logs(block, logs)
                at_height = canonical.get(block.number)
                if at_height == block.hash:
                    continue  # already appended: the idempotent re-append
                if at_height is not None:
                    raise BlockConflict(
                        block.number, block.hash, at_height, "another block is canonical there"
                    )
                parent = canonical.get(block.number - 1)
                if parent is not None and parent != block.parent_hash:
                    raise BlockConflict(
                        block.number, block.hash, parent, "its parent is not the stored block below"
                    )
                if head is not None and block.number <= head.number and logs:
                    raise BlockConflict(
                        block.number,
                        block.hash,
                        head.hash,
                        f"it has logs but the store already passed it (head {head.number})",
                    )
                previous = known.get((block.number, block.hash))
                generation = 0 if previous is None else int(previous.generation) + 1
                ref = {
                    "chain_id": self.chain_id,
                    "number": block.number,
                    "hash": block.hash,
                    "parent_hash": block.parent_hash,
                    "timestamp": block.timestamp,
                    "canonical": True,
                    "generation": generation,
                    "events": len(logs),
                    "notifications_after": after,
                    "orphaned_by": None if previous is None else previous.orphaned_by,
                }
                (new_refs if previous is None else revived).append(ref)
                canonical[block.number] = block.hash
                if logs:
                    # What mapper.to_stored_event(LogIndexed.from_chain_event(ev, ...)) gives.
                    version = 2 * generation + 1
                    iso = block_datetime(block.timestamp).isoformat()
                    for ev in logs:
                        stored.append(
                            (
                                log_originator_id(ev.chain_id, ev.block_hash, ev.tx_hash, ev.log_index),
                                version,
                                LOG_INDEXED_TOPIC,
                                indexed_state(ev, block_timestamp=block.timestamp, timestamp_iso=iso),
                            )
                        )
            if new_refs:
                conn.execute(t.insert(), new_refs)
            for ref in revived:
                conn.execute(
                    t.update()
                    .where(
                        t.c.chain_id == ref["chain_id"], t.c.number == ref["number"], t.c.hash == ref["hash"]
                    )
                    .values(
                        canonical=True,
                        generation=ref["generation"],
                        events=ref["events"],
                        notifications_after=after,
                    )
                )
            if stored:
                self.recorder.insert_rows(session, stored)
            return len(stored)

    def set_cursor(self, block: BlockRef) -> None:
        """Record that the chain was scanned through `block` and nothing was found after the
        last stored block (one canonical ref, no events). A no-op if it is already stored."""
        self.append_blocks([(block, ())])

    def orphan_after(self, ancestor: int, *, depth: int) -> int:
        """A reorg replaced every block above `ancestor`. In ONE transaction: append a
        compensating `LogOrphaned` for every canonical log in those blocks (in their original
        order), mark their refs orphaned, and record the reorg. Nothing is deleted. Returns the
        number of events orphaned."""
        with Session(self.engine) as session, session.begin():
            conn = session.connection()
            self._bind_chain(conn)
            t = store_blocks
            head = self._head_on(conn)
            orphaned = conn.execute(
                sa.select(t)
                .where(t.c.chain_id == self.chain_id, t.c.canonical.is_(True), t.c.number > ancestor)
                .order_by(t.c.number)
            ).all()
            reorg_id = conn.execute(  # type: ignore[index]
                store_reorgs.insert().values(
                    chain_id=self.chain_id,
                    ancestor=ancestor,
                    depth=depth,
                    old_head=None if head is None else head.number,
                    blocks_orphaned=len(orphaned),
                    events_orphaned=0,
                    detected_at=datetime.now(UTC),
                )
            ).inserted_primary_key[0]
            compensating: list[StoredEvent] = []
            with_events = [r for r in orphaned if r.events]
            if with_events:
                hashes = {r.hash: r for r in with_events}
                start = min(int(r.notifications_after) for r in with_events)
                for indexed in self._indexed_after(conn, start):
                    block = hashes.get(indexed.block_hash)
                    if block is None or indexed.originator_version != 2 * int(block.generation) + 1:
                        continue
                    compensating.append(
                        self.mapper.to_stored_event(
                            LogOrphaned(
                                originator_id=indexed.originator_id,
                                originator_version=indexed.originator_version + 1,
                                timestamp=indexed.timestamp,
                                chain_id=indexed.chain_id,
                                block_number=indexed.block_number,
                                block_hash=indexed.block_hash,
                                tx_hash=indexed.tx_hash,
                                log_index=indexed.log_index,
                                contract=indexed.contract,
                                event=indexed.event,
                                ancestor=ancestor,
                                depth=depth,
                            )
                        )
                    )
                expected = sum(int(r.events) for r in with_events)
                if len(compensating) != expected:
                    raise AssertionError(
                        f"found {len(compensating)} events of the orphaned blocks, expected {expected}"
                    )
            if orphaned:
                conn.execute(
                    t.update()
                    .where(t.c.chain_id == self.chain_id, t.c.canonical.is_(True), t.c.number > ancestor)
                    .values(canonical=False, orphaned_by=reorg_id)
                )
            if compensating:
                self.recorder.insert_events(compensating, session=session)
                conn.execute(
                    store_reorgs.update()
                    .where(store_reorgs.c.id == reorg_id)
                    .values(events_orphaned=len(compensating))
                )
            return len(compensating)

    # ------------------------------------------------------------ reading

    def head(self) -> BlockRef | None:
        """The highest canonical block ref stored: how far the chain has been indexed."""
        with self.engine.connect() as conn:
            return self._head_on(conn)

    def canonical_blocks(self, from_number: int) -> list[BlockRef]:
        """Canonical refs with number >= `from_number`, ascending (for reorg detection)."""
        t = store_blocks
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t)
                .where(t.c.chain_id == self.chain_id, t.c.canonical.is_(True), t.c.number >= from_number)
                .order_by(t.c.number)
            ).all()
        return [_ref(r) for r in rows]

    def orphaned_hashes(self, connection: Connection | None = None) -> set[str]:
        """Hashes of every block a reorg has orphaned (and that is not canonical again)."""
        t = store_blocks
        q = sa.select(t.c.hash).where(t.c.chain_id == self.chain_id, t.c.canonical.is_(False))
        if connection is not None:
            return set(connection.execute(q).scalars())
        with self.engine.connect() as conn:
            return set(conn.execute(q).scalars())

    def events(
        self, after: int = 0, limit: int = 10_000, stop: int | None = None
    ) -> list[tuple[int, StoreEvent]]:
        """Stored domain events with notification id > `after` (and <= `stop`), as (id, event),
        in order."""
        with self.engine.connect() as conn:
            return self.events_on(conn, after, limit, stop)

    def events_on(
        self, connection: Connection, after: int, limit: int, stop: int | None = None
    ) -> list[tuple[int, StoreEvent]]:
        """Like `events`, on a given connection; `stop` is the highest position to include."""
        rows = self.recorder.select_rows_on(connection, after, limit, stop)
        to_domain = self._to_domain
        return [(r[0], to_domain(r)) for r in rows]

    def fold_events_on(
        self, connection: Connection, after: int, limit: int, stop: int | None = None
    ) -> list[tuple[int, FoldEvent]]:
        """Like `events_on`, for folding: each `LogIndexed` as an `IndexedLog` (the same fields,
        decoded in one step). `LogOrphaned` events, and any event stored by another version of
        its class, come as `events_on` gives them."""
        return self.decode_fold_chunk(connection, self.fold_chunk(connection, after, limit, stop))

    def fold_chunk(self, connection: Connection, after: int, limit: int, stop: int | None = None) -> str:
        """The events after `after` (up to `stop`, at most `limit`) as ONE JSON text: an array of
        `[position, is a LogIndexed, stored state]`, in store order ("[]" when there are none).

        NOTE: the database builds the text (an aggregate of the stored states, which are JSON
        already), so the read is one call into the driver, during which the GIL is released,
        and `decode_fold_chunk` turns it into events in one call of msgspec's decoder. Fetched
        row by row, reading and decoding the store took a third of a rebuild's folding thread.
        """
        sql = _FOLD_CHUNK[connection.dialect.name]
        params = (LOG_INDEXED_TOPIC, after, _NO_STOP if stop is None else stop, limit)
        with bulk.driver_cursor(connection, sql) as cursor:
            cursor.execute(sql, params)
            (text,) = cursor.fetchone()
        return "[]" if text is None else str(text)

    def decode_fold_chunk(self, connection: Connection, text: str) -> list[tuple[int, FoldEvent]]:
        """The events of a `fold_chunk` text. `connection` reads the rare event that is not a
        `LogIndexed` of this version through the library's mapper."""
        try:
            logs = _decode_chunk(text)
        except msgspec.ValidationError:
            logs = None  # a LogOrphaned among them
        if logs is not None and all(log.class_version == 1 for _, _, log in logs):
            out: list[tuple[int, FoldEvent]] = [(nid, log) for nid, _, log in logs]
        else:
            out = []
            others: list[int] = []
            for nid, indexed, raw in _decode_raw_chunk(text):
                if indexed:
                    log = decode_indexed(raw)
                    if log.class_version == 1:
                        out.append((nid, log))
                        continue
                others.append(nid)
            out += self._events_at(connection, others)
        if any(out[i][0] >= out[i + 1][0] for i in range(len(out) - 1)):
            out.sort(key=lambda item: item[0])
        return out

    def _events_at(self, connection: Connection, positions: list[int]) -> list[tuple[int, FoldEvent]]:
        """The events at store positions `positions` (ascending), through the library's mapper
        (upcasting included): one read per run of consecutive positions.

        NOTE: a reorg appends one `LogOrphaned` per orphaned log, all in a row; read one at a
        time (a statement each), the hundreds of a depth-12 reorg made folding it four times
        slower (bench/indexer_reorg.py: 0.2 s instead of 0.05 s on SQLite)."""
        out: list[tuple[int, FoldEvent]] = []
        i = 0
        while i < len(positions):
            j = i + 1
            while j < len(positions) and positions[j] == positions[j - 1] + 1:
                j += 1
            for row in self.recorder.select_rows_on(connection, positions[i] - 1, j - i):
                event = self._to_domain(row)
                out.append((row[0], event if isinstance(event, LogOrphaned) else _as_indexed(event)))
            i = j
        return out

    def _to_domain(self, row: tuple[int, Any, int, str, bytes]) -> StoreEvent:
        """`mapper.to_domain_event` of a stored row, for our two event classes without the
        library's per-event bookkeeping (its topic resolution, id convertor lookup, upcasting
        checks): the same object, built from the same decoded state."""
        cls = _DOMAIN_CLASSES.get(row[3])
        state = None if cls is None else self.mapper.transcoder.decode(row[4])
        if cls is None or state is None or "class_version" in state:
            notification = Notification(
                id=row[0], originator_id=_uuid(row[1]), originator_version=row[2], topic=row[3], state=row[4]
            )
            return cast(StoreEvent, self.mapper.to_domain_event(notification))
        state["originator_id"] = _uuid(row[1])
        state["originator_version"] = row[2]
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event

    def max_position(self) -> int:
        """The highest notification id (0 when the store is empty)."""
        with self.engine.connect() as conn:
            return self.recorder.max_notification_id_on(conn)

    def reorg_stats(self, connection: Connection) -> tuple[int, Any | None]:
        """(number of reorgs, the latest store_reorgs row or None)."""
        r = store_reorgs
        count = connection.execute(
            sa.select(sa.func.count()).select_from(r).where(r.c.chain_id == self.chain_id)
        ).scalar_one()
        last = connection.execute(
            sa.select(r).where(r.c.chain_id == self.chain_id).order_by(r.c.id.desc()).limit(1)
        ).first()
        return int(count), last

    # ------------------------------------------------------------ internals

    def _head_on(self, conn: Connection) -> BlockRef | None:
        t = store_blocks
        row = conn.execute(
            sa.select(t)
            .where(t.c.chain_id == self.chain_id, t.c.canonical.is_(True))
            .order_by(t.c.number.desc())
            .limit(1)
        ).first()
        return None if row is None else _ref(row)

    def _indexed_after(self, conn: Connection, start: int) -> Iterable[LogIndexed]:
        position = start
        while True:
            batch = self.events_on(conn, position, 5_000)
            if not batch:
                return
            for _, event in batch:
                if isinstance(event, LogIndexed):
                    yield event
            position = batch[-1][0]

    def _check_logs(self, block: BlockRef, logs: Sequence[ChainEvent]) -> None:
        for ev in logs:
            if ev.block_number != block.number or ev.block_hash != block.hash:
                raise UnknownBlock(ev.block_number, ev.block_hash)
            if ev.chain_id != self.chain_id:
                raise StoreMismatch(self.chain_id, ev.chain_id)

    def _bind_chain(self, conn: Connection) -> None:
        if self._bound:
            return
        found = conn.execute(sa.select(store_meta.c.value).where(store_meta.c.key == "chain_id")).scalar()
        if found is None:
            conn.execute(store_meta.insert().values(key="chain_id", value=str(self.chain_id)))
        elif int(found) != self.chain_id:
            raise StoreMismatch(self.chain_id, int(found))
        self._bound = True


def bound_chain_id(connection: Connection) -> int | None:
    """The chain this database indexes, or None if it is still empty."""
    found = connection.execute(sa.select(store_meta.c.value).where(store_meta.c.key == "chain_id")).scalar()
    return None if found is None else int(found)
