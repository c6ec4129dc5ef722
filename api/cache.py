"""Whole answers of the data routes, kept while the database has not changed.

Frontends ask the same questions over and over (the first page of open jobs, an account's
page) between two commits of the indexer. An answer is kept with the database's version at the
moment before it was read, and given again only while the version is still that one:

- **SQLite**: `PRAGMA data_version` on one connection the cache keeps, which changes whenever
  another connection commits (read from the WAL index: microseconds, no I/O).
- **PostgreSQL**: the WAL position (`pg_current_wal_insert_lsn()`, or the replay position on a
  standby), which every commit moves (one small prepared statement per request).

Why that is exact: the version is read BEFORE the answer's own read, so the answer reflects at
least every commit the version counts. It is given again only while the version is unchanged,
which means nothing was committed since, so the answer is what a read now would return (its
freshness, `meta` and the X-Indexed-Head headers included). A commit between the version read
and the answer's read moves the version past it: that answer is never given again.

Only GET answers with status 200 of the data routes are kept (not `/status`, `/ready`,
`/health`, whose answers depend on the clock, nor `/stream`), least recently used first out,
within `ASCENDNET_API_CACHE_MB` per worker, and only from the second time it is asked for.
Each is keyed by path and query string as sent.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import Reader
from api.freshness import Freshness
from api.prepared import Prepared
from api.routing import first_segment
from ascendnet.log import get_logger

#: First path segments whose GET answers depend on the database alone.
CACHED_SEGMENTS = frozenset(
    ("prompts", "listings", "licences", "sales", "ratings", "jobs", "providers")
    + ("accounts", "fees", "events", "blocks")
)
#: Header telling whether an answer came from the cache (`hit`) or was read (`miss`).
CACHE_HEADER = "x-cache"
#: Bytes an entry holds besides its body (measured with tracemalloc: about 980 for the entry,
#: its key, headers, freshness and dict slot).
ENTRY_OVERHEAD = 1000
#: How many keys asked for once are remembered (as hashes) before all are forgotten.
SEEN_KEYS = 100_000
_HIT, _MISS = (CACHE_HEADER.encode(), b"hit"), (CACHE_HEADER.encode(), b"miss")

_WAL_POSITION = Prepared(
    sa.text(
        "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text "
        "ELSE pg_current_wal_insert_lsn()::text END"
    ),
    generic=True,
)
_log = get_logger("api")


class _Entry:
    __slots__ = ("version", "start", "body", "freshness")

    def __init__(self, version: object, start: Message, body: bytes, freshness: Freshness) -> None:
        self.version = version
        self.start = start
        self.body = body
        #: What the answer reflects, for the freshness headers (outside this middleware).
        self.freshness = freshness


def _footprint(key: tuple[str, bytes], entry: _Entry) -> int:
    """About the memory an entry holds: its body and key, and the objects around them."""
    return len(entry.body) + len(key[0]) + len(key[1]) + ENTRY_OVERHEAD


def _wal_position(conn: Connection) -> object:
    return _WAL_POSITION.tuples(conn)[0][0]


class ResponseCache:
    """The kept answers of one worker, and the database version they were read at."""

    def __init__(self, engine: Engine, reader: Reader, max_bytes: int) -> None:
        self.engine = engine
        self.reader = reader
        self.max_bytes = max_bytes
        #: An answer larger than this is not kept (it would push out many smaller ones).
        self.max_entry = max(max_bytes // 64, 1)
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, bytes], _Entry] = OrderedDict()
        #: Hashes of the keys asked for once since the set was last emptied: an answer is kept
        #: the second time it is asked for (see `admit`).
        self._seen: set[int] = set()
        self._sqlite = engine.dialect.name == "sqlite"
        self._probe: Any = None

    async def version(self) -> object | None:
        """The database's version now; None when it cannot be read (nothing is kept then)."""
        try:
            if self._sqlite:
                return self._data_version()
            return await self.reader.read_one(_wal_position, (), {})
        except sa.exc.SQLAlchemyError as exc:
            _log.warning("cache_version_unreadable", error=f"{type(exc).__name__}: {exc}")
            return None
        except self._dbapi_error() as exc:
            self._close_probe()
            _log.warning("cache_version_unreadable", error=f"{type(exc).__name__}: {exc}")
            return None

    def _data_version(self) -> int:
        if self._probe is None:
            self._probe = self.engine.raw_connection()
        cursor = self._probe.driver_connection.execute("PRAGMA data_version")
        return int(cursor.fetchone()[0])

    def _dbapi_error(self) -> type[BaseException]:
        error: type[BaseException] = self.engine.dialect.loaded_dbapi.Error
        return error

    def _close_probe(self) -> None:
        if self._probe is not None:
            self._probe.invalidate()
            self._probe = None

    def holds(self, key: tuple[str, bytes]) -> bool:
        """Whether an answer to `key` is kept (of whatever version)."""
        return key in self._entries

    def get(self, key: tuple[str, bytes], version: object) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None or entry.version != version:
            return None
        self._entries.move_to_end(key)
        return entry

    def admit(self, key: tuple[str, bytes]) -> bool:
        """Whether an answer to `key` is worth keeping: only once it has been asked for before
        (until then the request reads without even reading the version: no cost at all).

        NOTE: a request for a random one of a million jobs is seldom asked again; keeping
        every such answer filled the memory with entries never given, and the garbage
        collector walked them all, over and over: `/jobs/{id}` served a third fewer requests.
        Keys asked for once are remembered as hashes (no objects to collect), up to
        `SEEN_KEYS` of them, then forgotten all at once."""
        marker = hash(key)
        if marker in self._seen:
            return True
        if len(self._seen) >= SEEN_KEYS:
            self._seen.clear()
        self._seen.add(marker)
        return False

    def put(self, key: tuple[str, bytes], entry: _Entry) -> None:
        if len(entry.body) > self.max_entry:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= _footprint(key, old)
        self._entries[key] = entry
        self.size += _footprint(key, entry)
        while self.size > self.max_bytes:
            dropped_key, dropped = self._entries.popitem(last=False)
            self.size -= _footprint(dropped_key, dropped)

    def close(self) -> None:
        self._close_probe()
        self._entries.clear()
        self._seen.clear()
        self.size = 0


