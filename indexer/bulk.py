"""Batched writes for the projector's hot path, as statements ready for the driver.

NOTE: SQLAlchemy processes every parameter of every row of an executemany in Python (type
processors, dict building, key checks), which costs more than the database itself when folding
tens of thousands of rows a second. A `TableWriter` turns rows (plain tuples in column order)
into a few `Write`s that hand the driver flat parameters, doing the one conversion our column
types need (uint256 as padded text on SQLite) itself:

- SQLite: multi-row `INSERT ... VALUES (...), (...)` statements of up to 4,096 parameters
  (upserts and updates as `ON CONFLICT ... DO UPDATE`), in a few fixed sizes the driver
  caches. One statement binds its parameters once and runs in ONE call into SQLite, during
  which the GIL is released: a writer thread of the projector (indexer/projection.py, off
  Linux) then costs the folding thread almost nothing. An executemany would take the GIL back after every row,
  and wait up to the interpreter's switch interval (5 ms) each time the other thread holds it:
  measured, 100,000 rows took 346 s that way.
- PostgreSQL (psycopg2): `COPY ... FROM STDIN` for inserts, multi-row `execute_values` for
  upserts and updates; psycopg2 releases the GIL while the server works.

Writes are built where the rows are folded and run wherever the transaction is: at once, or in
the projector's writer (a forked process on Linux, which receives them as MessagePack). They
only ever run statements built from our own tables, with values of the types those tables
declare.
"""

from __future__ import annotations

import io
import itertools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from indexer.errors import UnsupportedDriver
from indexer.models import Uint256

Values = tuple[Any, ...]

#: Most bound parameters in one SQLite statement: within SQLITE_MAX_VARIABLE_NUMBER (32,766
#: since SQLite 3.32, 999 before), and small enough that the compiled statements the driver
#: caches (`db.SQLITE_CACHED_STATEMENTS`) stay a few megabytes.
SQLITE_STATEMENT_PARAMS = 4_096 if sqlite3.sqlite_version_info >= (3, 32) else 999
#: Rows per COPY payload and per PostgreSQL multi-row statement.
COPY_PAGE = 2_000
PG_PAGE = 1_000


