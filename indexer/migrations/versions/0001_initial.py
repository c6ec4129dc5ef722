"""Initial schema: the event store (the eventsourcing library's stored_events and tracking
tables, block refs, reorgs) and the read models.

Self-contained on purpose: it must not change when indexer/models.py does.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

#: indexer.models.Uint256: exact NUMERIC on PostgreSQL, zero-padded decimal text on SQLite.
UINT256 = sa.String(length=78).with_variant(sa.Numeric(78, 0), "postgresql")
#: sqlalchemy_utils' UUIDType, which the eventsourcing library's tables use.
UUID = sa.BINARY(length=16).with_variant(postgresql.UUID(), "postgresql")


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "asset_allowances",
        sa.Column("contract", sa.Text(), nullable=False),
        sa.Column("asset", sa.String(length=42), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contract", "asset", name=op.f("pk_asset_allowances")),
    )
    op.create_table(
        "bids",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(length=42), nullable=False),
        sa.Column("price", UINT256, nullable=False),
        sa.Column("placed_count", sa.BigInteger(), nullable=False),
        sa.Column("first_placed_at", sa.BigInteger(), nullable=False),
        sa.Column("placed_at", sa.BigInteger(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "provider", name=op.f("pk_bids")),
    )
    with op.batch_alter_table("bids", schema=None) as batch_op:
        batch_op.create_index("ix_bids_provider", ["provider"], unique=False)

    op.create_table(
        "block_digests",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("rows_changed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", name=op.f("pk_block_digests")),
    )
    op.create_table(
        "contract_state",
        sa.Column("contract", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("treasury", sa.String(length=42), nullable=True),
        sa.Column("params", sa.Text(), nullable=True),
        sa.Column("accept_window", sa.BigInteger(), nullable=True),
        sa.Column("delivery_window", sa.BigInteger(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contract", name=op.f("pk_contract_state")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("orphaned", sa.Boolean(), nullable=False),
        sa.Column("orphaned_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_block_number_log_index", ["block_number", "log_index"], unique=False)
        batch_op.create_index("ix_events_contract_event", ["contract", "event"], unique=False)
        batch_op.create_index("ix_events_tx_hash", ["tx_hash"], unique=False)

    op.create_table(
        "fees_daily",
        sa.Column("asset", sa.String(length=42), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("amount", UINT256, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("asset", "day", name=op.f("pk_fees_daily")),
    )
    op.create_table(
        "indexer_status",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("indexed_head", sa.BigInteger(), nullable=True),
        sa.Column("indexed_head_hash", sa.String(length=66), nullable=True),
        sa.Column("finalized_block", sa.BigInteger(), nullable=True),
        sa.Column("node_head", sa.BigInteger(), nullable=True),
        sa.Column("lag", sa.BigInteger(), nullable=True),
        sa.Column("events_per_second", sa.Float(), nullable=False),
        sa.Column("reorg_count", sa.BigInteger(), nullable=False),
        sa.Column("last_reorg_block", sa.BigInteger(), nullable=True),
        sa.Column("last_reorg_depth", sa.BigInteger(), nullable=True),
        sa.Column("last_reorg_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indexer_status")),
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("client", sa.String(length=42), nullable=False),
        sa.Column("asset", sa.String(length=42), nullable=False),
        sa.Column("max_amount", UINT256, nullable=False),
        sa.Column("amount", UINT256, nullable=False),
        sa.Column("spec_hash", sa.String(length=66), nullable=False),
        sa.Column("spec_cid", sa.Text(), nullable=False),
        sa.Column("bid_deadline", sa.BigInteger(), nullable=False),
        sa.Column("accept_deadline", sa.BigInteger(), nullable=True),
        sa.Column("execution_timeout", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("posted_at", sa.BigInteger(), nullable=False),
        sa.Column("bid_count", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(length=42), nullable=True),
        sa.Column("price", UINT256, nullable=True),
        sa.Column("execution_deadline", sa.BigInteger(), nullable=True),
        sa.Column("result_hash", sa.String(length=66), nullable=True),
        sa.Column("result_cid", sa.Text(), nullable=True),
        sa.Column("challenge_end", sa.BigInteger(), nullable=True),
        sa.Column("dispute_reason_cid", sa.Text(), nullable=True),
        sa.Column("dispute_deadline", sa.BigInteger(), nullable=True),
        sa.Column("arbiter", sa.String(length=42), nullable=True),
        sa.Column("provider_bps", sa.BigInteger(), nullable=True),
        sa.Column("provider_payout", UINT256, nullable=True),
        sa.Column("fee", UINT256, nullable=True),
        sa.Column("client_refund", UINT256, nullable=False),
        sa.Column("slashed", UINT256, nullable=False),
        sa.Column("completed_by_client", sa.Boolean(), nullable=True),
        sa.Column("settled_at", sa.BigInteger(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_client", ["client"], unique=False)
        batch_op.create_index("ix_jobs_provider", ["provider"], unique=False)
        batch_op.create_index("ix_jobs_state", ["state"], unique=False)

    op.create_table(
        "licences",
        sa.Column("license_id", sa.BigInteger(), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("buyer", sa.String(length=42), nullable=False),
        sa.Column("seller", sa.String(length=42), nullable=False),
        sa.Column("asset", sa.String(length=42), nullable=False),
        sa.Column("price", UINT256, nullable=False),
        sa.Column("delivery_deadline", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rated", sa.Boolean(), nullable=False),
        sa.Column("encrypted_key", sa.LargeBinary(), nullable=True),
        sa.Column("seller_proceeds", UINT256, nullable=True),
        sa.Column("fee", UINT256, nullable=True),
        sa.Column("refund", UINT256, nullable=True),
        sa.Column("purchased_at", sa.BigInteger(), nullable=False),
        sa.Column("settled_at", sa.BigInteger(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("license_id", name=op.f("pk_licences")),
    )
    with op.batch_alter_table("licences", schema=None) as batch_op:
        batch_op.create_index("ix_licences_buyer", ["buyer"], unique=False)
        batch_op.create_index("ix_licences_seller", ["seller"], unique=False)
        batch_op.create_index("ix_licences_state", ["state"], unique=False)
        batch_op.create_index("ix_licences_token_id", ["token_id"], unique=False)

    op.create_table(
        "listings",
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("seller", sa.String(length=42), nullable=False),
        sa.Column("asset", sa.String(length=42), nullable=False),
        sa.Column("price", UINT256, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("listed_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("buyer", sa.String(length=42), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_id", "seq", name=op.f("pk_listings")),
    )
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.create_index("ix_listings_seller", ["seller"], unique=False)
        batch_op.create_index("ix_listings_state", ["state"], unique=False)

    op.create_table(
        "owed",
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("asset", sa.String(length=42), nullable=False),
        sa.Column("contract", sa.Text(), nullable=False),
        sa.Column("owed", UINT256, nullable=False),
        sa.Column("credited_total", UINT256, nullable=False),
        sa.Column("withdrawn_total", UINT256, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", "asset", "contract", name=op.f("pk_owed")),
    )
    op.create_table(
        "projection_tracking",
        sa.Column("application_name", sa.String(length=32), nullable=False),
        sa.Column("notification_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("application_name", name=op.f("pk_projection_tracking")),
    )
    op.create_table(
        "prompts",
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("creator", sa.String(length=42), nullable=True),
        sa.Column("metadata_cid", sa.Text(), nullable=True),
        sa.Column("content_hash", sa.String(length=66), nullable=True),
        sa.Column("royalty_bps", sa.BigInteger(), nullable=True),
        sa.Column("minted_at", sa.BigInteger(), nullable=True),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("listing_seq", sa.BigInteger(), nullable=False),
        sa.Column("list_asset", sa.String(length=42), nullable=True),
        sa.Column("list_price", UINT256, nullable=True),
        sa.Column("licence_asset", sa.String(length=42), nullable=True),
        sa.Column("licence_price", UINT256, nullable=True),
        sa.Column("licences_sold", sa.BigInteger(), nullable=False),
        sa.Column("sales_count", sa.BigInteger(), nullable=False),
        sa.Column("rating_count", sa.BigInteger(), nullable=False),
        sa.Column("rating_sum", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_prompts")),
    )
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.create_index("ix_prompts_creator", ["creator"], unique=False)
        batch_op.create_index("ix_prompts_owner", ["owner"], unique=False)

    op.create_table(
        "provider_earnings",
        sa.Column("provider", sa.String(length=42), nullable=False),
        sa.Column("asset", sa.String(length=42), nullable=False),
        sa.Column("amount", UINT256, nullable=False),
        sa.Column("jobs", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "asset", name=op.f("pk_provider_earnings")),
    )
    op.create_table(
        "providers",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stake", UINT256, nullable=False),
        sa.Column("metadata_cid", sa.Text(), nullable=False),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.Column("unbonding_at", sa.BigInteger(), nullable=True),
        sa.Column("active_jobs", sa.BigInteger(), nullable=False),
        sa.Column("slashed_total", UINT256, nullable=False),
        sa.Column("jobs_done", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.BigInteger(), nullable=False),
        sa.Column("disputes", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_providers")),
    )
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.create_index("ix_providers_status", ["status"], unique=False)

    op.create_table(
        "ratings",
        sa.Column("license_id", sa.BigInteger(), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("rater", sa.String(length=42), nullable=False),
        sa.Column("score", sa.BigInteger(), nullable=False),
        sa.Column("review_cid", sa.Text(), nullable=False),
        sa.Column("rated_at", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("license_id", name=op.f("pk_ratings")),
    )
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.create_index("ix_ratings_rater", ["rater"], unique=False)
        batch_op.create_index("ix_ratings_token_id", ["token_id"], unique=False)

    op.create_table(
        "results",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(length=42), nullable=False),
        sa.Column("result_hash", sa.String(length=66), nullable=False),
        sa.Column("result_cid", sa.Text(), nullable=False),
        sa.Column("challenge_end", sa.BigInteger(), nullable=False),
        sa.Column("submitted_at", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_results")),
    )
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.create_index("ix_results_provider", ["provider"], unique=False)

    op.create_table(
        "role_members",
        sa.Column("contract", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=66), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contract", "role", "account", name=op.f("pk_role_members")),
    )
    op.create_table(
        "sales",
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("listing_seq", sa.BigInteger(), nullable=False),
        sa.Column("seller", sa.String(length=42), nullable=False),
        sa.Column("buyer", sa.String(length=42), nullable=False),
        sa.Column("asset", sa.String(length=42), nullable=False),
        sa.Column("price", UINT256, nullable=False),
        sa.Column("fee", UINT256, nullable=False),
        sa.Column("royalty", UINT256, nullable=False),
        sa.Column("royalty_receiver", sa.String(length=42), nullable=False),
        sa.Column("seller_proceeds", UINT256, nullable=False),
        sa.Column("sold_at", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_sales")),
    )
    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.create_index("ix_sales_buyer", ["buyer"], unique=False)
        batch_op.create_index("ix_sales_seller", ["seller"], unique=False)
        batch_op.create_index("ix_sales_token_id", ["token_id"], unique=False)

    op.create_table(
        "store_blocks",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("parent_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("canonical", sa.Boolean(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("notifications_after", sa.BigInteger(), nullable=False),
        sa.Column("orphaned_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("chain_id", "number", "hash", name=op.f("pk_store_blocks")),
    )
    with op.batch_alter_table("store_blocks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_store_blocks_canonical_number", ["chain_id", "canonical", "number"], unique=False
        )

    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_store_meta")),
    )
    op.create_table(
        "store_reorgs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("ancestor", sa.BigInteger(), nullable=False),
        sa.Column("depth", sa.BigInteger(), nullable=False),
        sa.Column("old_head", sa.BigInteger(), nullable=True),
        sa.Column("blocks_orphaned", sa.BigInteger(), nullable=False),
        sa.Column("events_orphaned", sa.BigInteger(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_reorgs")),
    )
    op.create_table(
        "stored_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("originator_id", UUID, nullable=False),
        sa.Column("originator_version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_events")),
    )
    with op.batch_alter_table("stored_events", schema=None) as batch_op:
        batch_op.create_index(
            "stored_events_aggregate_idx", ["originator_id", "originator_version"], unique=True
        )

    op.create_table(
        "undo_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tbl", sa.String(length=32), nullable=False),
        sa.Column("row_key", sa.Text(), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_undo_log")),
    )
    with op.batch_alter_table("undo_log", schema=None) as batch_op:
        batch_op.create_index("ix_undo_log_block_number", ["block_number"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("undo_log", schema=None) as batch_op:
        batch_op.drop_index("ix_undo_log_block_number")

    op.drop_table("undo_log")
    with op.batch_alter_table("stored_events", schema=None) as batch_op:
        batch_op.drop_index("stored_events_aggregate_idx")

    op.drop_table("stored_events")
    op.drop_table("store_reorgs")
    op.drop_table("store_meta")
    with op.batch_alter_table("store_blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_store_blocks_canonical_number")

    op.drop_table("store_blocks")
    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_token_id")
        batch_op.drop_index("ix_sales_seller")
        batch_op.drop_index("ix_sales_buyer")

    op.drop_table("sales")
    op.drop_table("role_members")
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_index("ix_results_provider")

    op.drop_table("results")
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_index("ix_ratings_token_id")
        batch_op.drop_index("ix_ratings_rater")

    op.drop_table("ratings")
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.drop_index("ix_providers_status")

    op.drop_table("providers")
    op.drop_table("provider_earnings")
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.drop_index("ix_prompts_owner")
        batch_op.drop_index("ix_prompts_creator")

    op.drop_table("prompts")
    op.drop_table("projection_tracking")
    op.drop_table("owed")
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.drop_index("ix_listings_state")
        batch_op.drop_index("ix_listings_seller")

    op.drop_table("listings")
    with op.batch_alter_table("licences", schema=None) as batch_op:
        batch_op.drop_index("ix_licences_token_id")
        batch_op.drop_index("ix_licences_state")
        batch_op.drop_index("ix_licences_seller")
        batch_op.drop_index("ix_licences_buyer")

    op.drop_table("licences")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_state")
        batch_op.drop_index("ix_jobs_provider")
        batch_op.drop_index("ix_jobs_client")

    op.drop_table("jobs")
    op.drop_table("indexer_status")
    op.drop_table("fees_daily")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_tx_hash")
        batch_op.drop_index("ix_events_contract_event")
        batch_op.drop_index("ix_events_block_number_log_index")

    op.drop_table("events")
    op.drop_table("contract_state")
    op.drop_table("block_digests")
    with op.batch_alter_table("bids", schema=None) as batch_op:
        batch_op.drop_index("ix_bids_provider")

    op.drop_table("bids")
    op.drop_table("asset_allowances")
