"""/prompts, /prompts/{id} and /prompts/{id}/history: the catalogue a dApp browses, checked
against the marketplace's getters and logs."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api
from tests.indexer.history import ETH

pytestmark = pytest.mark.anvil
NATIVE = "0x0000000000000000000000000000000000000000"


class TestPromptPage:
    def test_a_sold_licensed_rated_prompt(self, api: Api) -> None:
        token_id = api.history.tokens["sold"]
        prompt = api.ok(f"/prompts/{token_id}")["data"]
        creator, royalty_bps, content_hash, metadata_cid = api.history.protocol.market.functions.getPrompt(
            token_id
        ).call()
        assert (prompt["creator"], prompt["royalty_bps"], prompt["metadata_cid"]) == (
            creator,
            royalty_bps,
            metadata_cid,
        )
        assert prompt["content_hash"] == "0x" + content_hash.hex()
        assert (
            prompt["owner"]
            == api.history.protocol.market.functions.ownerOf(token_id).call()
            == api.who("buyer")
        )
        assert prompt["listed"] is False and prompt["listing"] is None
        # The new owner offers licences again after the sale cleared the creator's terms.
        assert prompt["licence_terms"] == {"asset": NATIVE, "price": str(ETH // 5)}
        assert (prompt["sales_count"], prompt["licences_sold"]) == (1, 2)
        assert prompt["rating"] == {"count": 1, "total": 4, "average": 4.0}

    def test_a_transferred_prompt_lost_its_listing_and_terms(self, api: Api) -> None:
        prompt = api.ok(f"/prompts/{api.history.tokens['transferred']}")["data"]
        assert prompt["owner"] == api.who("reader2") and prompt["creator"] == api.who("creator")
        assert prompt["listed"] is False and prompt["licence_terms"] is None
        assert prompt["rating"] == {"count": 0, "total": 0, "average": None}

    def test_unknown_prompt_is_404(self, api: Api) -> None:
        assert api.get("/prompts/424242").status_code == 404
        assert api.get("/prompts/424242/history").status_code == 404


class TestCatalogue:
    def test_filters(self, api: Api) -> None:
        sold, moved = api.history.tokens["sold"], api.history.tokens["transferred"]

        def ids(**params: object) -> list[int]:
            return [p["token_id"] for p in api.all("/prompts", **params)]

        assert ids() == [moved, sold]
        assert ids(sort="oldest") == [sold, moved]
        assert ids(creator=api.who("creator").lower()) == [moved, sold]
        assert ids(owner=api.who("buyer")) == [sold]
        assert ids(owner=api.who("reader2")) == [moved]
        assert ids(listed="false") == [moved, sold]
        assert ids(listed="true") == []
        assert ids(min_rating=4) == [sold]
        assert ids(min_rating=4.5) == []
        assert ids(asset=NATIVE) == [sold]
        assert ids(asset=api.history.token_asset) == []
        assert ids(sort="rating") == [sold, moved]
        assert ids(sort="sales") == [sold, moved]
        assert ids(sort="price_asc") == []

    def test_text_search_is_case_insensitive(self, api: Api) -> None:
        # Metadata documents are not resolved by the indexer yet: `q` searches the metadata CID.
        assert [p["token_id"] for p in api.all("/prompts", q="META2")] == [api.history.tokens["transferred"]]
        assert [p["token_id"] for p in api.all("/prompts", q="bafkmeta")] == sorted(
            api.history.tokens.values(), reverse=True
        )
        assert api.all("/prompts", q="%") == [] and api.all("/prompts", q="_") == []

    def test_paging(self, api: Api) -> None:
        first = api.ok("/prompts", limit=1)
        assert len(first["data"]) == 1 and first["next_cursor"]
        second = api.ok("/prompts", limit=1, cursor=first["next_cursor"])
        assert second["data"][0]["token_id"] < first["data"][0]["token_id"] and second["next_cursor"] is None


class TestPromptHistory:
    def test_every_event_naming_the_prompt_in_order(self, api: Api) -> None:
        token_id = api.history.tokens["sold"]
        events = api.all(f"/prompts/{token_id}/history", limit=4)
        on_chain = [e for e in api.history.events if getattr(e, "token_id", None) == token_id]
        assert [(e["event"], e["tx_hash"], e["log_index"]) for e in events] == [
            (e.name, e.tx_hash, e.log_index) for e in on_chain
        ]
        names = [e["event"] for e in events]
        assert names[:2] == ["Transfer", "PromptMinted"]
        for expected in (
            "PromptListed",
            "ListingCancelled",
            "PromptSold",
            "LicensePurchased",
            "KeyDelivered",
            "LicenseRefunded",
            "PromptRated",
        ):
            assert expected in names
