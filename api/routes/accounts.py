"""One account across both contracts: what it is owed and what it did."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from api.deps import SessionDep
from api.freshness import FRESHNESS, Freshness, freshness_of
from api.prepared import Prepared, Record, json_rows, json_value
from api.routes import resource_router
from api.routes.jobs import SUMMARY, J, job_summary
from api.routes.providers import PR, provider_out
from api.schemas import Account, Item
from api.validation import AddressPath
from indexer import models

router = resource_router("accounts")
OWED = models.TABLES[models.Owed]
P = models.TABLES[models.Prompt]
LI = models.TABLES[models.Licence]
S = models.TABLES[models.Sale]
R = models.TABLES[models.Rating]
B = models.TABLES[models.Bid]

RECENT_JOBS = 10
ADDRESS: sa.BindParameter[str] = sa.bindparam("address")


def _count(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
    return sa.select(sa.func.count()).select_from(table).where(*where).scalar_subquery()


MARKET_COUNTS = (
    "prompts_created",
    "prompts_owned",
    "listings_active",
    "licences_bought",
    "licences_sold",
    "sales_as_seller",
    "purchases",
    "ratings_given",
)
_OWED_COLUMNS = ("asset", "contract", "owed", "credited_total", "withdrawn_total")
_PROVIDER_COLUMNS = tuple(c.name for c in PR.c)
_SUMMARY_COLUMNS = tuple(c.name for c in SUMMARY)


def _account_statement(dialect: str) -> sa.Select[Any]:
    """Everything an account shows, with the freshness, in ONE statement: its counts as
    scalar subqueries, its balances, recent jobs and provider record as JSON rows (each an
    index range scan; an OR over client/provider would scan the table)."""
    recent = sa.select(*SUMMARY).order_by(J.c.job_id.desc()).limit(RECENT_JOBS)
    return sa.select(
        *FRESHNESS.c,
        _count(J, J.c.client == ADDRESS).label("jobs_posted"),
        _count(J, J.c.provider == ADDRESS).label("jobs_as_provider"),
        _count(B, B.c.provider == ADDRESS).label("bids_placed"),
        _count(P, P.c.creator == ADDRESS).label("prompts_created"),
        _count(P, P.c.owner == ADDRESS).label("prompts_owned"),
        # An active listing's seller is its prompt's owner (a transfer ends the listing), so this
        # counts through the owner's prompts rather than every active listing.
        _count(P, P.c.owner == ADDRESS, P.c.listed.is_(True)).label("listings_active"),
        _count(LI, LI.c.buyer == ADDRESS).label("licences_bought"),
        _count(LI, LI.c.seller == ADDRESS).label("licences_sold"),
        _count(S, S.c.seller == ADDRESS).label("sales_as_seller"),
        _count(S, S.c.buyer == ADDRESS).label("purchases"),
        _count(R, R.c.rater == ADDRESS).label("ratings_given"),
        json_rows(
            sa.select(*(OWED.c[n] for n in _OWED_COLUMNS))
            .where(OWED.c.account == ADDRESS)
            .order_by(OWED.c.asset, OWED.c.contract),
            dialect,
        ).label("owed_json"),
        json_rows(recent.where(J.c.client == ADDRESS), dialect).label("as_client_json"),
        json_rows(recent.where(J.c.provider == ADDRESS), dialect).label("as_provider_json"),
        json_rows(sa.select(PR).where(PR.c.address == ADDRESS), dialect).label("provider_json"),
    ).select_from(FRESHNESS)


ACCOUNT = Prepared(_account_statement, generic=True)


@router.get("/accounts/{address}", response_model=Item[Account], summary="An account's activity and balances")
async def get_account(session: SessionDep, address: AddressPath) -> dict[str, Any]:
    """What the account is owed per asset by each contract (withdrawable now), and its
    activity on both: jobs posted and served, bids, prompts created and owned, listings,
    licences, sales, purchases and ratings. Any address has an account (all zero when unused).
    """
    return {"data": await session.read_one(account, address), "meta": session.meta()}


def account(conn: sa.Connection, address: str) -> tuple[Freshness, dict[str, Any]]:
    """The account of `address`, with the freshness, read in one statement."""
    (c,) = ACCOUNT.all(conn, address=address)
    owed = [dict(zip(_OWED_COLUMNS, o, strict=True)) for o in json_value(c["owed_json"])]
    totals: dict[str, int] = {}
    for o in owed:
        totals[o["asset"]] = totals.get(o["asset"], 0) + int(o["owed"])
    recent = [
        Record(zip(_SUMMARY_COLUMNS, row, strict=True))
        for key in ("as_client_json", "as_provider_json")
        for row in json_value(c[key])
    ]
    seen: dict[int, Any] = {}
    for row in sorted(recent, key=lambda r: r["job_id"], reverse=True):
        seen.setdefault(row["job_id"], row)
    providers = [Record(zip(_PROVIDER_COLUMNS, p, strict=True)) for p in json_value(c["provider_json"])]
    return freshness_of(c), {
        "address": address,
        "owed": [
            {
                "asset": o["asset"],
                "contract": o["contract"],
                "owed": o["owed"],
                "credited_total": o["credited_total"],
                "withdrawn_total": o["withdrawn_total"],
            }
            for o in owed
        ],
        "owed_by_asset": [{"asset": a, "owed": v} for a, v in sorted(totals.items())],
        "compute": {
            "jobs_posted": c["jobs_posted"],
            "jobs_as_provider": c["jobs_as_provider"],
            "bids_placed": c["bids_placed"],
            "provider": provider_out(providers[0]) if providers else None,
            "recent_jobs": [job_summary(r) for r in list(seen.values())[:RECENT_JOBS]],
        },
        "market": {name: c[name] for name in MARKET_COUNTS},
    }
