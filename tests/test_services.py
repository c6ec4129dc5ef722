"""The integration services are installed and reachable: under CI=true these fail, not skip,
when an install or start step is broken."""

from __future__ import annotations

import sqlalchemy as sa


def test_dockerd_answers(docker_client) -> None:  # type: ignore[no-untyped-def]
    assert docker_client.ping() is True
    assert docker_client.version()["ApiVersion"]


def test_postgresql_accepts_connections(pg_database: str) -> None:
    engine = sa.create_engine(pg_database)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1 + 1")).scalar() == 2
    engine.dispose()
