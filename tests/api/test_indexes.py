"""The indexes the API's queries rely on (api/indexes.py) are the indexer's: its models declare
them and its migrations create them, on both backends. And the listings that filter on one
column read their page in order from an index rather than sorting every match."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.indexes import WANTED, missing
from indexer import db, models

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'indexer.sqlite3'}"
    else:
        url = str(request.getfixturevalue("pg_database"))
    engine = db.make_engine(url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


def test_the_models_declare_every_wanted_index() -> None:
    declared = {
        (ix.name, tuple(c.name for c in ix.columns))
        for t in models.metadata.tables.values()
        for ix in t.indexes
    }
    assert [w for w in WANTED if (w.name, w.columns) not in declared] == []


def test_the_migrations_create_every_wanted_index(engine: sa.Engine) -> None:
    assert missing(engine) == []


def _plan(conn: sa.Connection, sql: str) -> str:
    if conn.dialect.name == "sqlite":
        return " / ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # an empty table: ask for the index
    return " / ".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ("SELECT * FROM jobs WHERE state = 'open' ORDER BY job_id DESC LIMIT 51", "ix_jobs_state_job_id"),
        ("SELECT * FROM jobs WHERE client = '0xab' ORDER BY job_id DESC LIMIT 10", "ix_jobs_client_job_id"),
        (
            "SELECT * FROM jobs WHERE provider = '0xab' ORDER BY job_id DESC LIMIT 10",
            "ix_jobs_provider_job_id",
        ),
        (
            "SELECT * FROM licences WHERE buyer = '0xab' ORDER BY license_id DESC LIMIT 51",
            "ix_licences_buyer_license_id",
        ),
    ],
)
def test_a_filtered_listing_reads_its_page_in_index_order(engine: sa.Engine, sql: str, index: str) -> None:
    with engine.connect() as conn, conn.begin():
        plan = _plan(conn, sql)
    assert index in plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
