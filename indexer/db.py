"""Engines for the indexer database (SQLite by default, PostgreSQL at scale) and its migrations.

The event store and the read models live in the same database, so a read-model change and the
projection's tracking position really do commit in one transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

MIGRATIONS = Path(__file__).with_name("migrations")
#: SQLite pages (4 KiB) of WAL after which a commit checkpoints it into the database file.
WAL_CHECKPOINT_PAGES = 16_384
#: Bytes of a SQLite database a read-only connection maps (capped by SQLite's build, 2 GiB).
SQLITE_READER_MMAP = 2**31 - 2**16
#: Compiled statements each SQLite connection keeps (the driver's default is 128): the batched
#: writes use a few sizes of statement per table (indexer/bulk.py), each costly to compile.
SQLITE_CACHED_STATEMENTS = 256


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the indexer's database, tuned for one writer.

    SQLite: WAL (readers never block the writer), `synchronous=NORMAL` (durable at each
    checkpoint, never corrupt), foreign keys on, a busy timeout, and real transactions: pysqlite
    would otherwise start them lazily at the first write, so reads earlier in a step would not
    belong to it. PostgreSQL: batched executemany for UPDATEs as well as INSERTs.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("cached_statements", SQLITE_CACHED_STATEMENTS)
        engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
        _sqlite_pragmas(engine, readonly=False)
        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        if parsed.get_driver_name() == "psycopg2":
            kwargs.setdefault("executemany_mode", "values_plus_batch")
        return sa.create_engine(url, **kwargs)
    return sa.create_engine(url, **kwargs)


def make_readonly_engine(url: str, **kwargs: Any) -> Engine:
    """An engine that cannot write, for the read-only API.

    SQLite opens the file with `mode=ro` (a URI), so even a bug cannot change it; PostgreSQL
    sessions default to read-only transactions.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database.startswith("file:"):
            database = f"file:{Path(database).resolve()}"
        # SQLAlchemy's documented form: the file: URI as database, uri=true among the query.
        query = {**parsed.query, "mode": "ro", "uri": "true"}
        engine = sa.create_engine(sa.engine.URL.create("sqlite", database=database, query=query), **kwargs)
        _sqlite_pragmas(engine, readonly=True)
        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args["options"] = (
            connect_args.get("options", "") + " -c default_transaction_read_only=on"
        ).strip()
        return sa.create_engine(url, connect_args=connect_args, **kwargs)
    return sa.create_engine(url, **kwargs)


def _sqlite_pragmas(engine: Engine, *, readonly: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # NOTE: hand transaction control to SQLAlchemy's "begin" event below (the documented
        # pysqlite recipe); otherwise pysqlite defers BEGIN to the first write.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not readonly:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint every 64 MiB of WAL instead of 4 MiB: a backfill transaction writes
            # megabytes, and each checkpoint costs two fsyncs. Durability is unchanged (WAL and
            # synchronous=NORMAL: a commit survives a crash of the process, never corrupts).
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            # NOTE: Debian builds SQLite with SECURE_DELETE, which overwrites every freed page
            # with zeros (and writes it to the WAL): emptying the read models for a rebuild cost
            # a second per 100,000 events. The data is public chain data; nothing to scrub.
            cursor.execute("PRAGMA secure_delete=OFF")
        else:
            # NOTE: readers (the API) map the file instead of reading it page by page: a page
            # not in the connection's cache is then a memory access, not a system call (a
            # third of a lookup by id on a database larger than the cache).
            cursor.execute(f"PRAGMA mmap_size={SQLITE_READER_MMAP}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA cache_size=-32768")  # 32 MiB per connection
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # On the driver's connection: SQLAlchemy's execution path cost more than the BEGIN
        # (the API begins a read transaction per request).
        dbapi = conn.dialect.loaded_dbapi
        try:
            conn.connection.driver_connection.execute("BEGIN")  # type: ignore[union-attr]
        except dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance("BEGIN", None, exc, dbapi.Error, dialect=conn.dialect) from exc


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema (event store and read models) up to `revision` with Alembic."""
    from alembic import command

    with engine.begin() as connection:
        cfg = alembic_config(connection)
        command.upgrade(cfg, revision)
        if revision == "head":
            ensure_indexes(connection)


def ensure_indexes(connection: sa.Connection) -> None:
    """Create any index the models declare that the database lacks (a rebuild that died while
    it had dropped one, see `indexer.rebuild.DEFERRED_INDEXES`)."""
    from indexer import models

    for table in models.metadata.sorted_tables:
        for index in table.indexes:
            connection.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def alembic_config(connection: sa.Connection | None = None) -> Any:
    """The Alembic config for the indexer's migrations; with `connection`, env.py uses it."""
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS.parent / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def drop_pg_database(admin: Engine, name: str, *, attempts: int = 5) -> None:
    """Drop PostgreSQL database `name` through `admin` (an AUTOCOMMIT engine on another
    database of the server): the throwaway databases of tests and benchmarks.

    NOTE: only our own sessions are terminated; an autovacuum worker (a superuser process we may
    not signal: `pg_terminate_backend` on it fails the whole statement) is cancelled by DROP
    DATABASE itself, and FORCE ends what is left. A session that is still closing makes DROP fail
    for a moment, hence the retries."""
    import time

    for attempt in range(attempts):
        try:
            with admin.connect() as conn:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND usename = current_user AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
