"""Prompt metadata resolution (indexer/metadata.py) against a real local content store, on SQLite
and PostgreSQL: prompts are minted by folding PromptMinted events through the projector, their
documents put in (or left out of) a content store in the test's tmp dir."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ascendnet.prompt_metadata import MAX_DOCUMENT_BYTES, content_hash_of
from ascendnet.storage import LocalContentStore, compute_cid
from ascendnet.storage.kubo import KuboContentStore
from chain import events as E
from indexer import metadata as md
from indexer.digest import row_digests, stored_digests
from indexer.metadata import MetadataResolver, resolve_pending, retry_delay
from indexer.rebuild import rebuild, verify
from indexer.settings import IndexerSettings
from tests.conftest import free_port
from tests.indexer.documents import document
from tests.indexer.readmodels import index, one, rows
from tests.indexer.synthetic import CHAIN_ID, NATIVE, Builder

pytest_plugins = ("tests.indexer.backends",)
# ipfshttpclient passes `strict=` to urllib3; kubo.py silences that at import, pytest resets filters.
pytestmark = pytest.mark.filterwarnings("ignore:The 'strict' parameter is no longer needed:FutureWarning")

CREATOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


class Chain:
    """Mints prompts by folding Transfer + PromptMinted events into the read models."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.builder = Builder()
        self.token_id = 0

    def mint(self, *cids: str, plaintext: bytes | None = None) -> list[int]:
        logs = []
        ids = []
        for cid in cids:
            self.token_id += 1
            text = plaintext if plaintext is not None else f"prompt {self.token_id}".encode()
            logs += [
                (E.Transfer, {"from_": NATIVE, "to": CREATOR, "token_id": self.token_id}),
                (
                    E.PromptMinted,
                    {
                        "token_id": self.token_id,
                        "creator": CREATOR,
                        "metadata_cid": cid,
                        "content_hash": hashlib.sha256(text).digest(),
                        "royalty_bps": 500,
                    },
                ),
            ]
            ids.append(self.token_id)
        before = len(self.builder.blocks)
        self.builder.block(*logs)
        index(self.engine, CHAIN_ID, self.builder.blocks[before:])
        return ids


@pytest.fixture()
def store(tmp_path: Path) -> LocalContentStore:
    return LocalContentStore(tmp_path / "content")


@pytest.fixture()
def chain(engine: sa.Engine) -> Chain:
    return Chain(engine)


def row(engine: sa.Engine, cid: str) -> dict[str, Any]:
    return one(engine, "prompt_metadata", metadata_cid=cid)


