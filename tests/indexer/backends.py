"""Database fixtures for the store/projection/rebuild suites: the same test classes run on a
SQLite file and on a fresh PostgreSQL database (tests/conftest.py's `pg_database`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from indexer import db
from tests.indexer.readmodels import BACKENDS


@pytest.fixture(scope="session")
def history(w3: Any, senders: list[Any], dev_keys: list[Any]) -> Any:
    """One deployment on the session's anvil, driven through every flow of both contracts
    (tests/indexer/history.py), shared by the suites that index it."""
    from chain.contracts import Protocol
    from chain.deploy import DeployOptions, ProtocolParams, deploy
    from tests.indexer.history import drive

    deployment = deploy(
        w3,
        senders[0],
        DeployOptions(treasury=dev_keys[9].address, params=ProtocolParams.local(), with_test_token=True),
    )
    return drive(Protocol.load(w3, deployment), senders)


@pytest.fixture(scope="module")
def pg_module_database() -> Iterator[str]:
    """One fresh PostgreSQL database per test module (like tests/conftest.py's `pg_database`,
    which makes one per test): creating a database costs ~1-2 s, so `engine` empties this one
    between tests instead."""
    from tests.conftest import temp_pg_database

    with temp_pg_database() as url:
        yield url


def _empty(eng: sa.Engine) -> None:
    from indexer import models

    names = ", ".join(f'"{t.name}"' for t in models.metadata.sorted_tables)
    with eng.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A migrated, empty indexer database on each backend: a new SQLite file, or the module's
    PostgreSQL database emptied."""
    if request.param == "sqlite":
        eng = db.make_engine(f"sqlite:///{tmp_path / 'indexer.sqlite3'}")
        db.upgrade(eng)
    else:
        eng = db.make_engine(request.getfixturevalue("pg_module_database"))
        db.upgrade(eng)
        _empty(eng)
    yield eng
    eng.dispose()


@pytest.fixture()
def scratch(tmp_path: Path) -> Callable[[str], sa.Engine]:
    """Makes more migrated SQLite databases in the test's tmp dir (clean indexes, rebuilds)."""
    made: list[sa.Engine] = []

    def make(name: str) -> sa.Engine:
        eng = db.make_engine(f"sqlite:///{tmp_path / (name + '.sqlite3')}")
        db.upgrade(eng)
        made.append(eng)
        return eng

    yield make  # type: ignore[misc]
    for eng in made:
        eng.dispose()
