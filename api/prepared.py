"""Fixed statements of the hot paths, compiled once per dialect and run on the driver's cursor.

NOTE: for a lookup by key, SQLAlchemy's per-execution work (cache key, result metadata for
each of a wide row's columns, value processors) costs far more than SQLite's own (about
0.3 ms a statement against a few microseconds). A `Prepared` statement is compiled once per
dialect and run on the DBAPI cursor of the request's connection, inside its transaction. Rows
come back as `Record`s holding the driver's values: a uint256 as the indexer stored it
(zero-padded decimal text on SQLite, an exact Decimal on PostgreSQL), booleans possibly as 0/1,
bytes possibly as memoryview. The response models turn them into ints, bools and hex; code
that computes with an amount calls `int()` first. Only statements whose parameters need no
conversion (ids, addresses, state names) belong here.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from sqlalchemy.engine import Connection
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


class Prepared:
    """One fixed statement (with named bind parameters), compiled per dialect on first use.

    NOTE: on PostgreSQL it is also prepared on the server (`PREPARE`, once per connection;
    then `EXECUTE`): psycopg2 sends each statement as text, which the server would plan every
    time, and planning these short lookups costs about as much as running them.
    """

    _count = itertools.count()

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}
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

    def _for(self, conn: Connection) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            order = tuple(compiled.positiontup) if compiled.positional else None
            found = self._compiled[dialect.name] = (str(compiled), order, dict(compiled.params))
        return found

    def all(self, conn: Connection, **params: Any) -> list[Record]:
        """Every row, run on `conn`'s driver connection within its current transaction."""
        sql, order, defaults = self._for(conn)
        values = {**defaults, **params}
        dbapi = conn.connection
        cursor = dbapi.cursor()
        try:
            if conn.dialect.name == "postgresql":
                prepare, execute, arguments = self._pg_statement(sql)
                prepared = dbapi.info.setdefault(_PREPARED_KEY, set())
                if self._name not in prepared:
                    cursor.execute(prepare)
                    prepared.add(self._name)
                cursor.execute(execute, tuple(values[n] for n in arguments))
            else:
                cursor.execute(sql, tuple(values[n] for n in order) if order is not None else values)
            names = [d[0] for d in cursor.description]
            return [Record(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, conn: Connection, **params: Any) -> Record | None:
        rows = self.all(conn, **params)
        return rows[0] if rows else None
