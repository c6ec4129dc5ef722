"""Keyset (cursor) pagination with bounded limits.

A page is read with `ORDER BY <keys> LIMIT limit + 1`; the extra row says whether there is a
next page, and the last row's key values become the next cursor. A cursor is opaque to clients:
URL-safe base64 of a small JSON document naming the listing and sort it belongs to, so a cursor
from one listing (or one sort order) is refused by another instead of silently skipping rows.
Rows are never skipped or repeated while the data changes underneath, unlike OFFSET paging.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy.sql.elements import ColumnElement

from api import encoding
from api.errors import InvalidInput
from api.freshness import FRESHNESS, Freshness, freshness_of, read_freshness
from api.prepared import Prepared, Record

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: Cursors are short; anything longer is not one of ours.
MAX_CURSOR_LENGTH = 1024
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,1024}$"


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


async def page_params(
    request: Request,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_LIMIT,
            description=f"Most items in the page (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).",
            examples=[DEFAULT_LIMIT],
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="Opaque position from a previous page's `next_cursor`; omit it for the first page.",
        ),
    ] = None,
) -> PageParams:
    settings = request.app.state.settings
    chosen = settings.api_default_limit if limit is None else limit
    return PageParams(limit=min(chosen, settings.api_max_limit), cursor=cursor)


PageDep = Annotated[PageParams, Depends(page_params)]


@dataclass(frozen=True, slots=True)
class Key:
    """One sort key: a label in the SELECT, the expression it orders by, its direction, and
    the Python type its cursor value must have."""

    label: str
    expr: ColumnElement[Any]
    descending: bool = False
    kind: type = int


@dataclass(frozen=True, slots=True)
class Order:
    """A sort order of one listing. The keys together must be unique per row."""

    listing: str
    name: str
    keys: tuple[Key, ...]

    def order_by(self) -> list[ColumnElement[Any]]:
        return [k.expr.desc() if k.descending else k.expr.asc() for k in self.keys]

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after `values` in this order."""
        return self._after([sa.literal(v, k.expr.type) for k, v in zip(self.keys, values, strict=True)])

    def after_params(self) -> ColumnElement[bool]:
        """`after` with the key values as bound parameters `_k0`, `_k1`, ... (see `params`)."""
        return self._after([sa.bindparam(f"_k{i}", type_=k.expr.type) for i, k in enumerate(self.keys)])

    def params(self, values: Sequence[Any]) -> dict[str, Any]:
        """The bound parameters of `after_params` for `values`."""
        return {f"_k{i}": v for i, v in enumerate(values)}

    def _after(self, values: Sequence[ColumnElement[Any]]) -> ColumnElement[bool]:
        keys = self.keys
        if all(k.descending == keys[0].descending for k in keys):
            left = sa.tuple_(*(k.expr for k in keys))
            right = sa.tuple_(*values)
            return left < right if keys[0].descending else left > right
        # Mixed directions: (a > x) OR (a = x AND b < y) OR ...
        clauses: list[ColumnElement[bool]] = []
        for i, key in enumerate(keys):
            equal = [keys[j].expr == values[j] for j in range(i)]
            beyond = key.expr < values[i] if key.descending else key.expr > values[i]
            clauses.append(sa.and_(*equal, beyond))
        return sa.or_(*clauses)

    def encode(self, row: Any) -> str:
        """The cursor that resumes after `row` (a result row holding every key's label)."""
        return self.encode_values([row._mapping[k.label] for k in self.keys])

    def encode_values(self, key_values: Sequence[Any]) -> str:
        values = [_jsonable(v) for v in key_values]
        raw = json.dumps({"l": self.listing, "s": self.name, "k": values}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode(self, cursor: str) -> list[Any]:
        """The key values in `cursor`; InvalidInput if it is not a cursor of this order."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            doc = json.loads(raw)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidInput(
                "query.cursor", "not a cursor this API issued; start again without it"
            ) from None
        if not isinstance(doc, dict) or doc.get("l") != self.listing:
            raise InvalidInput("query.cursor", f"not a cursor of {self.listing}; start again without it")
        if doc.get("s") != self.name:
            raise InvalidInput(
                "query.cursor",
                f"the cursor belongs to sort={doc.get('s')!r}, not sort={self.name!r}; "
                "keep the sort while paging",
            )
        values = doc.get("k")
        if not isinstance(values, list) or len(values) != len(self.keys):
            raise InvalidInput("query.cursor", "a damaged cursor; start again without it")
        out: list[Any] = []
        for key, value in zip(self.keys, values, strict=True):
            out.append(_from_json(key, value))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        # Exact whatever the size: uint256 amounts go as strings.
        return str(value) if abs(value) > 2**53 else value
    if hasattr(value, "as_integer_ratio") and not isinstance(value, float):  # Decimal
        return str(value)
    return value


def _from_json(key: Key, value: Any) -> Any:
    bad = InvalidInput("query.cursor", "a damaged cursor; start again without it")
    if key.kind is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, str) and value.isdigit() and len(value) <= 78:
            return int(value)
        if isinstance(value, int) and -(2**63) <= value < 2**63:
            return value
        raise bad
    if key.kind is str:
        if isinstance(value, str) and len(value) <= 256 and "\x00" not in value:
            return value
        raise bad
    raise bad  # pragma: no cover - every Key declares int or str


def raw_tuples(conn: sa.Connection, query: sa.Select[Any], params: dict[str, Any] | None = None) -> list[Any]:
    """The rows of `query` as the driver gives them: tuples of its values (see
    `api.prepared.Record` for the forms), in the order of the query's columns.

    NOTE: SQLAlchemy compiles the statement (from its cache) and runs it; the rows are read
    from the driver's cursor, skipping its per-value result processing and row objects (for a
    page of fifty jobs, a third of the request). The response models convert the values."""
    result = conn.execute(query, params)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def raw_rows(
    conn: sa.Connection, query: sa.Select[Any], params: dict[str, Any] | None = None
) -> list[Record]:
    """`raw_tuples` as `Record`s, by column name."""
    result = conn.execute(query, params)
    try:
        names = list(result.keys())
        return [Record(zip(names, row, strict=True)) for row in result.cursor.fetchall()]
    finally:
        result.close()


def fetch_page(
    conn: sa.Connection,
    query: sa.Select[Any],
    order: Order,
    page: PageParams,
) -> tuple[list[Any], str | None]:
    """Rows of `query` in `order` after the page's cursor, at most `page.limit`, and the
    cursor of the next page (None on the last page)."""
    if page.cursor is not None:
        query = query.where(order.after(order.decode(page.cursor)))
    rows = raw_rows(conn, query.order_by(*order.order_by()).limit(page.limit + 1))
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        return rows, order.encode(rows[-1])
    return rows, None


@dataclass(frozen=True, slots=True)
class Filter:
    """One optional filter of a listing: `condition` of the value's bound parameter, of the
    value written in (`literal`), or of no parameter (a flag, on when its value is true)."""

    condition: Callable[[ColumnElement[Any]], ColumnElement[bool]]
    #: A flag: the condition takes no value and applies when the value is true.
    flag: bool = False
    #: The value is one of a few, unevenly common (a job state): each value gets a statement of
    #: its own with the value written in, so PostgreSQL's one generic plan per statement is the
    #: plan for that value (`Listing.generic`). Only for values the route validated (an enum).
    literal: bool = False
    #: The bound parameter's type (default: inferred from what it is compared with).
    type_: Any = None


def _sql_text(value: str) -> ColumnElement[Any]:
    """`value` written into a statement as an SQL string literal (standard quoting, which both
    SQLite and PostgreSQL read)."""
    if not isinstance(value, str):
        raise TypeError(f"only text is written into a statement, not {type(value).__name__}")
    return sa.literal_column("'" + value.replace("'", "''") + "'")


class Listing:
    """One listing: its statements, built once per combination of filters in use, sort and
    cursor, and its rows rendered straight into `model`'s JSON form
    (`api.encoding.row_renderer`).

    A page is read on the driver's cursor (`Reader.run_one`). On PostgreSQL it is ONE
    statement that also reads the freshness (`api.freshness.FRESHNESS`, joined to the page so
    that an empty page still has its row), without a transaction: one round trip. SQLite runs
    the page and the freshness as two statements of a read transaction (faster there than one
    statement that joins them).

    NOTE: building a SQLAlchemy statement per request (its clauses, then its cache key) cost a
    tenth of a listing request; going from a row to a dict, from it to the answer's dict and
    then to its JSON form three times what one rendering does; and on PostgreSQL the
    transaction around two statements twice the round trips of one statement.
    """

    def __init__(
        self,
        columns: Sequence[Any],
        filters: dict[str, Filter],
        model: type[BaseModel],
        overrides: dict[str, Callable[[Any], Any]] | None = None,
        *,
        generic: frozenset[str] = frozenset(),
    ) -> None:
        self.columns = tuple(columns)
        self.filters = filters
        #: Filters whose values cannot change the best plan (keys, block ranges under a LIMIT):
        #: a statement using only these runs on PostgreSQL's generic plan (`Prepared.generic`).
        self.generic = generic
        #: Filters that bind no parameter: flags, and values written into the statement.
        self._unbound = frozenset(n for n, f in filters.items() if f.flag or f.literal)
        self.names = tuple(c.name for c in FRESHNESS.c) + tuple(
            str(c.key) for c in sa.select(*self.columns).selected_columns
        )
        self.render = encoding.row_renderer(model, self.names, overrides)
        #: SQLite reads the page without the freshness columns: rendered from the rest.
        self.render_page = encoding.row_renderer(model, self.names[len(FRESHNESS.c) :], overrides)
        self._statements: dict[tuple[Any, ...], Prepared] = {}

    def page(
        self, conn: sa.Connection, order: Order, page: PageParams, values: dict[str, Any]
    ) -> tuple[Freshness, tuple[encoding.Rendered, str | None]]:
        """The freshness, a page of the rows passing the filters whose values are not None
        (flags: true), rendered, and the next page's cursor."""
        used = tuple(
            name
            for name, f in self.filters.items()
            if (values.get(name) if f.flag else values.get(name) is not None)
        )
        written = tuple((name, values[name]) for name in used if self.filters[name].literal)
        shape = (used, written, order.listing, order.name, page.cursor is not None)
        statement = self._statements.get(shape)
        if statement is None:
            after = page.cursor is not None
            statement = self._statements[shape] = Prepared(
                lambda d: self._build(used, dict(written), order, after, d),
                generic=self.generic.issuperset(set(used) - self._unbound),
            )
        # Every value given (a filter's condition may bind more than its own, e.g. a quoted form).
        unbound = self._unbound
        params: dict[str, Any] = {n: v for n, v in values.items() if v is not None and n not in unbound}
        if page.cursor is not None:
            params.update(order.params(order.decode(page.cursor)))
        params["_limit"] = page.limit + 1
        rows = statement.tuples(conn, **params)
        key_at = [self.names.index(k.label) for k in order.keys]
        render = self.render
        if conn.dialect.name != "postgresql":
            # The page alone (the caller's read transaction holds the snapshot).
            fresh = read_freshness(conn)
            render = self.render_page
            key_at = [i - len(FRESHNESS.c) for i in key_at]
        elif rows[0][key_at[0]] is None:
            return freshness_of(dict(zip(self.names, rows[0], strict=False))), (encoding.Rendered(), None)
        else:
            fresh = freshness_of(dict(zip(self.names, rows[0], strict=False)))
        cursor = None
        if len(rows) > page.limit:
            rows = rows[: page.limit]
            last = rows[-1]
            cursor = order.encode_values([last[i] for i in key_at])
        return fresh, (encoding.Rendered(map(render, rows)), cursor)

    def _build(
        self, used: tuple[str, ...], written: dict[str, Any], order: Order, after: bool, dialect: str
    ) -> sa.Select[Any]:
        query = sa.select(*self.columns)
        for name in used:
            f = self.filters[name]
            if name in written:
                query = query.where(f.condition(_sql_text(written[name])))
            else:
                query = query.where(f.condition(sa.bindparam(name, type_=f.type_)))
        if after:
            query = query.where(order.after_params())
        query = query.order_by(*order.order_by()).limit(sa.bindparam("_limit"))
        if dialect != "postgresql":
            return query
        # PostgreSQL: the page joined to the freshness row, one statement (one round trip).
        inner = query.subquery("page")
        keys = [inner.c[k.label].desc() if k.descending else inner.c[k.label].asc() for k in order.keys]
        return (
            sa.select(*FRESHNESS.c, *inner.c)
            .select_from(FRESHNESS.outerjoin(inner, sa.true()))
            .order_by(*keys)
        )