def test_retry_delay_doubles_from_30_seconds_up_to_an_hour() -> None:
    assert [retry_delay(n) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay(1_000) == 3600


class TestResolve:
    def test_a_stored_document_resolves_to_its_title_and_description(
        self, engine: sa.Engine, chain: Chain, store: LocalContentStore
    ) -> None:
        cid = store.put(document("Haiku MASTER", "Writes one haiku.\nAbout Straße.", b"haiku"))
        chain.mint(cid, plaintext=b"haiku")

        report = resolve_pending(engine, store, now=1_000)

        assert (report.resolved, report.invalid, report.unavailable, report.more) == (1, 0, 0, False)
        got = row(engine, cid)
        assert got["status"] == "resolved" and got["schema_version"] == "ascendnet.prompt/v1"
        assert (got["title"], got["description"]) == ("Haiku MASTER", "Writes one haiku.\nAbout Straße.")
        assert got["content_hash"] == content_hash_of(b"haiku") == one(engine, "prompts")["content_hash"]
        assert got["search_text"] == "haiku master\nwrites one haiku.\nabout strasse."
        assert (got["attempts"], got["attempted_at"], got["resolved_at"]) == (1, 1_000, 1_000)
        assert got["next_attempt_at"] is None and got["error"] is None

    def test_bad_documents_are_invalid_for_good_and_say_why(
        self, engine: sa.Engine, chain: Chain, store: LocalContentStore
    ) -> None:
        not_json = store.put(b"\x89PNG not a json document")
        future = store.put(json.dumps({"schema_version": "ascendnet.prompt/v2", "title": "Later"}).encode())
        incomplete = store.put(json.dumps({"schema_version": "ascendnet.prompt/v1", "title": "T"}).encode())
        too_large = store.put(b" " * (MAX_DOCUMENT_BYTES + 1))
        chain.mint(not_json, future, incomplete, too_large, "bafkmeta1")

        report = resolve_pending(engine, store, now=1_000)

        assert (report.resolved, report.invalid, report.unavailable) == (0, 5, 0)
        assert "Invalid JSON" in row(engine, not_json)["error"]
        assert row(engine, future)["schema_version"] == "ascendnet.prompt/v2"
        assert "'ascendnet.prompt/v2' is not 'ascendnet.prompt/v1'" in row(engine, future)["error"]
        assert "`description`: Field required" in row(engine, incomplete)["error"]
        assert row(engine, incomplete)["schema_version"] == "ascendnet.prompt/v1"
        assert f"over the {MAX_DOCUMENT_BYTES}-byte limit" in row(engine, too_large)["error"]
        assert row(engine, "bafkmeta1")["error"].startswith("not a CID")
        for got in rows(engine, "prompt_metadata"):
            assert got["status"] == "invalid" and got["title"] is None and got["search_text"] is None
            assert got["next_attempt_at"] is None and len(got["error"]) <= md.MAX_ERROR_CHARS

        # Permanent: a CID's bytes never change, so nothing is fetched again, even much later.
        assert resolve_pending(engine, store, now=10**9).attempted == 0
        assert {r["attempts"] for r in rows(engine, "prompt_metadata")} == {1}

    def test_missing_content_is_retried_with_backoff_until_it_resolves(
        self, engine: sa.Engine, chain: Chain, store: LocalContentStore
    ) -> None:
        doc = document("Late", "Stored after the mint.", b"late")
        cid = str(compute_cid(doc))
        (token,) = chain.mint(cid, plaintext=b"late")

        assert resolve_pending(engine, store, now=1_000).unavailable == 1
        got = row(engine, cid)
        assert (got["status"], got["attempts"], got["next_attempt_at"]) == ("unavailable", 1, 1_030)
        assert cid in got["error"] and "not in the local store" in got["error"]
        assert got["title"] is None and got["resolved_at"] is None

        assert resolve_pending(engine, store, now=1_029, after_token_id=token).attempted == 0
        assert resolve_pending(engine, store, now=1_030, after_token_id=token).unavailable == 1
        assert (row(engine, cid)["attempts"], row(engine, cid)["next_attempt_at"]) == (2, 1_090)

        store.put(doc)
        assert resolve_pending(engine, store, now=1_089, after_token_id=token).attempted == 0
        assert resolve_pending(engine, store, now=1_090, after_token_id=token).resolved == 1
        got = row(engine, cid)
        assert (got["status"], got["title"], got["attempts"], got["resolved_at"]) == (
            "resolved",
            "Late",
            3,
            1_090,
        )
        assert got["next_attempt_at"] is None and got["error"] is None

    def test_resolving_again_changes_nothing_and_one_document_is_fetched_once(
        self, engine: sa.Engine, chain: Chain, store: LocalContentStore
    ) -> None:
        cid = store.put(document("Shared", "Two tokens name it.", b"shared"))
        chain.mint(cid, cid, plaintext=b"shared")

        first = resolve_pending(engine, store, now=1_000)
        assert first.resolved == 1  # one document, one fetch, one row
        before = rows(engine, "prompt_metadata")
        assert len(before) == 1
        assert resolve_pending(engine, store, now=2_000).attempted == 0
        assert resolve_pending(engine, store, now=3_000, after_token_id=0).attempted == 0
        assert rows(engine, "prompt_metadata") == before

    def test_batches_follow_a_cursor_over_token_ids(
        self, engine: sa.Engine, chain: Chain, store: LocalContentStore
    ) -> None:
        cids = [store.put(document(f"Prompt {i}", "A prompt.", b"x")) for i in range(5)]
        chain.mint(*cids, plaintext=b"x")

        first = resolve_pending(engine, store, limit=2, now=1_000)
        assert (first.resolved, first.more, first.scanned_through) == (2, True, 2)
        second = resolve_pending(engine, store, limit=2, now=1_000, after_token_id=first.scanned_through)
        assert (second.resolved, second.more, second.scanned_through) == (2, True, 4)
        third = resolve_pending(engine, store, limit=2, now=1_000, after_token_id=second.scanned_through)
        assert (third.resolved, third.more, third.scanned_through) == (1, False, 5)
        assert resolve_pending(engine, store, now=1_000, after_token_id=5).attempted == 0

        later = store.put(document("Minted later", "A new prompt.", b"y"))
        chain.mint(later, plaintext=b"y")
        report = resolve_pending(engine, store, now=1_000, after_token_id=third.scanned_through)
        assert (report.resolved, report.scanned_through) == (1, 6)
        assert [r["title"] for r in rows(engine, "prompt_metadata", order_by="title")] == [
            "Minted later",
            *(f"Prompt {i}" for i in range(5)),
        ]

    def test_a_spent_budget_stops_fetching_and_the_cursor_waits_for_the_rest(
        self, engine: sa.Engine, chain: Chain, store: LocalContentStore
    ) -> None:
        cids = [store.put(document(f"P{i}", "A prompt.", b"x")) for i in range(3)]
        chain.mint(*cids, plaintext=b"x")

        report = resolve_pending(engine, store, now=1_000, budget=0.0)
        # At least one fetch per call, none after the budget is spent.
        assert (report.resolved, report.more, report.scanned_through) == (1, True, 1)
        report = resolve_pending(engine, store, now=1_000, after_token_id=report.scanned_through)
        assert (report.resolved, report.more) == (2, False)

    def test_a_store_that_is_down_stops_the_batch_and_leaves_the_rest_pending(
        self, engine: sa.Engine, chain: Chain, store: LocalContentStore
    ) -> None:
        cids = [store.put(document(f"P{i}", "A prompt.", b"x")) for i in range(3)]
        chain.mint(*cids, plaintext=b"x")
        down = KuboContentStore(f"/ip4/127.0.0.1/tcp/{free_port()}/http", timeout=2)

        report = resolve_pending(engine, down, now=1_000)

        assert (report.unavailable, report.store_down, report.more, report.scanned_through) == (
            1,
            True,
            True,
            1,
        )
        got = row(engine, cids[0])
        assert got["status"] == "unavailable" and "unavailable" in got["error"]
        assert len(rows(engine, "prompt_metadata")) == 1  # the others were not tried
        report = resolve_pending(engine, store, now=1_001, after_token_id=report.scanned_through)
        assert report.resolved == 2
        assert resolve_pending(engine, store, now=1_030, after_token_id=3).resolved == 1  # the retry

    def test_a_resolved_row_is_never_downgraded(
        self, engine: sa.Engine, chain: Chain, store: LocalContentStore, tmp_path: Path
    ) -> None:
        """Another resolver (a `resolve-metadata` beside `indexer run`) that fails later cannot
        undo what one resolved."""
        cid = store.put(document("Kept", "Resolved first.", b"k"))
        chain.mint(cid, plaintext=b"k")
        empty = LocalContentStore(tmp_path / "elsewhere")
        with engine.begin() as conn:
            md._upsert(conn, [md._row(md._Pending(cid, 0, 1), md.fetch_document(store, cid), 1_000)])
            md._upsert(conn, [md._row(md._Pending(cid, 0, 1), md.fetch_document(empty, cid), 1_001)])
        assert (row(engine, cid)["status"], row(engine, cid)["title"]) == ("resolved", "Kept")


class TestOutsideTheChainState:
    def test_digests_rebuild_and_verify_ignore_the_metadata(
        self, engine: sa.Engine, chain: Chain, store: LocalContentStore
    ) -> None:
        cid = store.put(document("Off chain", "Not covered by digests.", b"o"))
        chain.mint(cid, "bafkmeta1", plaintext=b"o")
        with engine.connect() as conn:
            digests, row_state = stored_digests(conn), row_digests(conn)

        assert resolve_pending(engine, store, now=1_000).attempted == 2
        with engine.connect() as conn:
            assert (stored_digests(conn), row_digests(conn)) == (digests, row_state)
        assert verify(engine, CHAIN_ID).identical
        kept = rows(engine, "prompt_metadata", order_by="metadata_cid")

        rebuild(engine, CHAIN_ID)

        assert rows(engine, "prompt_metadata", order_by="metadata_cid") == kept
        assert resolve_pending(engine, store, now=2_000).attempted == 0


class TestMetadataResolver:
    def test_pauses_while_the_store_is_down_and_rescans_on_request(
        self, engine: sa.Engine, chain: Chain, store: LocalContentStore
    ) -> None:
        now = [100.0]
        cid = store.put(document("Paused", "Then resolved.", b"p"))
        chain.mint(cid, plaintext=b"p")
        down = KuboContentStore(f"/ip4/127.0.0.1/tcp/{free_port()}/http", timeout=2)
        resolver = MetadataResolver(engine, down, clock=lambda: now[0], wall_clock=lambda: now[0])

        first = resolver.run()
        assert first is not None and first.store_down
        now[0] += md.RETRY_BASE - 1
        assert resolver.run() is None  # paused: not even the database is read
        resolver.store = store
        now[0] += 1
        report = resolver.run()
        assert report is not None and report.resolved == 1
        assert row(engine, cid)["attempts"] == 2

        # A reorg may re-mint token ids below the cursor: `rescan` looks at every prompt again.
        with engine.begin() as conn:
            conn.execute(sa.delete(md.T))
        assert resolver.run() is not None and row_count(engine) == 0
        resolver.rescan()
        assert resolver.run() is not None and row_count(engine) == 1


def row_count(engine: sa.Engine) -> int:
    return len(rows(engine, "prompt_metadata"))


class TestSettings:
    def test_the_store_and_the_switches_come_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("ASCENDNET_STORAGE__BACKEND", "kubo")
        monkeypatch.setenv("ASCENDNET_STORAGE__KUBO_API", f"/ip4/127.0.0.1/tcp/{free_port()}/http")
        monkeypatch.setenv("ASCENDNET_METADATA_RESOLVE", "false")
        monkeypatch.setenv("ASCENDNET_METADATA_BATCH", "7")
        monkeypatch.setenv("ASCENDNET_METADATA_TIMEOUT", "1.5")
        settings = IndexerSettings(_env_file=None)
        assert settings.metadata_resolve is False and settings.metadata_batch == 7
        with settings.metadata_store() as kubo:
            assert isinstance(kubo, KuboContentStore) and kubo.timeout == 1.5

        monkeypatch.delenv("ASCENDNET_STORAGE__BACKEND")
        local = IndexerSettings(_env_file=None, data_dir=tmp_path)
        with local.metadata_store() as store:
            assert isinstance(store, LocalContentStore) and store.root == tmp_path / "content"
