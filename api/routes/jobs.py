"""Compute jobs: the job board, one job with its bids, result and dispute, and its history."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Query

from api.deps import SessionDep
from api.errors import NotFound
from api.freshness import FRESHNESS, Freshness, freshness_of
from api.pagination import MAX_LIMIT, Filter, Key, Listing, Order, PageDep
from api.prepared import Prepared, json_rows, json_value
from api.routes import resource_router
from api.routes.events import IncludeReorged, history_page
from api.schemas import Event, Item, JobDetail, JobState, JobSummary, Page, not_found
from api.validation import AddressQuery, AmountQuery, AssetQuery, id_path
from indexer import models

router = resource_router("compute")
J = models.TABLES[models.Job]
B = models.TABLES[models.Bid]
RES = models.TABLES[models.Result]

# NOTE: job ids are assigned in posting order, so ordering by id is ordering by posted block
# (the rows keep the block of their *latest* change, not of the posting).
_ORDERS = {
    "posted_desc": Order("jobs", "posted_desc", (Key("job_id", J.c.job_id, True),)),
    "posted_asc": Order("jobs", "posted_asc", (Key("job_id", J.c.job_id),)),
}
#: What a job summary shows (a listing reads these columns only, not the whole row).
SUMMARY = (
    J.c.job_id,
    J.c.client,
    J.c.asset,
    J.c.max_amount,
    J.c.amount,
    J.c.state,
    J.c.posted_at,
    J.c.bid_deadline,
    J.c.bid_count,
    J.c.provider,
    J.c.price,
    J.c.settled_at,
    J.c.block_number,
    J.c.tx_hash,
    J.c.log_index,
)


#: The price a job pays: the accepted bid once assigned, its escrow (the most it pays) before.
EFFECTIVE_PRICE = sa.type_coerce(sa.func.coalesce(J.c.price, J.c.max_amount), models.Uint256())
JOBS = Listing(
    SUMMARY,
    {
        "status": Filter(lambda v: J.c.state == v, literal=True),
        "client": Filter(lambda v: J.c.client == v),
        "provider": Filter(lambda v: J.c.provider == v),
        "asset": Filter(lambda v: J.c.asset == v),
        "min_price": Filter(lambda v: v <= EFFECTIVE_PRICE, type_=models.Uint256()),
        "max_price": Filter(lambda v: v >= EFFECTIVE_PRICE, type_=models.Uint256()),
    },
    JobSummary,
    # A client's or provider's jobs read its index backwards, however many it has; a state
    # (60% open, a handful disputed) is written into its own statement; a price range wants a
    # plan for its values.
    generic=frozenset({"client", "provider"}),
)
JOB = Prepared(sa.select(J).where(J.c.job_id == sa.bindparam("job_id")), generic=True)


def _last_change(m: Any) -> dict[str, Any]:
    return {"block_number": m["block_number"], "tx_hash": m["tx_hash"], "log_index": m["log_index"]}


def job_summary(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "job_id": m["job_id"],
        "client": m["client"],
        "asset": m["asset"],
        "max_amount": m["max_amount"],
        "amount": m["amount"],
        "state": m["state"],
        "posted_at": m["posted_at"],
        "bid_deadline": m["bid_deadline"],
        "bid_count": m["bid_count"],
        "provider": m["provider"],
        "price": m["price"],
        "settled_at": m["settled_at"],
        "last_change": _last_change(m),
    }


@router.get("/jobs", response_model=Page[JobSummary], summary="The job board")
async def list_jobs(
    session: SessionDep,
    page: PageDep,
    status: Annotated[JobState | None, Query(description="Job state, e.g. open.")] = None,
    client: AddressQuery = None,
    provider: AddressQuery = None,
    asset: AssetQuery = None,
    min_price: AmountQuery = None,
    max_price: AmountQuery = None,
    sort: Annotated[
        Literal["posted_desc", "posted_asc"], Query(description="By posted block, newest or oldest first.")
    ] = "posted_desc",
) -> dict[str, Any]:
    """Jobs filtered by state, client, provider, payment asset and price, newest posted first.

    The price range applies to the accepted price once a job is assigned, and to its escrow
    (the most the client pays) while it is open.
    """
    values = {
        "status": status,
        "client": client,
        "provider": provider,
        "asset": asset,
        "min_price": None if min_price is None else int(min_price),
        "max_price": None if max_price is None else int(max_price),
    }
    data, cursor = await session.read_one(JOBS.page, _ORDERS[sort], page, values)
    return {"data": data, "next_cursor": cursor, "meta": session.meta()}


def _get_job(conn: sa.Connection, job_id: int) -> Any:
    row = JOB.first(conn, job_id=job_id)
    if row is None:
        raise NotFound("Job", job_id, "Posted jobs appear once the indexer has folded their block.")
    return row


def _job_statement(dialect: str) -> sa.Select[Any]:
    """A job, its result and its bids (as JSON), with the freshness: one row, always."""
    job_id: sa.BindParameter[int] = sa.bindparam("job_id")
    bids = json_rows(
        sa.select(*(B.c[name] for name in _BID_COLUMNS))
        .where(B.c.job_id == job_id)
        .order_by(B.c.price, B.c.provider)
        .limit(MAX_LIMIT + 1),
        dialect,
    )
    return sa.select(
        *FRESHNESS.c,
        J,
        *(RES.c[name].label(f"result_{name}") for name in _RESULT_COLUMNS),
        bids.label("bids_json"),
    ).select_from(FRESHNESS.outerjoin(J, J.c.job_id == job_id).outerjoin(RES, RES.c.job_id == J.c.job_id))


_BID_COLUMNS = (
    "provider",
    "price",
    "placed_count",
    "first_placed_at",
    "placed_at",
    "accepted",
    "block_number",
    "tx_hash",
    "log_index",
)
_RESULT_COLUMNS = (
    "job_id",
    "provider",
    "result_hash",
    "result_cid",
    "challenge_end",
    "submitted_at",
    "block_number",
    "tx_hash",
    "log_index",
)
JOB_DETAIL = Prepared(_job_statement, generic=True)


def job_detail(conn: sa.Connection, job_id: int) -> tuple[Freshness, dict[str, Any]]:
    """A job with its bids and result, read with the freshness in ONE statement."""
    rows = JOB_DETAIL.all(conn, job_id=job_id)
    m = rows[0]
    fresh = freshness_of(m)
    if m["job_id"] is None:
        raise NotFound("Job", job_id, "Posted jobs appear once the indexer has folded their block.")
    bids = [dict(zip(_BID_COLUMNS, b, strict=True)) for b in json_value(m["bids_json"])]
    # SQLite's JSON aggregate may not keep the subquery's order.
    bids.sort(key=lambda b: (int(b["price"]), b["provider"]))
    out = job_summary(m)
    out.update(
        spec_hash=m["spec_hash"],
        spec_cid=m["spec_cid"],
        execution_timeout=m["execution_timeout"],
        deadlines={
            "bid": m["bid_deadline"],
            "accept": m["accept_deadline"],
            "execution": m["execution_deadline"],
            "challenge_end": m["challenge_end"],
            "dispute": m["dispute_deadline"],
        },
        bids=[
            {
                "provider": b["provider"],
                "price": b["price"],
                "placed_count": b["placed_count"],
                "first_placed_at": b["first_placed_at"],
                "placed_at": b["placed_at"],
                "accepted": bool(b["accepted"]),
                "last_change": _last_change(b),
            }
            for b in bids[:MAX_LIMIT]
        ],
        bids_truncated=len(bids) > MAX_LIMIT,
        assignment=None if m["provider"] is None else {"provider": m["provider"], "price": m["price"]},
        result=(
            None
            if m["result_job_id"] is None
            else {
                "provider": m["result_provider"],
                "result_hash": m["result_result_hash"],
                "result_cid": m["result_result_cid"],
                "challenge_end": m["result_challenge_end"],
                "submitted_at": m["result_submitted_at"],
                "log": {
                    "block_number": m["result_block_number"],
                    "tx_hash": m["result_tx_hash"],
                    "log_index": m["result_log_index"],
                },
            }
        ),
        dispute=(
            None
            if m["dispute_deadline"] is None
            else {
                "reason_cid": m["dispute_reason_cid"],
                "deadline": m["dispute_deadline"],
                "arbiter": m["arbiter"],
                "provider_bps": m["provider_bps"],
            }
        ),
        settlement={
            "provider_payout": m["provider_payout"],
            "fee": m["fee"],
            "client_refund": m["client_refund"],
            "slashed": m["slashed"],
            "completed_by_client": m["completed_by_client"],
            "settled_at": m["settled_at"],
        },
    )
    return fresh, out


@router.get(
    "/jobs/{job_id}",
    response_model=Item[JobDetail],
    summary="One job",
    responses=not_found("No such job (yet)."),
)
async def get_job(
    session: SessionDep,
    job_id: Annotated[int, id_path("job id")],
) -> dict[str, Any]:
    """A job with its bids, the assignment, the result hash and CID, every deadline, any
    dispute and how it settled."""
    return {"data": await session.read_one(job_detail, job_id), "meta": session.meta()}


@router.get(
    "/jobs/{job_id}/history",
    response_model=Page[Event],
    summary="A job's history",
    responses=not_found("No such job (yet)."),
)
async def job_history(
    session: SessionDep,
    page: PageDep,
    job_id: Annotated[int, id_path("job id")],
    include_reorged: IncludeReorged = False,
) -> dict[str, Any]:
    """Every event naming the job, oldest first: posting, bids, assignment, result, dispute,
    settlement, slashing, each with its provenance."""
    events, cursor = await session.read(_history, job_id, page, include_reorged)
    return {"data": events, "next_cursor": cursor, "meta": session.meta()}


def _history(conn: sa.Connection, job_id: int, page: Any, include_reorged: bool) -> Any:
    _get_job(conn, job_id)
    return history_page(conn, "job_id", job_id, page, include_reorged)
