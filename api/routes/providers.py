"""GPU providers: the registry, and one provider's stake, record and earnings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Query

from api.deps import SessionDep
from api.errors import NotFound
from api.pagination import Key, Order, PageDep, fetch_page
from api.prepared import Prepared
from api.routes import resource_router
from api.schemas import Item, Page, Provider, ProviderDetail, ProviderStatus, not_found
from api.validation import AddressPath
from indexer import models

router = resource_router("compute")
PR = models.TABLES[models.Provider]
EARN = models.TABLES[models.ProviderEarning]

PROVIDER = Prepared(sa.select(PR).where(PR.c.address == sa.bindparam("address")), generic=True)
EARNINGS = Prepared(
    sa.select(EARN).where(EARN.c.provider == sa.bindparam("address")).order_by(EARN.c.asset), generic=True
)

ProviderSort = Literal["stake", "jobs_done", "newest"]
_ORDERS = {
    "stake": Order(
        "providers", "stake", (Key("stake", PR.c.stake, True), Key("address", PR.c.address, True, str))
    ),
    "jobs_done": Order(
        "providers",
        "jobs_done",
        (Key("jobs_done", PR.c.jobs_done, True), Key("address", PR.c.address, True, str)),
    ),
    "newest": Order(
        "providers",
        "newest",
        (Key("registered_at", PR.c.registered_at, True), Key("address", PR.c.address, True, str)),
    ),
}


def provider_out(row: Any) -> dict[str, Any]:
    m = row._mapping
    outcomes = m["jobs_done"] + m["failures"]
    return {
        "address": m["address"],
        "status": m["status"],
        "stake": m["stake"],
        "metadata_cid": m["metadata_cid"],
        "registered_at": m["registered_at"],
        "unbonding_at": m["unbonding_at"],
        "active_jobs": m["active_jobs"],
        "slashed_total": m["slashed_total"],
        "jobs_done": m["jobs_done"],
        "failures": m["failures"],
        "disputes": m["disputes"],
        "success_rate": m["jobs_done"] / outcomes if outcomes else None,
        "last_change": {
            "block_number": m["block_number"],
            "tx_hash": m["tx_hash"],
            "log_index": m["log_index"],
        },
    }


@router.get("/providers", response_model=Page[Provider], summary="The provider registry")
async def list_providers(
    session: SessionDep,
    page: PageDep,
    status: Annotated[ProviderStatus | None, Query(description="active, unbonding or left.")] = None,
    sort: Annotated[ProviderSort, Query(description="By stake, jobs done, or registration time.")] = "stake",
) -> dict[str, Any]:
    """Registered GPU providers with their stake, metadata CID and track record."""
    query = sa.select(PR)
    if status is not None:
        query = query.where(PR.c.status == status)
    rows, cursor = await session.read(fetch_page, query, _ORDERS[sort], page)
    return {"data": [provider_out(r) for r in rows], "next_cursor": cursor, "meta": session.meta()}


def find_provider(conn: sa.Connection, address: str) -> Any:
    return PROVIDER.first(conn, address=address)


def _provider_detail(conn: sa.Connection, address: str) -> dict[str, Any]:
    row = find_provider(conn, address)
    if row is None:
        raise NotFound("Provider", address, "It has never registered with ComputeRental.")
    out = provider_out(row)
    earnings = EARNINGS.all(conn, address=address)
    out["earnings"] = [{"asset": e.asset, "amount": e.amount, "jobs": e.jobs} for e in earnings]
    return out


@router.get(
    "/providers/{address}",
    response_model=Item[ProviderDetail],
    summary="One provider",
    responses=not_found("Never registered as a provider."),
)
async def get_provider(session: SessionDep, address: AddressPath) -> dict[str, Any]:
    """A provider's stake, metadata CID (its capabilities document), jobs done, failures,
    disputes, success rate and earnings per asset."""
    return {"data": await session.read(_provider_detail, address), "meta": session.meta()}
