"""The application factory: CORS allow-list, and JSON answers even for unexpected failures."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import api_settings

pytestmark = pytest.mark.anvil
APP_ORIGIN = "https://app.example.org"


def test_cors_allows_only_the_listed_origins(indexed_sqlite: str) -> None:
    app = create_app(api_settings(indexed_sqlite, api_cors_origins=[APP_ORIGIN]))
    with TestClient(app) as client:
        allowed = client.get("/jobs", headers={"Origin": APP_ORIGIN})
        assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
        exposed = {h.strip().lower() for h in allowed.headers["access-control-expose-headers"].split(",")}
        assert {"x-indexed-head", "x-finalized-block", "retry-after"} <= exposed
        other = client.get("/jobs", headers={"Origin": "https://evil.example"})
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
        preflight = client.options(
            "/stream",
            headers={
                "Origin": APP_ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Last-Event-ID",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "POST" not in preflight.headers["access-control-allow-methods"]
        # No allow-list: no CORS headers at all.
    with TestClient(create_app(api_settings(indexed_sqlite))) as client:
        assert (
            "access-control-allow-origin" not in client.get("/jobs", headers={"Origin": APP_ORIGIN}).headers
        )


def test_an_unexpected_failure_still_answers_json(
    indexed_sqlite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.routes.jobs as jobs

    def broken(*_args: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(jobs, "job_detail", broken)
    with TestClient(create_app(api_settings(indexed_sqlite)), raise_server_exceptions=False) as client:
        response = client.get("/jobs/1")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "The server failed to answer; the error was logged.",
        "problems": [],
    }
