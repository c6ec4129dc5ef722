"""Prompt NFTs: the catalogue, one prompt, and its history."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Query
from sqlalchemy.sql.elements import ColumnElement

from api.deps import SessionDep
from api.errors import NotFound
from api.pagination import Key, Order, PageDep, fetch_page
from api.prepared import Prepared
from api.routes import resource_router
from api.routes.events import IncludeReorged, history_page
from api.schemas import Event, Item, Page, Prompt, not_found
from api.validation import TEXT_PATTERN, AddressQuery, AssetQuery, id_path
from indexer import models

router = resource_router("prompts")
P = models.TABLES[models.Prompt]
M = models.prompt_metadata

#: The metadata document's columns beside each prompt (NULL until the indexer fetched it).
_METADATA = (
    M.c.status.label("metadata_status"),
    M.c.title.label("metadata_title"),
    M.c.description.label("metadata_description"),
    M.c.content_hash.label("metadata_content_hash"),
    M.c.error.label("metadata_error"),
)
#: Prompts with their metadata documents: one row per prompt (the join is on M's key).
WITH_METADATA = P.outerjoin(M, M.c.metadata_cid == P.c.metadata_cid)

#: Average rating scaled to an integer (micro-stars), identical on both backends, for sorting.
_DENOMINATOR = sa.case((P.c.rating_count == 0, 1), else_=P.c.rating_count)
RATING_KEY = ((P.c.rating_sum * 1_000_000) / _DENOMINATOR).label("rating_key")

PROMPT = Prepared(
    sa.select(P, *_METADATA).select_from(WITH_METADATA).where(P.c.token_id == sa.bindparam("token_id")),
    generic=True,
)

PromptSort = Literal["newest", "oldest", "price_asc", "price_desc", "rating", "sales"]
_ORDERS: dict[str, Order] = {
    "newest": Order("prompts", "newest", (Key("token_id", P.c.token_id, True),)),
    "oldest": Order("prompts", "oldest", (Key("token_id", P.c.token_id),)),
    "price_asc": Order(
        "prompts", "price_asc", (Key("list_price", P.c.list_price), Key("token_id", P.c.token_id))
    ),
    "price_desc": Order(
        "prompts",
        "price_desc",
        (Key("list_price", P.c.list_price, True), Key("token_id", P.c.token_id, True)),
    ),
    "rating": Order(
        "prompts", "rating", (Key("rating_key", RATING_KEY, True), Key("token_id", P.c.token_id, True))
    ),
    "sales": Order(
        "prompts", "sales", (Key("sales_count", P.c.sales_count, True), Key("token_id", P.c.token_id, True))
    ),
}


def metadata_out(m: Any) -> dict[str, Any] | None:
    """The `metadata` object of a prompt row joined with its document's row (None: not fetched)."""
    status = m["metadata_status"]
    if status is None:
        return None
    if status == "resolved" and m["metadata_content_hash"] != m["content_hash"]:
        # NOTE: anyone can mint a token naming another prompt's document; its title is not
        # this token's to show (docs/PROMPT_SCHEMA.md: the hashes must be equal).
        return {
            "status": "mismatch",
            "title": None,
            "description": None,
            "error": f"the document's content_hash {m['metadata_content_hash']} is not this token's",
        }
    return {
        "status": status,
        "title": m["metadata_title"],
        "description": m["metadata_description"],
        "error": m["metadata_error"],
    }


def prompt_out(row: Any) -> dict[str, Any]:
    m = row._mapping
    count = m["rating_count"]
    return {
        "token_id": m["token_id"],
        "creator": m["creator"],
        "owner": m["owner"],
        "metadata_cid": m["metadata_cid"],
        "content_hash": m["content_hash"],
        "royalty_bps": m["royalty_bps"],
        "minted_at": m["minted_at"],
        "metadata": metadata_out(m),
        "listed": bool(m["listed"]),
        "listing": (
            {"seq": m["listing_seq"], "asset": m["list_asset"], "price": m["list_price"]}
            if m["listed"]
            else None
        ),
        "licence_terms": (
            None if m["licence_price"] is None else {"asset": m["licence_asset"], "price": m["licence_price"]}
        ),
        "licences_sold": m["licences_sold"],
        "sales_count": m["sales_count"],
        "rating": {
            "count": count,
            "total": m["rating_sum"],
            "average": m["rating_sum"] / count if count else None,
        },
        "last_change": {
            "block_number": m["block_number"],
            "tx_hash": m["tx_hash"],
            "log_index": m["log_index"],
        },
    }


