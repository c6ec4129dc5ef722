"""Prompt metadata: the documents prompt NFTs name by CID, as the indexer resolved them.

One row per metadata CID (indexer/metadata.py): resolved (title, description), invalid, or
unavailable with the time of the next attempt. Not chain-derived state: no digest covers it and
a rebuild keeps it (docs/INDEXER.md).

Self-contained on purpose: it must not change when indexer/models.py does.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prompt_metadata",
        sa.Column("metadata_cid", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("schema_version", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("content_hash", sa.String(length=66), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("metadata_cid", name=op.f("pk_prompt_metadata")),
    )
    op.create_index(
        "ix_prompt_metadata_next_attempt_at", "prompt_metadata", ["next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_prompt_metadata_next_attempt_at", table_name="prompt_metadata")
    op.drop_table("prompt_metadata")
