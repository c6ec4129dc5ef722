"""The fee dashboard: protocol fees per asset per day or week, and totals."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Query

from api.deps import SessionDep
from api.pagination import Key, Order, PageDep
from api.routes import resource_router
from api.schemas import FeePage, Period
from api.validation import AssetQuery, DayFilter, day_query
from indexer import models

router = resource_router("fees")
F = models.TABLES[models.FeeDay]

_ORDERS = {
    period: Order(
        "fees",
        period,
        (Key("period_start", F.c.day, True, str), Key("asset", F.c.asset, False, str)),
    )
    for period in ("day", "week")
}


def _start(day: str, period: str) -> date:
    d = date.fromisoformat(day)
    return d - timedelta(days=d.weekday()) if period == "week" else d


@router.get("/fees", response_model=FeePage, summary="Fees collected")
async def list_fees(
    session: SessionDep,
    page: PageDep,
    period: Annotated[Period, Query(description="Group by UTC day, or by ISO week (Monday first).")] = "day",
    asset: AssetQuery = None,
    from_day: Annotated[DayFilter, day_query("First UTC day (inclusive), YYYY-MM-DD.")] = None,
    to_day: Annotated[DayFilter, day_query("Last UTC day (inclusive), YYYY-MM-DD.")] = None,
) -> dict[str, Any]:
    """The 3% protocol fee charged on settlements, per asset and period (newest period first),
    with totals per asset over the whole filter (not just the page). Days are UTC days of the
    block timestamps."""
    query = sa.select(F.c.asset, F.c.day, F.c.amount, F.c.count)
    if asset is not None:
        query = query.where(F.c.asset == asset)
    if from_day is not None:
        query = query.where(F.c.day >= from_day.isoformat())
    if to_day is not None:
        query = query.where(F.c.day <= to_day.isoformat())
    buckets: dict[tuple[date, str], list[int]] = {}
    totals: dict[str, list[int]] = {}
    for row in await session.read(lambda conn: conn.execute(query).all()):
        # NOTE: by name: `count` is also the method every tuple (and Row) has.
        m = row._mapping
        bucket = buckets.setdefault((_start(m["day"], period), m["asset"]), [0, 0])
        bucket[0] += int(m["amount"])
        bucket[1] += int(m["count"])
        total = totals.setdefault(m["asset"], [0, 0])
        total[0] += int(m["amount"])
        total[1] += int(m["count"])
    # Newest period first, assets in address order within one period.
    keys = sorted(buckets, key=lambda k: k[1])
    keys.sort(key=lambda k: k[0], reverse=True)
    order = _ORDERS[period]
    if page.cursor is not None:
        after_start, after_asset = order.decode(page.cursor)
        keys = [
            k
            for k in keys
            if k[0].isoformat() < after_start or (k[0].isoformat() == after_start and k[1] > after_asset)
        ]
    chosen = keys[: page.limit]
    cursor = None
    if len(keys) > page.limit:
        last = chosen[-1]
        cursor = order.encode_values([last[0].isoformat(), last[1]])
    return {
        "data": [
            {
                "asset": a,
                "period": period,
                "period_start": start,
                "amount": buckets[(start, a)][0],
                "count": buckets[(start, a)][1],
            }
            for start, a in chosen
        ],
        "totals": [{"asset": a, "amount": v[0], "count": v[1]} for a, v in sorted(totals.items())],
        "next_cursor": cursor,
        "meta": session.meta(),
    }
