"""The prompt market: listings, licences, sales and ratings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Query

from api.deps import SessionDep
from api.pagination import Key, Order, PageDep, fetch_page
from api.routes import resource_router
from api.schemas import Licence, LicenceState, Listing, ListingState, Page, Rating, Sale
from api.validation import MAX_INT64, AddressQuery, AssetQuery
from indexer import models

router = resource_router("market")
L = models.TABLES[models.Listing]
S = models.TABLES[models.Sale]
LI = models.TABLES[models.Licence]
R = models.TABLES[models.Rating]

TokenQuery = Annotated[int | None, Query(ge=1, le=MAX_INT64, description="Only this prompt (token id).")]
Direction = Literal["newest", "oldest"]


def _newest_oldest(listing: str, *columns: sa.Column[Any]) -> dict[str, Order]:
    return {
        "newest": Order(listing, "newest", tuple(Key(c.name, c, True) for c in columns)),
        "oldest": Order(listing, "oldest", tuple(Key(c.name, c) for c in columns)),
    }


def _last_change(m: Any) -> dict[str, Any]:
    return {"block_number": m["block_number"], "tx_hash": m["tx_hash"], "log_index": m["log_index"]}


# ---------------------------------------------------------------- listings

_LISTING_ORDERS = _newest_oldest("listings", L.c.listed_at, L.c.token_id, L.c.seq)


def listing_out(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "token_id": m["token_id"],
        "seq": m["seq"],
        "seller": m["seller"],
        "asset": m["asset"],
        "price": m["price"],
        "state": m["state"],
        "listed_at": m["listed_at"],
        "closed_at": m["closed_at"],
        "buyer": m["buyer"],
        "last_change": _last_change(m),
    }


@router.get("/listings", response_model=Page[Listing], summary="NFT listings")
async def list_listings(
    session: SessionDep,
    page: PageDep,
    token_id: TokenQuery = None,
    seller: AddressQuery = None,
    asset: AssetQuery = None,
    state: Annotated[ListingState | None, Query(description="active, cancelled, sold or replaced.")] = None,
    sort: Annotated[Direction, Query(description="By listing time.")] = "newest",
) -> dict[str, Any]:
    """NFT listings, past and present: `state=active` is what can be bought now."""
    query = sa.select(L)
    if token_id is not None:
        query = query.where(L.c.token_id == token_id)
    if seller is not None:
        query = query.where(L.c.seller == seller)
    if asset is not None:
        query = query.where(L.c.asset == asset)
    if state is not None:
        query = query.where(L.c.state == state)
    rows, cursor = await session.read(fetch_page, query, _LISTING_ORDERS[sort], page)
    return {"data": [listing_out(r) for r in rows], "next_cursor": cursor, "meta": session.meta()}


# ---------------------------------------------------------------- licences

_LICENCE_ORDERS = _newest_oldest("licences", LI.c.license_id)


def licence_out(row: Any) -> dict[str, Any]:
    m = row._mapping
    key = m["encrypted_key"]
    return {
        "license_id": m["license_id"],
        "token_id": m["token_id"],
        "buyer": m["buyer"],
        "seller": m["seller"],
        "asset": m["asset"],
        "price": m["price"],
        "delivery_deadline": m["delivery_deadline"],
        "state": m["state"],
        "rated": bool(m["rated"]),
        "encrypted_key": None if key is None else "0x" + bytes(key).hex(),
        "seller_proceeds": m["seller_proceeds"],
        "fee": m["fee"],
        "refund": m["refund"],
        "purchased_at": m["purchased_at"],
        "settled_at": m["settled_at"],
        "last_change": _last_change(m),
    }


@router.get("/licences", response_model=Page[Licence], summary="Licences")
async def list_licences(
    session: SessionDep,
    page: PageDep,
    buyer: AddressQuery = None,
    seller: AddressQuery = None,
    token_id: TokenQuery = None,
    state: Annotated[LicenceState | None, Query(description="pending, delivered or refunded.")] = None,
    sort: Annotated[Direction, Query(description="By purchase (licence id).")] = "newest",
) -> dict[str, Any]:
    """Licences bought, by buyer, seller or prompt: escrowed until the key is delivered, or
    refunded after the delivery deadline."""
    query = sa.select(LI)
    if buyer is not None:
        query = query.where(LI.c.buyer == buyer)
    if seller is not None:
        query = query.where(LI.c.seller == seller)
    if token_id is not None:
        query = query.where(LI.c.token_id == token_id)
    if state is not None:
        query = query.where(LI.c.state == state)
    rows, cursor = await session.read(fetch_page, query, _LICENCE_ORDERS[sort], page)
    return {"data": [licence_out(r) for r in rows], "next_cursor": cursor, "meta": session.meta()}


# ---------------------------------------------------------------- sales

_SALE_ORDERS = _newest_oldest("sales", S.c.block_number, S.c.log_index)


def sale_out(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "token_id": m["token_id"],
        "listing_seq": m["listing_seq"],
        "seller": m["seller"],
        "buyer": m["buyer"],
        "asset": m["asset"],
        "price": m["price"],
        "fee": m["fee"],
        "royalty": m["royalty"],
        "royalty_receiver": m["royalty_receiver"],
        "seller_proceeds": m["seller_proceeds"],
        "sold_at": m["sold_at"],
        "log": _last_change(m),
    }


@router.get("/sales", response_model=Page[Sale], summary="NFT sales")
async def list_sales(
    session: SessionDep,
    page: PageDep,
    token_id: TokenQuery = None,
    seller: AddressQuery = None,
    buyer: AddressQuery = None,
    asset: AssetQuery = None,
    sort: Annotated[Direction, Query(description="By sale block.")] = "newest",
) -> dict[str, Any]:
    """Completed NFT sales with the fee, royalty and seller proceeds of each."""
    query = sa.select(S)
    if token_id is not None:
        query = query.where(S.c.token_id == token_id)
    if seller is not None:
        query = query.where(S.c.seller == seller)
    if buyer is not None:
        query = query.where(S.c.buyer == buyer)
    if asset is not None:
        query = query.where(S.c.asset == asset)
    rows, cursor = await session.read(fetch_page, query, _SALE_ORDERS[sort], page)
    return {"data": [sale_out(r) for r in rows], "next_cursor": cursor, "meta": session.meta()}


# ---------------------------------------------------------------- ratings

_RATING_ORDERS = _newest_oldest("ratings", R.c.block_number, R.c.log_index)


def rating_out(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "license_id": m["license_id"],
        "token_id": m["token_id"],
        "rater": m["rater"],
        "score": m["score"],
        "review_cid": m["review_cid"],
        "rated_at": m["rated_at"],
        "log": _last_change(m),
    }


@router.get("/ratings", response_model=Page[Rating], summary="Ratings")
async def list_ratings(
    session: SessionDep,
    page: PageDep,
    token_id: TokenQuery = None,
    rater: AddressQuery = None,
    min_score: Annotated[int | None, Query(ge=1, le=5, description="Only scores at least this.")] = None,
    sort: Annotated[Direction, Query(description="By rating block.")] = "newest",
) -> dict[str, Any]:
    """Ratings by licence holders (one per licence), with the review CID."""
    query = sa.select(R)
    if token_id is not None:
        query = query.where(R.c.token_id == token_id)
    if rater is not None:
        query = query.where(R.c.rater == rater)
    if min_score is not None:
        query = query.where(R.c.score >= min_score)
    rows, cursor = await session.read(fetch_page, query, _RATING_ORDERS[sort], page)
    return {"data": [rating_out(r) for r in rows], "next_cursor": cursor, "meta": session.meta()}
