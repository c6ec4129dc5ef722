"""/accounts/{address}: what an account is owed (checked against the contracts' `owed`) and what
it did on both contracts."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.anvil
NATIVE = "0x0000000000000000000000000000000000000000"


@pytest.mark.parametrize("who", ["client", "p1", "p3", "creator", "buyer", "reader2", "treasury", "admin"])
def test_owed_matches_the_contracts(api: Api, who: str) -> None:
    address = api.who(who)
    account = api.ok(f"/accounts/{address.lower()}")["data"]
    assert account["address"] == address
    contracts = {
        "ComputeRental": api.history.protocol.compute,
        "PromptMarketplace": api.history.protocol.market,
    }
    for entry in account["owed"]:
        on_chain = contracts[entry["contract"]].functions.owed(address, entry["asset"]).call()
        assert int(entry["owed"]) == on_chain, (who, entry)
        assert int(entry["credited_total"]) - int(entry["withdrawn_total"]) == on_chain
    for asset in (NATIVE, api.history.token_asset):
        expected = sum(c.functions.owed(address, asset).call() for c in contracts.values())
        got = {t["asset"]: int(t["owed"]) for t in account["owed_by_asset"]}.get(asset, 0)
        assert got == expected, (who, asset)


def test_activity_across_both_contracts(api: Api) -> None:
    client = api.ok(f"/accounts/{api.who('client')}")["data"]
    assert client["compute"]["jobs_posted"] == len(api.history.jobs)
    assert [j["job_id"] for j in client["compute"]["recent_jobs"]] == sorted(
        api.history.jobs.values(), reverse=True
    )
    assert client["compute"]["provider"] is None
    # Withdrew its native refunds: credited and withdrawn totals are both non-zero.
    native = next(o for o in client["owed"] if o["asset"] == NATIVE and o["contract"] == "ComputeRental")
    assert int(native["withdrawn_total"]) > 0

    p1 = api.ok(f"/accounts/{api.who('p1')}")["data"]["compute"]
    assert (p1["jobs_as_provider"], p1["bids_placed"]) == (5, 5)
    assert p1["provider"]["address"] == api.who("p1")

    creator = api.ok(f"/accounts/{api.who('creator')}")["data"]["market"]
    assert (creator["prompts_created"], creator["prompts_owned"], creator["sales_as_seller"]) == (2, 0, 1)
    buyer = api.ok(f"/accounts/{api.who('buyer')}")["data"]["market"]
    assert (buyer["purchases"], buyer["prompts_owned"], buyer["licences_sold"]) == (1, 1, 2)
    reader1 = api.ok(f"/accounts/{api.who('reader1')}")["data"]["market"]
    assert (reader1["licences_bought"], reader1["ratings_given"]) == (1, 1)


def test_an_unused_address_has_an_empty_account(api: Api) -> None:
    address = "0x000000000000000000000000000000000000dEaD"
    account = api.ok(f"/accounts/{address.lower()}")["data"]
    assert account["address"] == address and account["owed"] == [] and account["owed_by_asset"] == []
    assert set(account["market"].values()) == {0} and account["compute"]["recent_jobs"] == []