@contextmanager
def driver_cursor(conn: Connection, sql: str) -> Iterator[Any]:
    """A DB-API cursor of `conn` (inside its transaction); driver errors come out as SQLAlchemy
    would raise them (IntegrityError for a duplicate key, ...)."""
    cursor = conn.connection.cursor()
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(
            sql, None, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from exc
    finally:
        cursor.close()


class Write(Protocol):
    """One statement, ready for the driver."""

    def run(self, conn: Connection) -> None: ...


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL in the driver's paramstyle, with its (flat) parameters."""

    sql: str
    params: Sequence[Any]

    def run(self, conn: Connection) -> None:
        with driver_cursor(conn, self.sql) as cursor:
            cursor.execute(self.sql, self.params)


@dataclass(frozen=True, slots=True)
class Copy:
    """PostgreSQL `COPY ... FROM STDIN` with its payload in COPY's text format."""

    sql: str
    text: str

    def run(self, conn: Connection) -> None:
        with driver_cursor(conn, self.sql) as cursor:
            # psycopg2 encodes a text stream in the connection's client encoding.
            cursor.copy_expert(self.sql, io.StringIO(self.text))


@dataclass(frozen=True, slots=True)
class ManyValues:
    """PostgreSQL: psycopg2's `execute_values` (one multi-row statement per page).

    NOTE: an executemany sends one statement per row, each parsed and planned by the server;
    that was two thirds of the projector's time on PostgreSQL."""

    sql: str
    rows: Sequence[Values]
    template: str | None

    def run(self, conn: Connection) -> None:
        from psycopg2.extras import execute_values

        with driver_cursor(conn, self.sql) as cursor:
            execute_values(cursor, self.sql, self.rows, template=self.template, page_size=PG_PAGE)


def run_all(conn: Connection, writes: Sequence[Write]) -> None:
    for write in writes:
        write.run(conn)


# ---------------------------------------------------------------- COPY text


def _copy_escape(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    """One value in COPY's text format (the types our tables hold)."""
    kind = type(value)
    if kind is str:
        return _copy_escape(value)
    if value is None:
        return "\\N"
    if kind is bool:
        return "t" if value else "f"
    if kind is int:
        return str(value)
    if kind in (bytes, bytearray, memoryview):
        return "\\\\x" + bytes(value).hex()
    raise TypeError(f"no COPY text form for {kind.__name__}")


def copy_writes(table: sa.Table, columns: Sequence[str], rows: Sequence[Values]) -> list[Write]:
    """PostgreSQL (psycopg2): INSERT many rows with COPY ... FROM STDIN (text format), in pages.

    NOTE: a multi-row INSERT costs the server a parse of megabytes of SQL literals and the client
    a `mogrify` per row; COPY is about three times faster on both sides (measured: 50,000 raw
    events in 1.1 s instead of 3.3 s)."""
    sql = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    return [
        Copy(
            sql, "".join(["\t".join([_copy_text(v) for v in row]) + "\n" for row in rows[i : i + COPY_PAGE]])
        )
        for i in range(0, len(rows), COPY_PAGE)
    ]


def quote(name: str) -> str:
    """An SQL identifier, quoted (both dialects)."""
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------- tables


def supported(dialect: Dialect) -> bool:
    """Whether `TableWriter` can write through this dialect's driver (pysqlite, psycopg2)."""
    return dialect.name == "sqlite" or (dialect.name == "postgresql" and dialect.driver == "psycopg2")


class TableWriter:
    """INSERT / UPDATE / UPSERT many rows of one table, each row given as a tuple of the values
    of `columns` (default: every column, in the table's order); UPDATE and UPSERT set every
    non-key column. `key` names the primary key."""

    def __init__(self, table: sa.Table, key: Sequence[str], columns: Sequence[str] | None = None) -> None:
        self.table = table
        self.key = tuple(key)
        self.columns = tuple(columns) if columns is not None else tuple(c.name for c in table.c)
        #: Positions of the uint256 columns (padded text on SQLite).
        self._wide = tuple(i for i, c in enumerate(self.columns) if isinstance(table.c[c].type, Uint256))
        self._sqlite_sql: dict[tuple[str, int], str] = {}
        self._pg_sql: dict[str, tuple[str, str | None]] = {}

    def writes(self, dialect: Dialect, kind: str, rows: Sequence[Values]) -> list[Write]:
        """The statements that `kind` ("insert", "update" or "upsert") these rows."""
        if not rows:
            return []
        if dialect.name == "sqlite":
            return self._sqlite(kind, rows)
        if dialect.name == "postgresql" and dialect.driver == "psycopg2":
            if kind == "insert":
                return copy_writes(self.table, self.columns, rows)
            sql, template = self._pg_statement(dialect, kind)
            return [ManyValues(sql, rows, template)]
        raise UnsupportedDriver(dialect.name, dialect.driver)

    def insert(self, conn: Connection, rows: Sequence[Values]) -> None:
        run_all(conn, self.writes(conn.dialect, "insert", rows))

    def update(self, conn: Connection, rows: Sequence[Values]) -> None:
        run_all(conn, self.writes(conn.dialect, "update", rows))

    def upsert(self, conn: Connection, rows: Sequence[Values]) -> None:
        run_all(conn, self.writes(conn.dialect, "upsert", rows))

    # ------------------------------------------------------------ SQLite

    def _sqlite(self, kind: str, rows: Sequence[Values]) -> list[Write]:
        wide = self._wide
        if wide:
            convert: Callable[[Values], Values] = _padder(wide)
            rows = [convert(r) for r in rows]
        out: list[Write] = []
        at = 0
        for size in self._ladder:
            while len(rows) - at >= size:
                chunk = rows[at : at + size]
                out.append(
                    Statement(self._sqlite_text(kind, size), list(itertools.chain.from_iterable(chunk)))
                )
                at += size
        return out

    @property
    def _ladder(self) -> tuple[int, ...]:
        """Rows per SQLite statement: the most, then halves down to one.

        NOTE: SQLite compiles a statement of N rows in about eight times what running it
        costs, so the statements must come from the driver's cache: rows go in chunks of
        these few sizes only (a remainder of 300 as 256 + 32 + 8 + 4), each size's text
        compiled once per connection."""
        most = 1
        while most * 2 * len(self.columns) <= SQLITE_STATEMENT_PARAMS:
            most *= 2
        return tuple(most >> i for i in range(most.bit_length()))

    def _sqlite_text(self, kind: str, n: int) -> str:
        found = self._sqlite_sql.get((kind, n))
        if found is None:
            one = "(" + ", ".join("?" for _ in self.columns) + ")"
            sql = (
                f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(c) for c in self.columns)}) "
                f"VALUES {', '.join([one] * n)}"
            )
            if kind != "insert":
                # NOTE: an update of rows known to exist is written as an upsert: one statement
                # form for both, and the same work in SQLite (a key lookup, then the update).
                others = [c for c in self.columns if c not in self.key]
                sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in others)
                sql += f" ON CONFLICT ({', '.join(quote(k) for k in self.key)}) DO UPDATE SET {sets}"
            found = self._sqlite_sql[(kind, n)] = sql
        return found

    # ------------------------------------------------------------ PostgreSQL

    def _pg_statement(self, dialect: Dialect, kind: str) -> tuple[str, str | None]:
        found = self._pg_sql.get(kind)
        if found is not None:
            return found
        t = self.table
        cols = list(self.columns)
        others = [c for c in cols if c not in self.key]
        collist = ", ".join(quote(c) for c in cols)
        template: str | None = None
        if kind == "upsert":
            sets = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in others)
            keys = ", ".join(quote(k) for k in self.key)
            sql = (
                f"INSERT INTO {quote(t.name)} ({collist}) VALUES %s ON CONFLICT ({keys}) DO UPDATE SET {sets}"
            )
        elif kind == "update":
            # VALUES rows carry no column types of their own (a column of NULLs would be text):
            # cast each placeholder to its column's type.
            template = "(" + ", ".join(f"%s::{t.c[c].type.compile(dialect=dialect)}" for c in cols) + ")"
            sets = ", ".join(f"{quote(c)} = v.{quote(c)}" for c in others)
            match = " AND ".join(f"t.{quote(k)} = v.{quote(k)}" for k in self.key)
            sql = f"UPDATE {quote(t.name)} AS t SET {sets} FROM (VALUES %s) AS v({collist}) WHERE {match}"
        else:
            raise ValueError(f"unknown write kind {kind!r}")
        self._pg_sql[kind] = (sql, template)
        return sql, template


def _padder(wide: tuple[int, ...]) -> Callable[[Values], Values]:
    """A row with its uint256 values (at positions `wide`) as 78-digit text."""
    if len(wide) == 1:
        (at,) = wide

        def one(row: Values) -> Values:
            v = row[at]
            return row if v is None else (*row[:at], f"{v:078d}", *row[at + 1 :])

        return one

    def many(row: Values) -> Values:
        out = list(row)
        for i in wide:
            v = out[i]
            if v is not None:
                out[i] = f"{v:078d}"
        return tuple(out)

    return many


def insert_columns(conn: Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Values]) -> None:
    """INSERT many rows, each a tuple of the values of `columns` (in that order), already in
    the form the driver takes (no type processing)."""
    TableWriter(table, (), columns).insert(conn, rows)