class ResponseCacheMiddleware:
    """Gives a kept answer when the database has not changed since it was read (see the
    module's doc); reads and keeps it otherwise."""

    def __init__(self, app: ASGIApp, cache: ResponseCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or first_segment(scope["path"]) not in CACHED_SEGMENTS
        ):
            await self.app(scope, receive, send)
            return
        cache = self.cache
        key = (scope["path"], scope["query_string"])
        if not cache.holds(key) and not cache.admit(key):
            # Asked for the first time: read it, without the version (nothing to keep).
            cache.misses += 1
            await self.app(scope, receive, _marked(send))
            return
        version = await cache.version()
        if version is None:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        entry = cache.get(key, version)
        if entry is not None:
            cache.hits += 1
            state["freshness"] = entry.freshness
            await send(entry.start)
            await send({"type": "http.response.body", "body": entry.body})
            return
        cache.misses += 1
        start: Message | None = None
        parts: list[bytes] = []
        complete = False

        send_marked = _marked(send)

        async def keep(message: Message) -> None:
            nonlocal start, complete
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send_marked(message)

        await self.app(scope, receive, keep)
        fresh = state.get("freshness")
        if start is not None and start["status"] == 200 and complete and isinstance(fresh, Freshness):
            headers = [*start.get("headers", []), _HIT]
            cache.put(key, _Entry(version, dict(start, headers=headers), b"".join(parts), fresh))


def _marked(send: Send) -> Send:
    """`send` with `X-Cache: miss` added to the answer's headers."""

    async def marked(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", []), _MISS])
        await send(message)

    return marked
