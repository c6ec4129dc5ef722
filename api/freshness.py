"""Which block the read models reflect, read in the same transaction as a request's data.

Every response says how fresh it is: `X-Indexed-Head` (the block the read models reflect),
`X-Finalized-Block` (the highest of those blocks that is final) and, in JSON bodies, `meta`.
The figures follow `indexer.status.read_status`: the indexer's head once the projector has
folded everything the store holds, else the last block it folded. They are read in ONE
statement so that a request costs one extra round trip, not four.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import anyio
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from api.prepared import Prepared
from ascendnet.log import get_logger
from indexer import models
from indexer.projection import APPLICATION_NAME
from indexer.store import projection_tracking, stored_events

HEAD_HEADER = "X-Indexed-Head"
FINALIZED_HEADER = "X-Finalized-Block"


@dataclass(frozen=True, slots=True)
class Freshness:
    """What a response reflects. All None before the indexer first wrote its status."""

    chain_id: int | None = None
    #: The block the read models reflect.
    indexed_head: int | None = None
    #: The highest reflected block that is final (never revisited by a reorg).
    finalized_block: int | None = None
    #: Store position (notification id) the read models include: the stream's cursor space.
    position: int = 0

    def meta(self) -> dict[str, int | None]:
        """The `meta` object of JSON bodies."""
        return {
            "chain_id": self.chain_id,
            "indexed_head": self.indexed_head,
            "finalized_block": self.finalized_block,
        }

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The freshness headers; an empty value means the indexer has not reported yet."""
        return [
            (HEAD_HEADER.lower().encode(), _text(self.indexed_head)),
            (FINALIZED_HEADER.lower().encode(), _text(self.finalized_block)),
        ]


def _text(value: int | None) -> bytes:
    return b"" if value is None else str(value).encode()


_STATUS = models.indexer_status


def _scalar(column: Any, *where: Any) -> Any:
    return sa.select(column).where(*where).scalar_subquery()


#: The figures a freshness is made of, as columns of one row that always exists (each a
#: scalar subquery: NULL before the indexer first reported). Hot statements carry them, so
#: that one statement reads the data and the block it reflects in one snapshot.
FRESHNESS_COLUMNS = (
    _scalar(_STATUS.c.chain_id).label("_f_chain_id"),
    _scalar(_STATUS.c.indexed_head).label("_f_indexed_head"),
    _scalar(_STATUS.c.finalized_block).label("_f_finalized_block"),
    _scalar(
        sa.func.max(projection_tracking.c.notification_id),
        projection_tracking.c.application_name == APPLICATION_NAME,
    ).label("_f_projected"),
    _scalar(sa.func.max(stored_events.c.id)).label("_f_latest"),
    _scalar(sa.func.max(models.block_digests.c.block_number)).label("_f_last_folded"),
)
#: `FRESHNESS_COLUMNS` as a one-row table, for statements to join their data to.
FRESHNESS = sa.select(*FRESHNESS_COLUMNS).subquery("fresh")
_QUERY = Prepared(sa.select(*FRESHNESS_COLUMNS), generic=True)


def freshness_of(row: Any) -> Freshness:
    """The freshness in a row carrying the `FRESHNESS_COLUMNS` (by their labels)."""
    projected = int(row["_f_projected"] or 0)
    if row["_f_chain_id"] is None:
        return Freshness(position=projected)
    latest = int(row["_f_latest"] or 0)
    reflects = row["_f_indexed_head"] if projected >= latest else row["_f_last_folded"]
    head = None if reflects is None else int(reflects)
    final = row["_f_finalized_block"]
    if final is not None and head is not None:
        final = min(int(final), head)
    elif head is None:
        final = None
    return Freshness(
        chain_id=int(row["_f_chain_id"]),
        indexed_head=head,
        finalized_block=None if final is None else int(final),
        position=projected,
    )


def read_freshness(conn: Connection) -> Freshness:
    """The freshness of what `conn`'s transaction sees (one statement)."""
    row = _QUERY.first(conn)
    assert row is not None  # a select of scalar subqueries returns one row
    return freshness_of(row)


_log = get_logger("api")


class FreshnessCache:
    """The latest freshness for responses that read no data (errors, health, the document)
    and for the stream's polling: refreshed at most every `max_age` seconds, by one reader at
    a time, in a worker thread so the event loop never waits on the database."""

    def __init__(self, engine: Engine, max_age: float) -> None:
        self.engine = engine
        self.max_age = max_age
        self._value: Freshness | None = None
        self._at = 0.0
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The background refresh `latest` started, while it runs.
        self._refresh: asyncio.Future[Freshness | None] | None = None

    def peek(self) -> Freshness | None:
        return self._value

    def _read(self) -> Freshness:
        with self.engine.connect() as conn, conn.begin():
            return read_freshness(conn)

    async def get(self, max_age: float | None = None) -> Freshness | None:
        """The cached freshness if younger than `max_age`, else a fresh read (None when the
        database cannot be read)."""
        limit = self.max_age if max_age is None else max_age
        if self._value is not None and time.monotonic() - self._at < limit:
            return self._value
        lock = self._lock_for_loop()
        async with lock:
            if self._value is not None and time.monotonic() - self._at < limit:
                return self._value
            try:
                value = await anyio.to_thread.run_sync(self._read)
            except sa.exc.SQLAlchemyError:
                return self._value
            self._value, self._at = value, time.monotonic()
            return value

    async def latest(self) -> Freshness | None:
        """The cached freshness at once, refreshed in the background once it is older than
        `max_age` (stale while revalidating); a read is awaited only while nothing is cached.

        NOTE: answers that read no data (probes, errors) must not wait for a refresh: under
        load the refreshing thread waits for the GIL at every step, and every request that
        waited on it stalled for up to 0.4 s once a second (the tail of `/health`)."""
        value = self._value
        if value is None:
            return await self.get()
        if time.monotonic() - self._at >= self.max_age:
            refresh = self._refresh
            # (A refresh begun on another event loop, which test clients close, never ends.)
            if refresh is None or refresh.get_loop() is not asyncio.get_running_loop():
                self._refresh = asyncio.ensure_future(self.get())
                self._refresh.add_done_callback(self._refreshed)
        return value

    def _refreshed(self, task: asyncio.Future[Freshness | None]) -> None:
        if self._refresh is task:
            self._refresh = None
        if not task.cancelled() and (exc := task.exception()) is not None:
            # `get` answers database errors with the cached value; anything else is a bug.
            _log.error("freshness_refresh_failed", error=f"{type(exc).__name__}: {exc}")

    def _lock_for_loop(self) -> asyncio.Lock:
        # NOTE: one lock per event loop: test clients run the app on short-lived loops.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock
