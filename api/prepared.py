"""Fixed statements of the hot paths, compiled once per dialect and run on the driver's cursor.

NOTE: for a lookup by key, SQLAlchemy's per-execution work (cache key, result metadata for
each of a wide row's columns, value processors) costs far more than SQLite's own (about
0.3 ms a statement against a few microseconds). A `Prepared` statement is compiled once per
dialect and run on the DBAPI cursor of the request's connection, inside its transaction if it
has one (one statement alone is read in one snapshot by itself). Rows come back as `Record`s
holding the driver's values: a uint256 as the indexer stored it (zero-padded decimal text on
SQLite, an exact Decimal on PostgreSQL), booleans possibly as 0/1, bytes possibly as
memoryview; JSON text columns (`json_rows`) as text. The response models turn them into ints,
bools and hex; code that computes with an amount calls `int()` first. Parameters go through
their SQLAlchemy type's bind processor (a uint256 bound as SQLite's padded text).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.expression import Executable


class Record(dict[str, Any]):
    """A row by column name, as `row.name`, `row["name"]` or `row._mapping["name"]`."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> Record:
        return self


#: Key, in a DBAPI connection's `info`, of the names of the statements prepared on it.
_PREPARED_KEY = "ascendnet_api_prepared"
_PG_PARAM = re.compile(r"%\((\w+)\)s")
#: Key, in a DBAPI connection's `info`, of whether its session plans generically (`Prepared`).
_GENERIC_KEY = "ascendnet_api_generic_plans"
_PLAN_MODE = {True: "SET plan_cache_mode = force_generic_plan", False: "SET plan_cache_mode = auto"}


class _Compiled:
    """A statement compiled for one dialect: its SQL, its parameters in order (None: by name)
    with their defaults and bind processors."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql = str(compiled)
        self.order: tuple[str, ...] | None = tuple(compiled.positiontup) if compiled.positional else None
        self.defaults: dict[str, Any] = dict(compiled.params)
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.bind_processor(dialect)
            if process is not None:
                self.processors[name] = process

    def values(self, params: dict[str, Any]) -> dict[str, Any]:
        values = {**self.defaults, **params}
        for name, process in self.processors.items():
            if name in values and values[name] is not None:
                values[name] = process(values[name])
        return values


class Prepared:
    """One fixed statement (with named bind parameters), compiled per dialect on first use.
    `statement` is the statement, or a function of the dialect's name that builds it (for the
    few constructs, such as JSON aggregates, that differ between backends).

    NOTE: on PostgreSQL it is also prepared on the server (`PREPARE`, once per connection;
    then `EXECUTE`): psycopg2 sends each statement as text, which the server would plan every
    time, and planning these short lookups costs about as much as running them.

    `generic`: on PostgreSQL, run it with the prepared statement's one generic plan
    (`plan_cache_mode = force_generic_plan`). NOTE: left to itself (`auto`), the server kept
    planning each execution anew for the values given (a custom plan), because the custom
    plans' estimates looked cheaper: 2.3 ms of planning and execution for an account's page,
    1.0 ms with the generic plan. Only for statements whose plan cannot depend on the values:
    lookups by key, not filters on a skewed column (a rare job state wants another index
    than a common one).
    """

    _count = itertools.count()

    def __init__(self, statement: Executable | Callable[[str], Executable], *, generic: bool = False) -> None:
        self.statement = statement
        self.generic = generic
        self._compiled: dict[str, _Compiled] = {}
        self._name = f"ascendnet_api_{next(self._count)}"
        self._pg: tuple[str, str, tuple[str, ...]] | None = None

    def _pg_statement(self, sql: str) -> tuple[str, str, tuple[str, ...]]:
        """`PREPARE` and `EXECUTE` texts of the statement, and its parameters in order."""
        if self._pg is None:
            names: list[str] = []

            def number(match: re.Match[str]) -> str:
                if match.group(1) not in names:
                    names.append(match.group(1))
                return f"${names.index(match.group(1)) + 1}"

            body = _PG_PARAM.sub(number, sql).replace("%%", "%")
            arguments = f" ({', '.join(['%s'] * len(names))})" if names else ""
            self._pg = (f"PREPARE {self._name} AS {body}", f"EXECUTE {self._name}{arguments}", tuple(names))
        return self._pg

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            build = self.statement
            statement = build if isinstance(build, Executable) else build(dialect.name)
            found = self._compiled[dialect.name] = _Compiled(statement, dialect)
        return found

    def sql(self, dialect: Dialect) -> str:
        """The statement's SQL for `dialect` (for query plans)."""
        return self._for(dialect).sql

    def all(self, conn: Connection, **params: Any) -> list[Record]:
        """Every row, run on `conn`'s driver connection (within its transaction, if any)."""
        names, rows = self._run(conn, params)
        return [Record(zip(names, row, strict=True)) for row in rows]

    def tuples(self, conn: Connection, **params: Any) -> Sequence[Any]:
        """Every row as the driver's tuple (the statement's columns in order)."""
        return self._run(conn, params)[1]

    def _run(self, conn: Connection, params: dict[str, Any]) -> tuple[list[str], Sequence[Any]]:
        compiled = self._for(conn.dialect)
        values = compiled.values(params)
        dbapi = conn.connection
        cursor = dbapi.cursor()
        try:
            if conn.dialect.name == "postgresql":
                prepare, execute, arguments = self._pg_statement(compiled.sql)
                prepared = dbapi.info.setdefault(_PREPARED_KEY, set())
                if self._name not in prepared:
                    cursor.execute(prepare)
                    prepared.add(self._name)
                if dbapi.info.get(_GENERIC_KEY) is not self.generic:
                    # The session's setting, changed only when the kind of statement changes.
                    cursor.execute(_PLAN_MODE[self.generic])
                    dbapi.info[_GENERIC_KEY] = self.generic
                cursor.execute(execute, tuple(values[n] for n in arguments))
            else:
                order = compiled.order
                cursor.execute(compiled.sql, tuple(values[n] for n in order) if order is not None else values)
            names = [d[0] for d in cursor.description]
            return names, cursor.fetchall()
        finally:
            cursor.close()

    def first(self, conn: Connection, **params: Any) -> Record | None:
        rows = self.all(conn, **params)
        return rows[0] if rows else None


def forget_session_settings(conn: Connection) -> None:
    """After a transaction on `conn` rolled back: the session settings `Prepared` made in it
    (the plan mode) are undone, so the next statement makes them again."""
    if not conn.invalidated and not conn.closed:
        conn.connection.info.pop(_GENERIC_KEY, None)


def json_rows(query: sa.Select[Any], dialect: str) -> sa.ScalarSelect[Any]:
    """A scalar subquery holding `query`'s rows as one JSON array of arrays (column values
    in order; SQLite may not keep the order, so sort after decoding if it matters): several
    rows inside one row of a larger statement."""
    inner = query.subquery()
    if dialect == "postgresql":
        values = sa.func.json_build_array(*inner.c)
        return sa.select(sa.func.coalesce(sa.func.json_agg(values), sa.text("'[]'::json"))).scalar_subquery()
    return sa.select(sa.func.json_group_array(sa.func.json_array(*inner.c))).scalar_subquery()


_decode_json = msgspec.json.Decoder().decode


def json_value(value: Any) -> Any:
    """A `json_rows` column as Python values: SQLite gives its text, psycopg2 decodes it."""
    if value is None:
        return []
    if isinstance(value, str | bytes):
        return _decode_json(value)
    return value
