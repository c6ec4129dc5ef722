"""/listings, /licences, /sales and /ratings over the marketplace's real history."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api
from tests.indexer.history import ETH

pytestmark = pytest.mark.anvil


class TestListings:
    def test_every_listing_with_how_it_ended(self, api: Api) -> None:
        sold, moved = api.history.tokens["sold"], api.history.tokens["transferred"]
        listings = api.all("/listings", limit=2)
        assert [(x["token_id"], x["seq"], x["state"], int(x["price"])) for x in listings] == [
            (moved, 1, "cancelled", ETH),  # cleared by the transfer
            (sold, 3, "sold", ETH),
            (sold, 2, "replaced", 2 * ETH),
            (sold, 1, "cancelled", ETH),
        ]
        sale = next(x for x in listings if x["state"] == "sold")
        assert sale["buyer"] == api.who("buyer") and sale["closed_at"] >= sale["listed_at"]

    def test_filters(self, api: Api) -> None:
        sold = api.history.tokens["sold"]
        assert [x["seq"] for x in api.all("/listings", token_id=sold, sort="oldest")] == [1, 2, 3]
        assert [x["seq"] for x in api.all("/listings", state="sold")] == [3]
        assert api.all("/listings", state="active") == []
        assert len(api.all("/listings", seller=api.who("creator").lower())) == 4
        assert api.all("/listings", seller=api.who("buyer")) == []
        assert api.all("/listings", asset=api.history.token_asset) == []


class TestLicences:
    def test_a_delivered_and_a_refunded_licence(self, api: Api) -> None:
        delivered = api.ok("/licences", buyer=api.who("reader1"))["data"]
        assert [x["license_id"] for x in delivered] == [api.history.licences["delivered"]]
        lic = delivered[0]
        assert lic["state"] == "delivered" and lic["rated"] is True and lic["seller"] == api.who("buyer")
        assert lic["encrypted_key"] == "0x" + (b"\x04" + b"k" * 64).hex()
        assert int(lic["seller_proceeds"]) + int(lic["fee"]) == int(lic["price"]) == ETH // 5
        refunded = api.ok("/licences", state="refunded")["data"]
        assert [x["license_id"] for x in refunded] == [api.history.licences["refunded"]]
        assert refunded[0]["refund"] == refunded[0]["price"] and refunded[0]["fee"] is None

    def test_by_prompt_and_by_seller(self, api: Api) -> None:
        sold = api.history.tokens["sold"]
        assert len(api.all("/licences", token_id=sold)) == 2
        assert api.all("/licences", token_id=api.history.tokens["transferred"]) == []
        assert len(api.all("/licences", seller=api.who("buyer"))) == 2
        oldest = [x["license_id"] for x in api.all("/licences", sort="oldest", limit=1)]
        assert oldest == sorted(api.history.licences.values())


class TestSales:
    def test_the_sale_splits_the_price(self, api: Api) -> None:
        (sale,) = api.all("/sales")
        (event,) = api.history.named("PromptSold")
        assert (sale["token_id"], sale["seller"], sale["buyer"]) == (
            event.token_id,
            event.seller,
            event.buyer,
        )
        assert (sale["log"]["tx_hash"], sale["log"]["log_index"]) == (event.tx_hash, event.log_index)
        assert (
            int(sale["price"])
            == int(sale["fee"]) + int(sale["royalty"]) + int(sale["seller_proceeds"])
            == ETH
        )
        assert sale["royalty_receiver"] == api.who("creator") and sale["listing_seq"] == 3
        assert api.all("/sales", buyer=api.who("creator")) == []
        assert len(api.all("/sales", seller=api.who("creator"), token_id=sale["token_id"])) == 1


class TestRatings:
    def test_the_rating_and_its_filters(self, api: Api) -> None:
        (rating,) = api.all("/ratings")
        assert (rating["score"], rating["rater"], rating["review_cid"]) == (
            4,
            api.who("reader1"),
            "bafkreview",
        )
        assert rating["license_id"] == api.history.licences["delivered"]
        assert api.all("/ratings", min_score=5) == []
        assert len(api.all("/ratings", min_score=4, rater=api.who("reader1"))) == 1
        assert api.all("/ratings", token_id=api.history.tokens["transferred"]) == []
