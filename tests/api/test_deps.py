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


def test_key_lookups_run_on_the_generic_plan_and_filters_on_their_own(indexed_postgresql: str) -> None:
    """PostgreSQL: a `Prepared(generic=True)` statement runs with the one generic plan (the
    server kept re-planning each execution otherwise); any other with the default, `auto`. A
    rolled-back transaction undoes the setting, and the next statement makes it again."""
    from api.deps import Reader, make_api_engine
    from api.freshness import read_freshness
    from api.prepared import Prepared
    from api.routes.jobs import JOB
    from tests.api.conftest import api_settings

    engine = make_api_engine(api_settings(indexed_postgresql))
    reader = Reader(engine, inline=True)
    plain = Prepared(sa.select(sa.literal(1).label("one")))

    def mode(conn: sa.Connection) -> str:
        return str(conn.exec_driver_sql("SHOW plan_cache_mode").scalar())

    def after(statement: Prepared, **params: object):  # type: ignore[no-untyped-def]
        return lambda conn: (statement.tuples(conn, **params), mode(conn))[1]

    try:
        assert reader.run_one(after(JOB, job_id=1), (), {}) == "force_generic_plan"
        assert reader.run_one(after(plain), (), {}) == "auto"
        assert reader.run_one(after(JOB, job_id=1), (), {}) == "force_generic_plan"
        # In a transaction (`Reader.run`) that fails after the setting: it is undone with it.
        with pytest.raises(sa.exc.DBAPIError):
            reader.run(lambda conn: (JOB.tuples(conn, job_id=1), conn.exec_driver_sql("SELECT 1/0")), (), {})
        _fresh, seen = reader.run(lambda conn: (read_freshness(conn), mode(conn))[1], (), {})
        assert seen == "force_generic_plan"  # the freshness statement set it again
        _fresh, seen = reader.run(after(plain), (), {})
        assert seen == "auto"

        # A job state is written into a statement of its own, each on its generic plan.
        from api.pagination import PageParams
        from api.routes.jobs import _ORDERS, JOBS

        def state_page(state: str):  # type: ignore[no-untyped-def]
            values = {"status": state, "client": None, "provider": None}
            order, first = _ORDERS["posted_desc"], PageParams(5, None)
            return lambda conn: (JOBS.page(conn, order, first, values), mode(conn))

        for state in ("open", "disputed", "open"):
            (_fresh, (rows, _cursor)), seen = reader.run_one(state_page(state), (), {})
            assert seen == "force_generic_plan"
            assert {r["state"] for r in rows} <= {state} and (rows or state != "open")
        written = {shape[1] for shape in JOBS._statements if shape[0] == ("status",)}
        assert {(("status", "open"),), (("status", "disputed"),)} <= written
    finally:
        reader.close()
        engine.dispose()


def test_a_written_value_is_quoted_as_sql_text() -> None:
    from api.pagination import _sql_text

    rendered = str(_sql_text("it's").compile(compile_kwargs={"literal_binds": True}))
    assert rendered == "'it''s'"
    with pytest.raises(TypeError):
        _sql_text(1)  # type: ignore[arg-type]
