"""The fast response path (api/encoding.py, api/handler.py) answers exactly what FastAPI's own
path answers: the same JSON, shaped by the same response models."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.routing import APIRoute, request_response
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, TypeAdapter
from starlette.routing import Match

from api import encoding
from api.main import create_app
from api.routes import ApiRoute
from api.schemas import Amount, JobSummary
from tests.api.conftest import Api, api_settings

pytestmark = pytest.mark.anvil


class _Inner(BaseModel):
    flag: bool
    amount: Amount | None


class _Outer(BaseModel):
    n: int
    total: Amount
    items: list[_Inner]
    maybe: _Inner | None
    note: str = Field(default="none")
    args: dict[str, Any]


class TestDumper:
    def test_matches_pydantic_on_awkward_values(self) -> None:
        raw = {
            "n": 7,
            "total": "0" * 60 + "123456789012345678",  # SQLite's padded uint256
            "items": [{"flag": 1, "amount": Decimal("2") ** 200}, {"flag": 0, "amount": None}],
            "maybe": None,
            "args": {"x": [1, "two"], "big": str(2**255)},
        }
        expected = TypeAdapter(_Outer).dump_python(TypeAdapter(_Outer).validate_python(raw), mode="json")
        assert encoding.dumper(_Outer)(raw) == expected
        assert expected["total"] == "123456789012345678" and expected["note"] == "none"

    def test_zero_and_large_amounts(self) -> None:
        dump = encoding.dumper(_Inner)
        assert dump({"flag": True, "amount": "0" * 78})["amount"] == "0"
        assert dump({"flag": True, "amount": 2**256 - 1})["amount"] == str(2**256 - 1)

    def test_dates_are_left_to_pydantic(self) -> None:
        class Dated(BaseModel):
            day: date

        with pytest.raises(encoding.NotFast):
            encoding.dumper(Dated)

    def test_generated_code_keeps_field_order(self) -> None:
        fields = list(JobSummary.model_fields)
        row = {name: None for name in fields} | {
            "job_id": 1,
            "max_amount": 5,
            "amount": 5,
            "bid_count": 0,
            "posted_at": 1,
            "bid_deadline": 2,
            "last_change": {"block_number": 1, "tx_hash": "0x", "log_index": 0},
        }
        assert list(encoding.dumper(JobSummary)(row)) == fields


def _urls(api: Api) -> list[str]:
    account = api.who("client")
    provider = api.ok("/providers")["data"][0]["address"]
    return [
        "/jobs?limit=5",
        "/jobs?status=open&limit=50",
        "/jobs/1",
        "/jobs/1/history",
        f"/accounts/{account}",
        f"/accounts/{account.lower()}",
        "/events?limit=20",
        "/events?from_block=1&to_block=400&limit=50&order=desc",
        "/prompts?limit=5",
        "/prompts/1",
        "/prompts/1/history",
        "/listings",
        "/licences",
        "/sales",
        "/ratings",
        "/providers",
        f"/providers/{provider}",
        "/blocks/1",
        "/status",
        "/health",
        "/ready",
    ]


def test_fast_answers_validate_against_their_models(api: Api) -> None:
    """Every answer of the fast path is its response model's JSON: pydantic validates it and
    writes it back unchanged."""
    app = api.client.app
    fast = 0
    for url in _urls(api):
        response = api.client.get(url)
        assert response.status_code in (200, 503), (url, response.text)
        route = _route(app, url.split("?")[0])
        if response.status_code != 200 or route.response_model is None:
            continue
        adapter = TypeAdapter(route.response_model)
        body = response.json()
        assert adapter.dump_python(adapter.validate_json(response.content), mode="json") == body, url
        fast += isinstance(route, ApiRoute)
    assert fast >= 15


def test_fast_and_fastapi_paths_give_the_same_json(indexed_sqlite: str, sqlite_api: Api) -> None:
    """The same app with FastAPI's own handler and serialization gives equal JSON documents
    (one backend suffices: both paths read the same rows)."""
    api = sqlite_api
    plain = create_app(api_settings(indexed_sqlite))
    # NOTE: route objects are shared by every app made from the route modules: restore them.
    swapped = [(route, route.app) for route in plain.routes if isinstance(route, ApiRoute)]
    try:
        for route, _ in swapped:
            route.app = request_response(APIRoute.get_route_handler(route))
        with TestClient(plain) as slow:
            responses = [(url, slow.get(url)) for url in _urls(api)]
    finally:
        for route, app in swapped:
            route.app = app
    for url, theirs in responses:
        ours = api.client.get(url)
        assert ours.status_code == theirs.status_code, url
        if ours.status_code == 200:
            assert json.loads(ours.content) == json.loads(theirs.content), url


def _route(app: Any, path: str) -> APIRoute:
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    for route in app.routes:
        if isinstance(route, APIRoute) and route.matches(scope)[0] == Match.FULL:
            return route
    raise AssertionError(f"no route for {path}")
