"""The API's database session cannot write, on SQLite (mode=ro URI) and PostgreSQL (read-only
transactions)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from api.deps import ReadSession
from indexer.db import make_engine
from tests.api.conftest import Api

pytestmark = pytest.mark.anvil

WRITES = [
    "UPDATE jobs SET state = 'completed'",
    "DELETE FROM events",
    "INSERT INTO store_meta (key, value) VALUES ('owner', 'mallory')",
    "CREATE TABLE sneaky (x INTEGER)",
]


@pytest.mark.parametrize("statement", WRITES)
def test_a_write_through_the_apis_session_fails(api: Api, statement: str) -> None:
    app = api.client.app
    request = SimpleNamespace(app=app, state=SimpleNamespace())
    session = ReadSession(app.state.reader, request)  # type: ignore[arg-type]
    with pytest.raises(sa.exc.DBAPIError) as failure:
        asyncio.run(session.read(lambda conn: conn.execute(sa.text(statement))))
    assert "read" in str(failure.value).lower()  # "readonly database" / "read-only transaction"
    # The session read the freshness, in the same transaction, before the write failed.
    assert asyncio.run(session.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar())) == 1
    assert request.state.freshness.indexed_head is not None
    writer = make_engine(api.url)
    try:
        with writer.connect() as check:
            assert check.execute(sa.text("SELECT count(*) FROM jobs WHERE state = 'open'")).scalar() == 2
            assert check.execute(sa.text("SELECT count(*) FROM events")).scalar() == len(api.history.events)
    finally:
        writer.dispose()


def test_the_engine_is_read_only_by_url_or_by_session(api: Api) -> None:
    engine = api.client.app.state.engine
    if api.backend == "sqlite":
        assert engine.url.query["mode"] == "ro" and engine.url.database.startswith("file:")
    else:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW transaction_read_only")).scalar() == "on"
            assert conn.execute(sa.text("SHOW transaction_isolation")).scalar() == "repeatable read"
