"""One writer per database: `indexer run` holds this lock for as long as it runs.

PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on a dedicated connection, released
by the server when that connection ends, however the process dies. SQLite: an exclusive
`flock` on `<database file>.lock`, released by the kernel when the process dies. Either way a
second writer is refused at once with the holder's PID, never queued behind the first.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from indexer.errors import IndexerError

#: The advisory lock key pair: "ASND" and the lock's purpose (1: the indexer's writer).
_PG_LOCK_CLASS = 0x41534E44
_PG_LOCK_WRITER = 1
_APP_NAME_PREFIX = "ascendnet-indexer pid="


class IndexerLocked(IndexerError, RuntimeError):
    """Another indexer already writes to this database."""

    def __init__(self, database: str, holder_pid: int | None) -> None:
        self.database = database
        self.holder_pid = holder_pid
        who = f"process {holder_pid}" if holder_pid is not None else "another process"
        super().__init__(
            f"Another indexer ({who}) is already writing to {database}; only one may run at a time. "
            "Stop it first, or point this one at a different database (--database-url)."
        )


@contextmanager
def writer_lock(database_url: str) -> Iterator[None]:
    """Holds the one-writer lock of `database_url` for the duration of the block.

    Raises IndexerLocked when another process holds it."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            yield  # a private in-memory database cannot have a second writer
            return
        with _file_lock(Path(database)):
            yield
    elif url.get_backend_name() == "postgresql":
        with _pg_lock(database_url):
            yield
    else:
        raise IndexerError(
            f"Unsupported database {url.render_as_string(hide_password=True)}: use SQLite or PostgreSQL."
        )


@contextmanager
def _file_lock(db_path: Path) -> Iterator[None]:
    lock_path = db_path.with_name(db_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexerLocked(str(db_path), _read_pid(fd)) from None
        # NOTE: the PID is only informative (for the refusal message); the flock is the lock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


@contextmanager
def _pg_lock(database_url: str) -> Iterator[None]:
    safe = make_url(database_url).render_as_string(hide_password=True)
    # A dedicated single-connection engine: the lock lives exactly as long as this connection.
    engine = sa.create_engine(
        database_url,
        poolclass=sa.pool.StaticPool,
        connect_args={"application_name": f"{_APP_NAME_PREFIX}{os.getpid()}"},
    )
    try:
        with engine.connect() as conn:
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k1, :k2)"),
                {"k1": _PG_LOCK_CLASS, "k2": _PG_LOCK_WRITER},
            ).scalar_one()
            conn.commit()
            if not got:
                raise IndexerLocked(safe, _pg_holder_pid(conn))
            try:
                yield
            finally:
                conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:k1, :k2)"),
                    {"k1": _PG_LOCK_CLASS, "k2": _PG_LOCK_WRITER},
                )
                conn.commit()
    finally:
        engine.dispose()


def _pg_holder_pid(conn: sa.Connection) -> int | None:
    """The OS PID of the indexer holding the lock, from its connection's application_name."""
    row = conn.execute(
        sa.text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :k1 AND l.objid = :k2 "
            "AND l.objsubid = 2 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"k1": _PG_LOCK_CLASS, "k2": _PG_LOCK_WRITER},
    ).first()
    conn.commit()
    if row is None or not str(row[0]).startswith(_APP_NAME_PREFIX):
        return None
    try:
        return int(str(row[0]).removeprefix(_APP_NAME_PREFIX))
    except ValueError:
        return None
