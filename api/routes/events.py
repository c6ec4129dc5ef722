"""The raw event log with provenance: every log of both contracts, reorged ones on request."""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any, Literal

import msgspec
import sqlalchemy as sa
from fastapi import Query
from sqlalchemy.sql.elements import ColumnElement

from api.deps import SessionDep
from api.pagination import Filter, Key, Listing, Order, PageDep, fetch_page
from api.routes import resource_router
from api.schemas import Event, Page
from api.validation import (
    CONTRACT_NAMES,
    EVENT_NAMES,
    AddressQuery,
    HashQuery,
    block_query,
)
from chain.events import EVENT_TYPES
from indexer import models
from indexer.argforms import api_args

router = resource_router("audit")
E = models.events

ContractName = Literal["ComputeRental", "PromptMarketplace"]
EventName = Literal[tuple(EVENT_NAMES)]  # type: ignore[valid-type]
assert set(ContractName.__args__) == set(CONTRACT_NAMES)  # type: ignore[attr-defined]

_ORDERS = {
    direction: Order(
        "events",
        direction,
        (
            Key("block_number", E.c.block_number, descending=direction == "desc"),
            Key("log_index", E.c.log_index, descending=direction == "desc"),
            Key("id", E.c.id, descending=direction == "desc"),
        ),
    )
    for direction in ("asc", "desc")
}
_HISTORY_ORDER = Order("history", "asc", (Key("id", E.c.id),))

#: Per entity: the events naming it by this argument, and the contract that emits them.
_ENTITY_EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    arg: (
        contract,
        tuple(
            sorted(
                name
                for name, cls in EVENT_TYPES.items()
                if arg in {f.name for f in dataclasses.fields(cls)} and contract in cls.CONTRACTS
            )
        ),
    )
    for arg, contract in (("token_id", "PromptMarketplace"), ("job_id", "ComputeRental"))
}


_decode = msgspec.json.Decoder().decode
#: An integer value in compact JSON: in the API form every value starts with a quote, a brace,
#: a bracket or a literal (`indexer.argforms`), so only canonical text (an older table, before
#: migration 0005) or a string holding `\":<digit>` matches.
_NUMBER = re.compile(r'":-?[0-9]')


def event_args(text: str) -> dict[str, Any]:
    """An event's stored arguments, integers as exact decimal strings (JSON numbers lose
    precision above 2**53)."""
    args: dict[str, Any] = _decode(text)
    return api_args(args) if _NUMBER.search(text) else args


def event_args_json(text: str) -> msgspec.Raw | dict[str, Any]:
    """`event_args` for a listing: the stored text itself when it is in the API form, which
    the encoder copies into the answer (decoding, converting and encoding them again took
    91 to 108 us per page of 50 events, this 42)."""
    if _NUMBER.search(text):
        return api_args(_decode(text))
    return msgspec.Raw(text)


EVENTS = Listing(
    (E,),
    {
        "canonical": Filter(lambda _: E.c.orphaned.is_(False), flag=True),
        "contract": Filter(lambda v: E.c.contract == v),
        "event": Filter(lambda v: E.c.event == v),
        "from_block": Filter(lambda v: E.c.block_number >= v),
        "to_block": Filter(lambda v: E.c.block_number <= v),
        "tx_hash": Filter(lambda v: E.c.tx_hash == v),
        # An address emits the event or is one of its arguments (quoted, as the JSON holds it;
        # addresses are hex, so nothing in them needs escaping for LIKE).
        "address": Filter(
            lambda v: sa.or_(E.c.address == v, E.c.args.contains(sa.bindparam("quoted", type_=sa.Text)))
        ),
    },
    Event,
    {"args": event_args_json},
    # A block range reads `ix_events_block_number_log_index` whatever its bounds (under the
    # page's LIMIT); a contract, an event name or an address can be rare or common.
    generic=frozenset({"canonical", "from_block", "to_block", "tx_hash"}),
)


def event_out(row: Any) -> dict[str, Any]:
    """One row of the raw event log as an `Event` (integers in args as exact strings)."""
    m = row._mapping
    return {
        "id": m["id"],
        "chain_id": m["chain_id"],
        "block_number": m["block_number"],
        "block_hash": m["block_hash"],
        "block_timestamp": m["block_timestamp"],
        "tx_hash": m["tx_hash"],
        "log_index": m["log_index"],
        "contract": m["contract"],
        "address": m["address"],
        "event": m["event"],
        "args": event_args(m["args"]),
        "orphaned": bool(m["orphaned"]),
        "orphaned_by": m["orphaned_by"],
    }


def _arg_equals(conn: sa.Connection, name: str, value: int) -> ColumnElement[bool]:
    """`args.<name> == value` on the JSON text column, per backend."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        found: ColumnElement[bool] = sa.cast(E.c.args, JSONB)[name].astext == str(value)
        return found
    # The API form holds the integer as text; a table not yet migrated (0005) as a number.
    return sa.func.json_extract(E.c.args, f"$.{name}").in_([str(value), value])


def history_page(
    conn: sa.Connection, arg: str, value: int, page: Any, include_reorged: bool
) -> tuple[list[dict[str, Any]], str | None]:
    """The events that name `arg == value` (a token or a job), oldest first."""
    contract, names = _ENTITY_EVENTS[arg]
    query = sa.select(E).where(E.c.contract == contract, E.c.event.in_(names), _arg_equals(conn, arg, value))
    if not include_reorged:
        query = query.where(E.c.orphaned.is_(False))
    rows, cursor = fetch_page(conn, query, _HISTORY_ORDER, page)
    return [event_out(r) for r in rows], cursor


IncludeReorged = Annotated[
    bool,
    Query(description="Also list events whose block a reorg removed (flagged `orphaned`)."),
]


@router.get("/events", response_model=Page[Event], summary="The raw event log")
async def list_events(
    session: SessionDep,
    page: PageDep,
    contract: Annotated[ContractName | None, Query(description="Emitting contract.")] = None,
    event: Annotated[EventName | None, Query(description="Event name, e.g. JobPosted.")] = None,  # type: ignore[valid-type]
    from_block: Annotated[int | None, block_query("First block (inclusive).")] = None,
    to_block: Annotated[int | None, block_query("Last block (inclusive).")] = None,
    tx_hash: HashQuery = None,
    address: AddressQuery = None,
    include_reorged: IncludeReorged = False,
    order: Annotated[Literal["asc", "desc"], Query(description="By block, log index, position.")] = "asc",
) -> dict[str, Any]:
    """Every log of both contracts with its provenance `(chain_id, block_number, block_hash,
    tx_hash, log_index)`, filtered, in chain order. Reorged logs stay in the log, flagged, and
    are listed when `include_reorged=true`.

    `address` selects events emitted by that address or naming it in any argument; on a large
    log, narrow it with a block range or a transaction, since it looks inside every event's
    arguments.
    """
    values = {
        "canonical": not include_reorged,
        "contract": contract,
        "event": event,
        "from_block": from_block,
        "to_block": to_block,
        "tx_hash": tx_hash,
        "address": address,
        "quoted": None if address is None else f'"{address}"',
    }
    data, cursor = await session.read_one(EVENTS.page, _ORDERS[order], page, values)
    return {"data": data, "next_cursor": cursor, "meta": session.meta()}
