"""/fees: the fee dashboard equals the FeeCharged logs, per asset, per day or week."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.anvil


def _expected(api: Api) -> tuple[Counter[str], Counter[str], set[date]]:
    amounts: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    days: set[date] = set()
    stamps = {ref.number: ref.timestamp for ref, _ in api.history.blocks}
    for event in api.history.named("FeeCharged"):
        amounts[event.asset] += event.amount
        counts[event.asset] += 1
        days.add(datetime.fromtimestamp(stamps[event.block_number], UTC).date())
    return amounts, counts, days


def test_totals_equal_the_fee_logs(api: Api) -> None:
    amounts, counts, days = _expected(api)
    for period in ("day", "week"):
        body = api.ok("/fees", period=period)
        assert {t["asset"]: int(t["amount"]) for t in body["totals"]} == dict(amounts)
        assert {t["asset"]: t["count"] for t in body["totals"]} == dict(counts)
        buckets = api.all("/fees", period=period, limit=1)
        per_asset: Counter[str] = Counter()
        for b in buckets:
            per_asset[b["asset"]] += int(b["amount"])
            start = date.fromisoformat(b["period_start"])
            assert b["period"] == period
            if period == "week":
                assert start.weekday() == 0
            else:
                assert start in days
        assert per_asset == amounts


def test_newest_period_first_and_date_filters(api: Api) -> None:
    _, _, days = _expected(api)
    buckets = api.all("/fees")
    starts = [b["period_start"] for b in buckets]
    assert starts == sorted(starts, reverse=True)
    last = max(days)
    assert api.ok("/fees", from_day=(last + timedelta(days=1)).isoformat())["data"] == []
    assert api.ok("/fees", to_day=(min(days) - timedelta(days=1)).isoformat())["totals"] == []
    only_token = api.ok("/fees", asset=api.history.token_asset.lower())
    assert {b["asset"] for b in only_token["data"]} == {api.history.token_asset}
