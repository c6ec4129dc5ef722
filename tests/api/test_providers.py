"""/providers and /providers/{address}: the registry and a provider's record."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api
from tests.indexer.history import ETH

pytestmark = pytest.mark.anvil
NATIVE = "0x0000000000000000000000000000000000000000"


def test_registry_by_status_and_sort(api: Api) -> None:
    p1, p2, p3 = api.who("p1"), api.who("p2"), api.who("p3")
    assert [p["address"] for p in api.all("/providers")] == [p1, p3, p2]  # by stake
    assert {p["address"] for p in api.all("/providers", status="active")} == {p1, p3}
    assert [p["address"] for p in api.all("/providers", status="left")] == [p2]
    assert [p["address"] for p in api.all("/providers", sort="jobs_done", limit=1)][0] == p1
    assert len(api.all("/providers", sort="newest", limit=1)) == 3


def test_a_provider_matches_the_contract(api: Api) -> None:
    compute = api.history.protocol.compute
    for name in ("p1", "p3"):
        address = api.who(name)
        provider = api.ok(f"/providers/{address.lower()}")["data"]
        stake, unbonding_at, active_jobs, registered, metadata_cid = compute.functions.getProvider(
            address
        ).call()
        assert registered and provider["address"] == address
        assert (int(provider["stake"]), provider["active_jobs"], provider["metadata_cid"]) == (
            stake,
            active_jobs,
            metadata_cid,
        )


def test_record_and_earnings(api: Api) -> None:
    p1 = api.ok(f"/providers/{api.who('p1')}")["data"]
    assert (p1["jobs_done"], p1["failures"], p1["disputes"], p1["success_rate"]) == (3, 0, 2, 1.0)
    assert p1["metadata_cid"] == "bafkp1v2" and p1["status"] == "active"
    earnings = {e["asset"]: e for e in p1["earnings"]}
    assert set(earnings) == {NATIVE, api.history.token_asset}
    # Three native jobs paid (finalized, accepted, resolved's share), one in the token, each
    # price - 3% fee, as Credited to the provider.
    credited = [
        e.amount
        for e in api.history.named("Credited")
        if e.account == api.who("p1") and e.contract == "ComputeRental" and e.asset == NATIVE
    ]
    assert int(earnings[NATIVE]["amount"]) == sum(credited) and earnings[NATIVE]["jobs"] == 3
    assert int(earnings[api.history.token_asset]["amount"]) == 2 * ETH - 2 * ETH * 3 // 100
    p3 = api.ok(f"/providers/{api.who('p3')}")["data"]
    assert (p3["failures"], p3["success_rate"], p3["earnings"]) == (1, 0.0, [])
    assert int(p3["slashed_total"]) > 0 and int(p3["stake"]) == ETH - int(p3["slashed_total"])
    p2 = api.ok(f"/providers/{api.who('p2')}")["data"]
    assert (p2["status"], p2["stake"], p2["success_rate"]) == ("left", "0", None)


def test_never_registered_is_404(api: Api) -> None:
    response = api.get(f"/providers/{api.who('buyer')}")
    assert response.status_code == 404 and "never registered" in response.json()["message"]
