"""The OpenAPI document: Schemathesis with every check finds nothing, the document is complete,
and docs/API_SPEC.md is generated from it (and not stale)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from api.main import create_app
from api.openapi_doc import document, render
from tests.api.conftest import BACKENDS, api_settings, repo_root

pytestmark = pytest.mark.anvil

#: Bounded so the whole run stays well under a minute; the seed makes failures reproducible.
CONFIG = {
    "seed": 20261124,
    "generation": {"max-examples": 12},
    "phases": {"stateful": {"enabled": False}},
    # The stream never ends: read its first message, then stop.
    "operations": [{"include-path": "/stream", "max-stream-events": 1, "request-timeout": 3}],
}


@pytest.fixture(scope="module", params=BACKENDS)
def app(request: pytest.FixtureRequest) -> FastAPI:
    url: str = request.getfixturevalue(f"indexed_{request.param}")
    # The indexed history is static: readiness must not expire with the status row's age.
    return create_app(api_settings(url, api_stream_poll=0.05, api_ready_max_age=0))


def _issued_cursors_only(ctx: Any, case: Any) -> Any:
    """Cursors are issued by the server: a random string that fits the pattern is not a valid
    cursor (and is rightly refused with a 422), so positive cases use a real one or none."""
    query = case.query or {}
    meta = case.meta
    if "cursor" in query and meta is not None and meta.generation.mode.is_positive:
        del query["cursor"]
    return case


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> Any:
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app, config=SchemathesisConfig.from_dict(CONFIG))
    loaded.hook("map_case")(_issued_cursors_only)
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=12)
def test_schemathesis_finds_nothing(case: Any) -> None:
    case.call_and_validate()


def test_every_operation_is_documented_with_examples() -> None:
    doc = document()
    for path, item in doc["paths"].items():
        assert set(item) == {"get"}, path
        operation = item["get"]
        assert operation.get("summary") and operation.get("description"), path
        assert {"200", "422", "429", "503"} <= set(operation["responses"]), path
        for code, response in operation["responses"].items():
            assert {"X-Indexed-Head", "X-Finalized-Block"} <= set(response["headers"]), (path, code)
    schemas = doc["components"]["schemas"]
    for name in (
        "Prompt",
        "Listing",
        "Sale",
        "Licence",
        "Rating",
        "JobSummary",
        "Provider",
        "Event",
        "Status",
        "ErrorBody",
    ):
        assert schemas[name].get("examples"), name


def test_a_cursor_from_a_page_is_accepted_where_it_came_from(app: FastAPI) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        cursor = client.get("/events", params={"limit": 1}).json()["next_cursor"]
        assert client.get("/events", params={"limit": 1, "cursor": cursor}).status_code == 200
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        assert doc["l"] == "events"


def test_api_spec_is_generated_from_the_document_and_current() -> None:
    spec = repo_root() / "docs" / "API_SPEC.md"
    assert spec.read_text() == render(document()), (
        "docs/API_SPEC.md is stale: run `python -m api.openapi_doc > docs/API_SPEC.md`"
    )
    # The command in the message is the one that makes it.
    made = subprocess.run(
        [sys.executable, "-m", "api.openapi_doc"], cwd=repo_root(), capture_output=True, text=True, check=True
    )
    assert made.stdout == spec.read_text()
