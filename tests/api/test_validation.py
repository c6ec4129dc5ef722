"""Bad input of every kind gets a 422 naming the parameter; unknown ids 404; only GET/HEAD."""

from __future__ import annotations

import base64
import json

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.anvil

GOOD = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _cursor(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "location", "reason"),
    [
        ("/jobs?client=0x1234", "query.client", "not an address"),
        ("/jobs?client=70997970C51812dc3A010C7d01b50e0d17dc79C8", "query.client", "not an address"),
        (f"/jobs?client={GOOD}00", "query.client", "not an address"),
        ("/jobs?provider=0xZZ997970C51812dc3A010C7d01b50e0d17dc79C8", "query.provider", "not an address"),
        ("/providers/0xnothex", "path.address", "not an address"),
        ("/accounts/alice", "path.address", "not an address"),
        ("/events?tx_hash=0x1234", "query.tx_hash", "not a 32-byte hash"),
        ("/events?tx_hash=" + "0x" + "g" * 64, "query.tx_hash", "not a 32-byte hash"),
        ("/jobs?limit=0", "query.limit", "greater than or equal to 1"),
        ("/jobs?limit=501", "query.limit", "less than or equal to 500"),
        ("/jobs?limit=ten", "query.limit", "valid integer"),
        ("/jobs?limit=-5", "query.limit", "greater than or equal to 1"),
        ("/jobs?cursor=!!!", "query.cursor", "String should match pattern"),
        ("/jobs?cursor=abc", "query.cursor", "not a cursor this API issued"),
        (
            "/jobs?cursor=" + _cursor({"l": "prompts", "s": "newest", "k": [1]}),
            "query.cursor",
            "not a cursor of jobs",
        ),
        (
            "/jobs?cursor=" + _cursor({"l": "jobs", "s": "posted_asc", "k": [1]}),
            "query.cursor",
            "sort='posted_asc'",
        ),
        ("/jobs?cursor=" + _cursor({"l": "jobs", "s": "posted_desc", "k": ["x"]}), "query.cursor", "damaged"),
        (
            "/jobs?cursor=" + _cursor({"l": "jobs", "s": "posted_desc", "k": [1, 2]}),
            "query.cursor",
            "damaged",
        ),
        (
            "/jobs?cursor=" + _cursor({"l": "jobs", "s": "posted_desc", "k": [2**70]}),
            "query.cursor",
            "damaged",
        ),
        ("/jobs?cursor=" + _cursor([1]), "query.cursor", "not a cursor of jobs"),
        ("/jobs?status=finished", "query.status", "Input should be"),
        ("/jobs?min_price=-1", "query.min_price", "not an amount"),
        ("/jobs?min_price=1e18", "query.min_price", "not an amount"),
        ("/jobs?max_price=" + "9" * 78, "query.max_price", "not an amount"),
        ("/jobs?sort=price", "query.sort", "Input should be"),
        ("/jobs/0", "path.job_id", "greater than or equal to 1"),
        ("/jobs/abc", "path.job_id", "valid integer"),
        (f"/jobs/{2**63}", "path.job_id", "less than or equal to"),
        ("/prompts/1.5", "path.token_id", "valid integer"),
        ("/prompts?min_rating=6", "query.min_rating", "less than or equal to 5"),
        ("/prompts?min_rating=nan", "query.min_rating", ""),
        ("/prompts?listed=maybe", "query.listed", "valid boolean"),
        ("/prompts?q=", "query.q", "at least 1 character"),
        ("/prompts?q=" + "a" * 101, "query.q", "at most 100 characters"),
        ("/prompts?q=%00", "query.q", "text without control characters"),
        ("/events?from_block=-1", "query.from_block", "greater than or equal to 0"),
        ("/events?contract=Token", "query.contract", "Input should be"),
        ("/events?event=Drained", "query.event", "Input should be"),
        ("/blocks/-1", "path.number", "greater than or equal to 0"),
        ("/fees?period=month", "query.period", "Input should be"),
        ("/fees?from_day=2026-13-01", "query.from_day", "valid date"),
        ("/jobs?foo=1", "query.foo", "unknown query parameter; this endpoint takes: asset, client, cursor"),
        ("/health?verbose=1", "query.verbose", "unknown query parameter; this endpoint takes: none"),
        ("/jobs?limit=1&limit=2", "query.limit", "given more than once"),
    ],
)
def test_bad_input_is_422_with_a_clear_message(
    sqlite_api: Api, path: str, location: str, reason: str
) -> None:
    response = sqlite_api.client.get(path)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert any(p["location"] == location and reason in p["reason"] for p in body["problems"]), body
    assert location in body["message"]


def test_stream_position_must_be_a_number(sqlite_api: Api) -> None:
    response = sqlite_api.client.get("/stream", headers={"Last-Event-ID": "soon"})
    assert (
        response.status_code == 422 and response.json()["problems"][0]["location"] == "header.Last-Event-ID"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/999999",
        "/jobs/999999/history",
        "/prompts/999999",
        "/prompts/999999/history",
        f"/providers/{GOOD.lower()}",
        "/no/such/endpoint",
    ],
)
def test_unknown_ids_are_404(sqlite_api: Api, path: str) -> None:
    response = sqlite_api.client.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/jobs", "/jobs/1", "/prompts", "/accounts/" + GOOD, "/stream"])
def test_only_get_and_head(sqlite_api: Api, method: str, path: str) -> None:
    response = sqlite_api.client.request(method, path, json={"state": "completed"})
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.json()["error"] == "method_not_allowed"


def test_head_answers_headers_without_a_body(sqlite_api: Api) -> None:
    get = sqlite_api.client.get("/jobs/1")
    head = sqlite_api.client.head("/jobs/1")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert sqlite_api.client.head("/jobs/999999").status_code == 404
    assert sqlite_api.client.head("/stream").status_code == 200


def test_addresses_are_answered_checksummed(sqlite_api: Api) -> None:
    lower = sqlite_api.ok(f"/accounts/{GOOD.lower()}")["data"]["address"]
    upper = sqlite_api.ok("/accounts/0x" + GOOD[2:].upper())["data"]["address"]
    assert lower == upper == GOOD
