"""Kept answers (api.cache): given again while the database is unchanged, read again once the
indexer has committed, on both backends, over read models the indexer fills from this
module's own anvil."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.cache import ResponseCache, _Entry
from api.deps import Reader
from api.freshness import Freshness
from api.main import create_app
from chain.contracts import Protocol
from indexer.db import make_engine
from tests.api.conftest import api_settings
from tests.indexer.activity import Activity
from tests.indexer.harness import (  # noqa: F401 - fixtures
    Chain,
    Databases,
    activity,
    chain,
    databases,
    index_once,
    protocol,
)

pytestmark = pytest.mark.anvil

NEWEST = {"order": "desc", "limit": 3}


def test_an_answer_is_kept_until_the_indexer_commits(
    databases: Databases,  # noqa: F811
    chain: Chain,  # noqa: F811
    protocol: Protocol,  # noqa: F811
    activity: Activity,  # noqa: F811
) -> None:
    url = databases.new()
    activity.send_mined(activity.mints(chain.accounts[4:6], 2, salt=31))
    index_once(url, protocol.deployment, [chain.url])
    with TestClient(create_app(api_settings(url))) as client:
        cache: ResponseCache = client.app.state.cache  # type: ignore[attr-defined]
        # Kept from the second time it is asked for (a question asked once is seldom repeated).
        first, second, again = (client.get("/events", params=NEWEST) for _ in range(3))
        assert first.status_code == second.status_code == again.status_code == 200
        assert [r.headers["X-Cache"] for r in (first, second, again)] == ["miss", "miss", "hit"]
        assert again.content == first.content
        # The freshness headers are those of the kept answer's own read.
        for header in ("X-Indexed-Head", "X-Finalized-Block", "Content-Type", "Content-Length"):
            assert again.headers[header] == first.headers[header], header
        assert (cache.hits, cache.misses) == (1, 2)
        # Another query string is another answer.
        assert client.get("/events", params={**NEWEST, "limit": 2}).headers["X-Cache"] == "miss"

        # New blocks, indexed: the kept answer is stale, so the next one is read again.
        activity.send_mined(activity.mints(chain.accounts[6:8], 1, salt=32))
        index_once(url, protocol.deployment, [chain.url])
        after = client.get("/events", params=NEWEST)
        assert after.headers["X-Cache"] == "miss"
        assert int(after.headers["X-Indexed-Head"]) > int(first.headers["X-Indexed-Head"])
        assert after.json()["data"][0]["id"] > first.json()["data"][0]["id"]
        assert after.json()["meta"]["indexed_head"] == int(after.headers["X-Indexed-Head"])
        assert client.get("/events", params=NEWEST).headers["X-Cache"] == "hit"  # asked for before

        # Not kept: errors, answers that depend on the clock, HEAD.
        assert [client.get("/jobs/999999").headers["X-Cache"] for _ in range(3)] == ["miss"] * 3
        for path in ("/status", "/ready", "/health"):
            assert "X-Cache" not in client.get(path).headers, path
        assert "X-Cache" not in client.head("/events", params=NEWEST).headers


def test_the_cache_can_be_turned_off(tmp_path: Path, indexed_sqlite: str) -> None:
    with TestClient(create_app(api_settings(indexed_sqlite, api_cache_mb=0))) as client:
        answers = [client.get("/events", params=NEWEST) for _ in range(2)]
        assert all(a.status_code == 200 and "X-Cache" not in a.headers for a in answers)
        assert client.app.state.cache is None  # type: ignore[attr-defined]


def test_least_recently_used_answers_go_first_within_the_memory_bound(indexed_sqlite: str) -> None:
    engine = make_engine(indexed_sqlite)
    cache = ResponseCache(engine, Reader(engine, inline=True), max_bytes=64_000)  # bodies up to 1,000 bytes
    try:

        def entry(n: int) -> _Entry:
            return _Entry(7, {"type": "http.response.start", "status": 200}, b"x" * n, Freshness())

        for i in range(10):
            cache.put((f"/jobs/{i}", b""), entry(80))
        assert cache.get(("/jobs/0", b""), 7) is not None  # used: now the most recent
        assert cache.get(("/jobs/0", b""), 8) is None  # another version: not given
        cache.put(("/jobs/big", b""), entry(cache.max_entry + 1))  # too large to keep
        assert cache.get(("/jobs/big", b""), 7) is None
        for i in range(10, 60):  # 60 entries of 1,087 or 1,088 bytes (body, key, overhead): 65,270
            cache.put((f"/jobs/{i}", b""), entry(80))
        gone = {i for i in range(60) if cache.get((f"/jobs/{i}", b""), 7) is None}
        assert gone == {1, 2}  # the least recently used went first (0 was used after them)
        assert cache.max_bytes - 1100 < cache.size <= cache.max_bytes  # full, and no more than full
    finally:
        cache.close()
        engine.dispose()
