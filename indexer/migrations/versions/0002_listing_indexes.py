"""Listing indexes: each filter column of jobs and licences followed by the table's id.

The API pages its listings by id (keyset). With an index on the filter column alone, a page of
`/jobs?status=open` sorts every open job to return fifty; with (state, job_id) it reads fifty
index entries in order. Each composite index replaces the single-column one it extends (that
one serves no query the new one does not), so the indexer maintains no more indexes than before.

Self-contained on purpose: it must not change when indexer/models.py does.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table -> (id column, the filter columns whose index gains it)
_EXTENDED: dict[str, tuple[str, tuple[str, ...]]] = {
    "jobs": ("job_id", ("client", "provider", "state")),
    "licences": ("license_id", ("token_id", "buyer", "seller", "state")),
}


def upgrade() -> None:
    for table, (key, columns) in _EXTENDED.items():
        for column in columns:
            op.drop_index(f"ix_{table}_{column}", table_name=table)
            op.create_index(f"ix_{table}_{column}_{key}", table, [column, key], unique=False)


def downgrade() -> None:
    for table, (key, columns) in _EXTENDED.items():
        for column in columns:
            op.drop_index(f"ix_{table}_{column}_{key}", table_name=table)
            op.create_index(f"ix_{table}_{column}", table, [column], unique=False)
