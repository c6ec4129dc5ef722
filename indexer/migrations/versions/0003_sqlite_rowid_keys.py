"""SQLite: single integer primary keys become the table's rowid (`INTEGER PRIMARY KEY`).

SQLite treats only a column declared exactly INTEGER as the rowid. Declared BIGINT, the key of
`events`, `jobs`, `prompts`, `licences`, `ratings`, `results` and `block_digests` was an index
beside the table: one more B-tree written on every insert (a sixth of the raw event log's
insert cost) and walked on every lookup by id. PostgreSQL is unchanged.

SQLite cannot change a column's type in place: each table is copied into a new one (Alembic's
batch mode), its rows and indexes with it.

Self-contained on purpose: it must not change when indexer/models.py does.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table -> its integer primary key column
_KEYS: dict[str, str] = {
    "events": "id",
    "jobs": "job_id",
    "prompts": "token_id",
    "licences": "license_id",
    "ratings": "license_id",
    "results": "job_id",
    "block_digests": "block_number",
}


def _retype(to: sa.types.TypeEngine[int], was: sa.types.TypeEngine[int]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, key in _KEYS.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.alter_column(key, type_=to, existing_type=was, existing_nullable=False)


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())
