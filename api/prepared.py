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


class Prepared:
    """One fixed statement (with named bind parameters), compiled per dialect on first use."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

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
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, tuple(values[n] for n in order) if order is not None else values)
            names = [d[0] for d in cursor.description]
            return [Record(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, conn: Connection, **params: Any) -> Record | None:
        rows = self.all(conn, **params)
        return rows[0] if rows else None
