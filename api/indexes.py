"""Indexes the API's queries need that the indexer's schema does not have yet.

The read models and their migrations belong to the indexer; the API opens the database
read-only and cannot create anything. Until a migration adds these (see `MIGRATION`), list
queries filtered on them sort in memory: `/jobs?status=open&limit=50` over a million jobs reads
every open job to return fifty. `bench/api_load.py` creates them on its own database
(`create_missing`) and reports figures with and without.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine


@dataclass(frozen=True, slots=True)
class WantedIndex:
    name: str
    table: str
    columns: tuple[str, ...]
    why: str

    def ddl(self) -> str:
        return f"CREATE INDEX IF NOT EXISTS {self.name} ON {self.table} ({', '.join(self.columns)})"


WANTED: tuple[WantedIndex, ...] = (
    WantedIndex(
        "ix_jobs_state_job_id", "jobs", ("state", "job_id"), "/jobs?status=..., newest posted first (keyset)"
    ),
    WantedIndex(
        "ix_jobs_client_job_id", "jobs", ("client", "job_id"), "/jobs?client=..., /accounts/{a} recent jobs"
    ),
    WantedIndex(
        "ix_jobs_provider_job_id",
        "jobs",
        ("provider", "job_id"),
        "/jobs?provider=..., /accounts/{a} recent jobs",
    ),
)

#: The Alembic revision that would add them (for the indexer's migrations, once they settle).
MIGRATION = "\n".join(f'    op.create_index("{w.name}", "{w.table}", {list(w.columns)!r})' for w in WANTED)


def missing(engine: Engine) -> list[WantedIndex]:
    """The wanted indexes the database does not have."""
    inspector = sa.inspect(engine)
    have = {ix["name"] for w in {w.table for w in WANTED} for ix in inspector.get_indexes(w)}
    return [w for w in WANTED if w.name not in have]


def create_missing(engine: Engine) -> list[str]:
    """Create the wanted indexes on a database the caller owns (benchmarks); returns their names."""
    made = missing(engine)
    with engine.begin() as conn:
        for wanted in made:
            conn.exec_driver_sql(wanted.ddl())
    return [w.name for w in made]
