"""Fixtures of the API suites: read models filled by the real indexer from real transactions.

One deployment on the session's anvil is driven through every flow of both contracts
(tests/indexer/history.py: jobs with bids, results, disputes, failures; mints, listings,
sales, licences, ratings; withdrawals). The indexer's own runner indexes it over RPC into a
SQLite file and into a PostgreSQL database, once per session; every route suite runs against
both through the `api` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from chain.anvil import Anvil
from tests.indexer.backends import history  # noqa: F401 - fixture
from tests.indexer.harness import index_once
from tests.indexer.harness import pg_database as fresh_pg_database
from tests.indexer.history import History

BACKENDS = ["sqlite", "postgresql"]


def api_settings(url: str, **overrides: Any) -> ApiSettings:
    """Local settings over `url`; no rate limit unless asked (the suites make many requests)."""
    values: dict[str, Any] = {"database_url": url, "api_rate_limit": 0, **overrides}
    return ApiSettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Api:
    """A test client of the API over one backend's read models of the history."""

    backend: str
    url: str
    client: TestClient
    history: History

    def get(self, path: str, **params: Any) -> httpx.Response:
        given = {k: v for k, v in params.items() if v is not None}
        return self.client.get(path, params=given or None)

    def ok(self, path: str, **params: Any) -> Any:
        """The JSON body of a 200 answer."""
        response = self.get(path, **params)
        assert response.status_code == 200, f"{path} {params}: {response.status_code} {response.text}"
        return response.json()

    def all(self, path: str, **params: Any) -> list[Any]:
        """Every item of a listing, following cursors page by page."""
        items: list[Any] = []
        cursor = None
        while True:
            body = self.ok(path, **params, cursor=cursor)
            items.extend(body["data"])
            cursor = body["next_cursor"]
            if cursor is None:
                return items

    def who(self, name: str) -> str:
        return self.history.who[name]


@pytest.fixture(scope="session")
def indexed_sqlite(history: History, anvil: Anvil, tmp_path_factory: pytest.TempPathFactory) -> str:  # noqa: F811
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'indexer.sqlite3'}"
    index_once(url, history.protocol.deployment, [anvil.rpc_url])
    return url


@pytest.fixture(scope="session")
def indexed_postgresql(history: History, anvil: Anvil) -> Iterator[str]:  # noqa: F811
    with fresh_pg_database() as url:
        index_once(url, history.protocol.deployment, [anvil.rpc_url])
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def api(request: pytest.FixtureRequest, history: History) -> Iterator[Api]:  # noqa: F811
    url: str = request.getfixturevalue(f"indexed_{request.param}")
    app = create_app(api_settings(url))
    with TestClient(app) as client:
        yield Api(backend=request.param, url=url, client=client, history=history)


@pytest.fixture()
def sqlite_api(indexed_sqlite: str, history: History) -> Iterator[Api]:  # noqa: F811
    """The SQLite backend only (for tests about the API itself, not the data)."""
    app = create_app(api_settings(indexed_sqlite))
    with TestClient(app) as client:
        yield Api(backend="sqlite", url=indexed_sqlite, client=client, history=history)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
