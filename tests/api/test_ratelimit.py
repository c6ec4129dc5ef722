"""Per-client rate limiting: 429 with Retry-After once a client's bucket is empty."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.ratelimit import TokenBuckets
from tests.api.conftest import api_settings

pytestmark = pytest.mark.anvil


def test_a_client_past_its_burst_gets_429_with_retry_after(indexed_sqlite: str) -> None:
    app = create_app(api_settings(indexed_sqlite, api_rate_limit=0.5, api_rate_burst=3))
    with TestClient(app) as client:
        assert [client.get("/jobs").status_code for _ in range(3)] == [200, 200, 200]
        limited = client.get("/jobs/1")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "2"  # one token back at 0.5/s
        body = limited.json()
        assert body["error"] == "rate_limited" and "Retry after 2 s" in body["message"]
        assert limited.headers["X-Indexed-Head"]  # freshness on every answer, this one too
        # Probes are never limited.
        assert client.get("/health").status_code == 200 and client.get("/ready").status_code != 429
    # Another client has its own bucket.
    with TestClient(app, client=("10.0.0.2", 50000)) as other:
        assert other.get("/jobs").status_code == 200


def test_buckets_refill_at_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=2, max_clients=2, clock=lambda: now[0])
    assert [buckets.take("a"), buckets.take("a")] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("b") == 0.0 and buckets.take("c") == 0.0
    # Bounded: "a" (least recently seen) was forgotten and starts again with a full bucket.
    assert "a" not in buckets._buckets and len(buckets._buckets) == 2
