"""Alembic migrations create exactly the schema the models declare, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from indexer import db, models
from indexer.store import EventStore, stored_events
from tests.indexer.readmodels import BACKENDS
from tests.indexer.synthetic import CHAIN_ID, simple_chain


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'indexer.sqlite3'}"
    return str(request.getfixturevalue("pg_database"))


def _head() -> str:
    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    assert head is not None
    return head


def test_upgrade_creates_the_schema_the_models_declare(url: str) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    assert db.current_revision(engine) == _head()

    def compare_type(
        context: Any, inspected: Any, metadata: Any, inspected_type: Any, metadata_type: Any
    ) -> bool | None:
        # SQLite reflects the library's BINARY(16) UUID column by affinity, as NUMERIC(16).
        if engine.dialect.name == "sqlite" and metadata.name == "originator_id":
            return str(inspected_type) != "NUMERIC(16)"
        return None  # alembic's own comparison

    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": compare_type}), models.metadata
        )
    assert diff == []
    engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_removes_everything(url: str) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    EventStore(engine, CHAIN_ID).append_blocks(simple_chain().blocks)
    db.upgrade(engine)  # nothing to do; data untouched
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(stored_events)).scalar() > 0
    db.downgrade(engine, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    db.upgrade(engine)
    assert db.current_revision(engine) == _head()
    engine.dispose()


def test_the_store_tables_are_the_eventsourcing_librarys(url: str) -> None:
    """The migration creates the library's stored_events table as its recorder defines it."""
    engine = db.make_engine(url)
    db.upgrade(engine)
    inspector = sa.inspect(engine)
    columns = {c["name"] for c in inspector.get_columns("stored_events")}
    assert columns == {"id", "originator_id", "originator_version", "topic", "state"}
    unique = [i for i in inspector.get_indexes("stored_events") if i["unique"]]
    assert [i["column_names"] for i in unique] == [["originator_id", "originator_version"]]
    assert {c["name"] for c in inspector.get_columns("projection_tracking")} == {
        "application_name",
        "notification_id",
    }
    engine.dispose()


def test_0002_swaps_the_listing_indexes_and_keeps_the_rows(url: str) -> None:
    """0001 -> 0002 replaces each single-column filter index of jobs and licences by one that
    also holds the id (what the API's keyset listings read in order); the rows stay; a
    downgrade restores the single-column ones."""
    engine = db.make_engine(url)
    db.upgrade(engine, "0001")

    def names(table: str) -> set[str]:
        return {ix["name"] for ix in sa.inspect(engine).get_indexes(table)}

    assert {"ix_jobs_state", "ix_licences_buyer"} <= names("jobs") | names("licences")
    EventStore(engine, CHAIN_ID).append_blocks(simple_chain().blocks)
    db.upgrade(engine)
    assert names("jobs") == {"ix_jobs_client_job_id", "ix_jobs_provider_job_id", "ix_jobs_state_job_id"}
    assert names("licences") == {
        "ix_licences_token_id_license_id",
        "ix_licences_buyer_license_id",
        "ix_licences_seller_license_id",
        "ix_licences_state_license_id",
    }
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(stored_events)).scalar() > 0
    db.downgrade(engine, "0001")
    assert names("jobs") == {"ix_jobs_client", "ix_jobs_provider", "ix_jobs_state"}
    engine.dispose()
