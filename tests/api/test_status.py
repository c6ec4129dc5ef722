"""/status, /health, /ready, and the freshness every response carries."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from indexer.db import make_engine
from indexer.status import read_status
from tests.api.conftest import Api, api_settings
from tests.indexer.harness import prepared_engine

pytestmark = pytest.mark.anvil


def _status(url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    try:
        return read_status(engine)
    finally:
        engine.dispose()


def test_status_is_the_indexers(api: Api) -> None:
    expected = _status(api.url)
    assert expected is not None
    status = api.ok("/status")["data"]
    assert status["started"] is True
    for name in (
        "chain_id",
        "indexed_head",
        "indexed_head_hash",
        "finalized_block",
        "node_head",
        "lag",
        "read_models_block",
        "caught_up",
        "reorg_count",
    ):
        assert status[name] == getattr(expected, name), name
    assert status["last_reorg"] is None and status["updated_at"]


def test_every_response_says_which_block_it_reflects(api: Api) -> None:
    expected = _status(api.url)
    assert expected is not None and expected.read_models_block is not None
    head = str(expected.read_models_block)
    final = str(min(expected.finalized_block or 0, expected.read_models_block))
    for method, path in [
        ("GET", "/jobs"),
        ("GET", "/jobs/1"),
        ("GET", "/status"),
        ("GET", "/health"),
        ("GET", "/jobs/999999"),  # 404
        ("GET", "/jobs?limit=0"),  # 422
        ("GET", "/no/such/path"),  # 404
        ("POST", "/jobs"),  # 405
        ("HEAD", "/prompts"),
        ("GET", "/openapi.json"),
    ]:
        response = api.client.request(method, path)
        assert response.headers["X-Indexed-Head"] == head, (method, path)
        assert response.headers["X-Finalized-Block"] == final, (method, path)
    meta = api.ok("/jobs")["meta"]
    assert meta == {
        "chain_id": api.history.chain_id,
        "indexed_head": int(head),
        "finalized_block": int(final),
    }


def test_health_and_ready(api: Api) -> None:
    assert api.ok("/health") == {"status": "ok"}
    ready = api.ok("/ready")
    assert ready["ready"] is True and ready["reason"] is None and ready["lag"] == 0


def test_not_ready_when_the_indexer_went_quiet(indexed_sqlite: str) -> None:
    app = create_app(api_settings(indexed_sqlite, api_ready_max_age=0.001))
    with TestClient(app) as client:
        response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["ready"] is False and "last reported" in response.json()["reason"]


def test_not_ready_before_the_indexer_reports(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    prepared_engine(url).dispose()
    with TestClient(create_app(api_settings(url))) as client:
        ready = client.get("/ready")
        status = client.get("/status")
        jobs = client.get("/jobs")
    assert ready.status_code == 503 and ready.json()["reason"] == "the indexer has not reported yet"
    assert status.json()["data"]["started"] is False
    assert jobs.status_code == 200 and jobs.json()["data"] == []
    assert jobs.headers["X-Indexed-Head"] == "" and jobs.json()["meta"]["indexed_head"] is None


def test_a_missing_database_answers_503_not_500(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.sqlite3'}"
    with TestClient(create_app(api_settings(url)), raise_server_exceptions=False) as client:
        assert client.get("/health").status_code == 200
        response = client.get("/jobs")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    body = response.json()
    assert body["error"] == "database_unavailable" and "ascendnet indexer run" in body["message"]
    assert not (tmp_path / "absent.sqlite3").exists()


def test_answers_without_data_never_wait_for_a_freshness_refresh(indexed_sqlite: str) -> None:
    """`/health`, errors and the document carry the cached freshness: once it is older than
    `max_age` they get it at once and ONE refresh runs in the background (a refresh awaited
    under load stalled every such answer in flight)."""
    import asyncio
    import threading

    from api.freshness import Freshness, FreshnessCache

    engine = make_engine(indexed_sqlite)
    cache = FreshnessCache(engine, max_age=0.01)
    release, reads = threading.Event(), []
    real_read = cache._read

    def slow_read() -> Freshness:
        reads.append(1)
        assert release.wait(30)
        return Freshness(indexed_head=10**9)

    async def scenario() -> None:
        first = await cache.latest()  # nothing cached yet: this one waits for a read
        assert first is not None and first == real_read()
        cache._read = slow_read  # type: ignore[method-assign]
        await asyncio.sleep(0.02)  # now older than max_age
        for _ in range(10):
            assert await asyncio.wait_for(cache.latest(), 1.0) == first  # no waiting on the refresh
            await asyncio.sleep(0)
        for _ in range(3000):  # the refresh's thread may take a while to start on a busy machine
            if reads:
                break
            await asyncio.sleep(0.01)
        for _ in range(10):  # while it reads, answers still come at once
            assert await asyncio.wait_for(cache.latest(), 1.0) == first
        assert reads == [1]  # one refresh, not one per request
        release.set()
        for _ in range(500):
            await asyncio.sleep(0.01)
            if cache.peek() != first:
                break
        assert (await cache.latest()).indexed_head == 10**9  # type: ignore[union-attr]

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        engine.dispose()
