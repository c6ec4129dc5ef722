"""/prompts, /prompts/{id} and /prompts/{id}/history: the catalogue a dApp browses, checked
against the marketplace's getters and logs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.schemas import Item, Prompt
from ascendnet.storage import LocalContentStore, compute_cid
from chain.anvil import Anvil
from chain.contracts import Protocol
from chain.tx import TxSender
from indexer.db import make_engine
from indexer.metadata import resolve_pending
from tests.api.conftest import BACKENDS, Api, api_settings
from tests.indexer.documents import document
from tests.indexer.harness import index_once, pg_database
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
        # These documents are not resolved (their CIDs are not even CIDs): `q` finds them by CID.
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


# ---------------------------------------------------------------- metadata documents


@dataclass
class Minted:
    """Prompts minted on a deployment of their own, with documents in a local content store."""

    protocol: Protocol
    store: LocalContentStore
    tokens: dict[str, int]
    cids: dict[str, str]


@pytest.fixture(scope="module")
def minted(protocol: Protocol, senders: list[TxSender], tmp_path_factory: pytest.TempPathFactory) -> Minted:
    store = LocalContentStore(tmp_path_factory.mktemp("content"))
    cids = {
        "haiku": store.put(document("Haiku Master", "Writes one surprising poem about any topic.", b"haiku")),
        # Its document is nowhere: the indexer finds it unavailable.
        "lost": str(compute_cid(document("Lost sonnet", "Never stored.", b"lost"))),
    }
    tokens = {}
    # "copycat" names the haiku's document but mints other content: the document is not its own.
    for name, cid, text in (("haiku", cids["haiku"], b"haiku"), ("lost", cids["lost"], b"lost"),
                            ("copycat", cids["haiku"], b"copycat")):  # fmt: skip
        senders[5].transact(protocol.market.functions.mint(cid, hashlib.sha256(text).digest(), 0))
        tokens[name] = protocol.market.functions.promptCount().call()
    return Minted(protocol, store, tokens, cids)


@pytest.fixture(scope="module", params=BACKENDS)
def catalogue(
    request: pytest.FixtureRequest, minted: Minted, anvil: Anvil, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The API over an index of `minted`'s deployment whose metadata the resolver fetched."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('catalogue') / 'indexer.sqlite3'}"
        else:
            url = stack.enter_context(pg_database())
        index_once(url, minted.protocol.deployment, [anvil.rpc_url])
        engine = make_engine(url)
        try:
            assert resolve_pending(engine, minted.store).attempted == 2
        finally:
            engine.dispose()
        yield stack.enter_context(TestClient(create_app(api_settings(url))))


def _found(client: TestClient, q: str) -> list[int]:
    response = client.get("/prompts", params={"q": q})
    assert response.status_code == 200, response.text
    return [p["token_id"] for p in response.json()["data"]]


class TestMetadata:
    def test_a_word_of_the_title_or_the_description_finds_the_prompt(
        self, catalogue: TestClient, minted: Minted
    ) -> None:
        haiku = [minted.tokens["haiku"]]
        assert _found(catalogue, "haiku") == haiku  # the title, in other case
        assert _found(catalogue, "MASTER") == haiku
        assert _found(catalogue, "Surprising POEM") == haiku  # the description
        assert _found(catalogue, "sonnet") == []  # the lost prompt's title is not known
        assert _found(catalogue, "%") == [] and _found(catalogue, "_") == []

    def test_a_prompt_whose_document_is_not_resolved_is_found_by_its_cid(
        self, catalogue: TestClient, minted: Minted
    ) -> None:
        assert _found(catalogue, minted.cids["lost"][-12:].upper()) == [minted.tokens["lost"]]
        metadata = catalogue.get(f"/prompts/{minted.tokens['lost']}").json()["data"]["metadata"]
        assert metadata["status"] == "unavailable" and metadata["title"] is None
        assert minted.cids["lost"] in metadata["error"]

    def test_each_prompt_shows_its_own_document_only(self, catalogue: TestClient, minted: Minted) -> None:
        body = catalogue.get(f"/prompts/{minted.tokens['haiku']}").json()
        Item[Prompt].model_validate(body)  # the answer is what the OpenAPI document says
        haiku = body["data"]
        assert haiku["metadata"] == {
            "status": "resolved",
            "title": "Haiku Master",
            "description": "Writes one surprising poem about any topic.",
            "error": None,
        }
        # The copycat names the same document, whose content hash is not its own.
        copycat = catalogue.get(f"/prompts/{minted.tokens['copycat']}").json()["data"]
        assert copycat["metadata_cid"] == haiku["metadata_cid"]
        assert copycat["metadata"]["status"] == "mismatch" and copycat["metadata"]["title"] is None
        assert minted.tokens["copycat"] not in _found(catalogue, "haiku")
        # The catalogue shows what each prompt's page shows.
        listed = {p["token_id"]: p["metadata"] for p in catalogue.get("/prompts").json()["data"]}
        assert listed == {
            token: catalogue.get(f"/prompts/{token}").json()["data"]["metadata"]
            for token in minted.tokens.values()
        }