def _search(q: str) -> ColumnElement[bool]:
    """Title and description of a resolved document that belongs to the prompt, or the CID
    (so a prompt whose document is not fetched yet can still be found)."""
    return sa.or_(
        sa.and_(
            M.c.status == "resolved",
            M.c.content_hash == P.c.content_hash,
            M.c.search_text.contains(q.casefold(), autoescape=True),
        ),
        sa.func.lower(P.c.metadata_cid).contains(q.lower(), autoescape=True),
    )


@router.get("/prompts", response_model=Page[Prompt], summary="Browse prompts")
async def list_prompts(
    session: SessionDep,
    page: PageDep,
    creator: AddressQuery = None,
    owner: AddressQuery = None,
    listed: Annotated[
        bool | None, Query(description="Only prompts listed for sale (or only unlisted).")
    ] = None,
    min_rating: Annotated[
        float | None,
        Query(
            ge=0, le=5, allow_inf_nan=False, description="Only rated prompts whose average is at least this."
        ),
    ] = None,
    asset: AssetQuery = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            pattern=TEXT_PATTERN,
            description="Case-insensitive text search over the title and description of the "
            "prompt's metadata document, and its metadata CID (see below).",
            examples=["haiku"],
        ),
    ] = None,
    sort: Annotated[
        PromptSort,
        Query(description="newest/oldest by mint; price (listed prompts only); rating (average); sales."),
    ] = "newest",
) -> dict[str, Any]:
    """Prompts, filtered and sorted. `asset` matches prompts listed or licensed in that asset.

    `q` matches a substring, ignoring case, of the title or description of the prompt's
    metadata document once the indexer has resolved it (`metadata.status` is `resolved`), or
    of its metadata CID, so a prompt whose document is not fetched yet is still found by CID.
    """
    query = sa.select(P, RATING_KEY, *_METADATA).select_from(WITH_METADATA)
    if creator is not None:
        query = query.where(P.c.creator == creator)
    if owner is not None:
        query = query.where(P.c.owner == owner)
    if listed is not None:
        query = query.where(P.c.listed.is_(listed))
    if min_rating is not None:
        query = query.where(P.c.rating_count > 0, P.c.rating_sum >= P.c.rating_count * min_rating)
    if asset is not None:
        query = query.where(sa.or_(P.c.list_asset == asset, P.c.licence_asset == asset))
    if q is not None:
        query = query.where(_search(q))
    if sort in ("price_asc", "price_desc"):
        query = query.where(P.c.listed.is_(True), P.c.list_price.is_not(None))
    rows, cursor = await session.read(fetch_page, query, _ORDERS[sort], page)
    return {"data": [prompt_out(r) for r in rows], "next_cursor": cursor, "meta": session.meta()}


def _get_prompt(conn: sa.Connection, token_id: int) -> Any:
    row = PROMPT.first(conn, token_id=token_id)
    if row is None:
        raise NotFound("Prompt", token_id, "Minted prompts appear once the indexer has folded their block.")
    return row


def _history(conn: sa.Connection, token_id: int, page: Any, include_reorged: bool) -> Any:
    _get_prompt(conn, token_id)
    return history_page(conn, "token_id", token_id, page, include_reorged)


@router.get(
    "/prompts/{token_id}",
    response_model=Item[Prompt],
    summary="One prompt",
    responses=not_found("No such prompt (yet)."),
)
async def get_prompt(
    session: SessionDep,
    token_id: Annotated[int, id_path("prompt's token id")],
) -> dict[str, Any]:
    """A prompt NFT: creator, owner, metadata CID, content hash, royalty, the title and
    description of its metadata document, its active listing, licence terms and rating."""
    row = await session.read(_get_prompt, token_id)
    return {"data": prompt_out(row), "meta": session.meta()}


@router.get(
    "/prompts/{token_id}/history",
    response_model=Page[Event],
    summary="A prompt's history",
    responses=not_found("No such prompt (yet)."),
)
async def prompt_history(
    session: SessionDep,
    page: PageDep,
    token_id: Annotated[int, id_path("prompt's token id")],
    include_reorged: IncludeReorged = False,
) -> dict[str, Any]:
    """Every event naming the prompt, oldest first: mint, transfers, listings, sales, licence
    terms, licences and ratings, each with its provenance."""
    events, cursor = await session.read(_history, token_id, page, include_reorged)
    return {"data": events, "next_cursor": cursor, "meta": session.meta()}
