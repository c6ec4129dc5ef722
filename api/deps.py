"""Dependencies of the routes, as `Annotated` aliases: the read-only database session and the
settings.

The API cannot write: SQLite is opened through a `mode=ro` URI, PostgreSQL sessions run
read-only transactions (`default_transaction_read_only` plus psycopg2's read-only session), with
REPEATABLE READ so that every statement of a request sees one snapshot, and a statement timeout
so no request can hold the database for long.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request
from sqlalchemy.engine import Connection, Engine, make_url
from starlette.concurrency import run_in_threadpool

from api.freshness import Freshness, read_freshness
from api.prepared import forget_session_settings
from api.settings import ApiSettings
from indexer.db import make_readonly_engine

#: Longest a PostgreSQL statement of the API may run (milliseconds).
STATEMENT_TIMEOUT_MS = 10_000

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")


def make_api_engine(settings: ApiSettings) -> Engine:
    """A read-only engine over the indexer's database, pooled for the API's worker threads."""
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {
        "pool_size": settings.api_db_pool_size,
        "max_overflow": settings.api_db_pool_size,
        "pool_timeout": 10,
    }
    if url.get_backend_name() == "postgresql":
        # NOTE: no ping per checkout (a round trip on every request): a connection that died
        # with a server restart fails one request with 503 and is replaced.
        kwargs["pool_pre_ping"] = False
        kwargs["isolation_level"] = "REPEATABLE READ"
        kwargs["connect_args"] = {"options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"}
        engine = make_readonly_engine(settings.database_url, **kwargs)
        return engine.execution_options(postgresql_readonly=True)
    return make_readonly_engine(settings.database_url, **kwargs)


async def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


class Reader:
    """Runs read functions in one read-only transaction each, on connections it keeps.

    NOTE: a request does not check a connection out of SQLAlchemy's pool and back in (with
    its events, reset and bookkeeping, which cost more than a lookup by key): the reader keeps
    the connections it opened, hands one to each read and takes it back after the commit
    (a list's append and pop, atomic under the GIL). It holds at most one per concurrent read:
    one per worker thread, or a single one when reads run on the event loop (`inline`). A
    connection that failed (a server restart) is closed and replaced by the next read.
    """

    def __init__(self, engine: Engine, *, inline: bool = False) -> None:
        self.engine = engine
        #: Run reads on the event loop rather than in a worker thread (no thread hop).
        self.inline = inline
        self._idle: list[Connection] = []
        #: Connections for single statements (`run_one`), in autocommit mode on PostgreSQL.
        self._idle_one: list[Connection] = []

    def run(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Freshness, T]:
        """`fn(conn, *args, **kwargs)` and the freshness, both read in one transaction."""
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self.engine.connect()
        try:
            with conn.begin():
                # NOTE: begun explicitly, so statements run on the driver's cursor
                # (api.prepared) share the transaction's snapshot too.
                fresh = read_freshness(conn)
                result = fn(conn, *args, **kwargs)
        except BaseException:
            forget_session_settings(conn)
            raise
        finally:
            _hand_back(self._idle, conn)
        return fresh, result

    async def read(
        self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Freshness, T]:
        return await self._dispatch(self.run, fn, args, kwargs)

    def run_one(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        """`fn(conn, *args, **kwargs)`, reading on `conn`'s driver (`Prepared` statements) in
        one snapshot: on PostgreSQL `fn` runs ONE statement, outside of any transaction (alone,
        a statement reads one snapshot by itself); on SQLite, in a read transaction.

        NOTE: on PostgreSQL a transaction costs a round trip to begin and one to end, as many
        as the statement itself; these connections are in autocommit mode, so a request that
        needs one statement (its data and freshness together) costs one round trip."""
        try:
            conn = self._idle_one.pop()
        except IndexError:
            conn = self.engine.connect()
            if conn.dialect.name == "postgresql":
                conn.connection.driver_connection.autocommit = True  # type: ignore[union-attr]
        driver = conn.connection.driver_connection
        sqlite = conn.dialect.name == "sqlite"
        try:
            if sqlite:
                # NOTE: SQLite: a read transaction on the driver (microseconds, no round trip),
                # so a listing reads its page and the freshness as two plain statements, which
                # SQLite runs faster than one that joins them.
                driver.execute("BEGIN")  # type: ignore[union-attr]
                try:
                    result = fn(conn, *args, **kwargs)
                finally:
                    driver.execute("COMMIT")  # type: ignore[union-attr]
            else:
                result = fn(conn, *args, **kwargs)
        finally:
            _hand_back(self._idle_one, conn)
        return result

    async def read_one(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        return await self._dispatch(self.run_one, fn, args, kwargs)

    async def _dispatch(
        self, run: Callable[..., R], fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        """`run(fn, args, kwargs)` on the event loop (`inline`) or in a worker thread."""
        if self.inline:
            return run(fn, args, kwargs)
        return await run_in_threadpool(run, fn, args, kwargs)

    def close(self) -> None:
        """Close the connections it holds (at shutdown)."""
        while self._idle:
            self._idle.pop().close()
        while self._idle_one:
            self._idle_one.pop().close()


class ReadSession:
    """Read-only access to the read models for one request.

    `await session.read(fn, *args)` runs `fn(connection, *args)` inside one read-only
    transaction that first reads the freshness the answer reflects: in a worker thread (the
    event loop never waits on the database; one thread hop per request, whatever the number of
    queries), or on the event loop when the reader is `inline`.
    """

    def __init__(self, reader: Reader, request: Request) -> None:
        self.reader = reader
        self.request = request
        self.freshness = Freshness()

    async def read(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        fresh, result = await self.reader.read(fn, args, kwargs)
        self._reflects(fresh)
        return result

    async def read_one(
        self, fn: Callable[Concatenate[Connection, P], tuple[Freshness, T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(connection, *args)` that reads with ONE statement, returning the freshness it
        read with its data (see `Reader.run_one`), and the data."""
        fresh, result = await self.reader.read_one(fn, args, kwargs)
        self._reflects(fresh)
        return result

    def _reflects(self, fresh: Freshness) -> None:
        self.freshness = fresh
        # The freshness headers middleware reads it from the request's state.
        self.request.state.freshness = fresh

    def meta(self) -> dict[str, int | None]:
        """The `meta` object of the answer: what the last read reflected."""
        return self.freshness.meta()


async def get_session(request: Request) -> ReadSession:
    return ReadSession(request.app.state.reader, request)


SessionDep = Annotated[ReadSession, Depends(get_session)]


def _hand_back(idle: list[Connection], conn: Connection) -> None:
    """Keep `conn` for the next read, unless it failed for good (a server restart): closed, the
    next read opens another."""
    if conn.invalidated or conn.closed:
        conn.close()
    else:
        idle.append(conn)
