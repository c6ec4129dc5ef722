"""Indexes the API's queries rely on, beyond each table's primary key.

The indexer owns the schema: these come from its models and migrations (0002 made each filter
column of jobs and licences lead an index that also holds the id, so a filtered listing reads
its page in order instead of sorting every match). The API opens the database read-only and
cannot create anything; `missing` says what a database lacks (tests/api/test_indexes.py checks
the migrations provide them all; bench/api_load.py refuses to measure without them).
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


WANTED: tuple[WantedIndex, ...] = (
    WantedIndex("ix_jobs_state_job_id", "jobs", ("state", "job_id"), "/jobs?status=..., newest posted first"),
    WantedIndex("ix_jobs_client_job_id", "jobs", ("client", "job_id"), "/jobs?client=..., /accounts/{a}"),
    WantedIndex(
        "ix_jobs_provider_job_id", "jobs", ("provider", "job_id"), "/jobs?provider=..., /accounts/{a}"
    ),
    WantedIndex("ix_bids_provider", "bids", ("provider",), "/accounts/{a} bids placed"),
    WantedIndex(
        "ix_licences_buyer_license_id",
        "licences",
        ("buyer", "license_id"),
        "/licences?buyer=..., /accounts/{a}",
    ),
    WantedIndex(
        "ix_licences_seller_license_id",
        "licences",
        ("seller", "license_id"),
        "/licences?seller=..., /accounts/{a}",
    ),
    WantedIndex(
        "ix_licences_token_id_license_id", "licences", ("token_id", "license_id"), "/licences?token_id="
    ),
    WantedIndex("ix_licences_state_license_id", "licences", ("state", "license_id"), "/licences?state=..."),
    WantedIndex("ix_prompts_creator", "prompts", ("creator",), "/prompts?creator=..., /accounts/{a}"),
    WantedIndex("ix_prompts_owner", "prompts", ("owner",), "/prompts?owner=..., /accounts/{a}"),
    WantedIndex(
        "ix_events_block_number_log_index",
        "events",
        ("block_number", "log_index"),
        "/events?from_block..to_block",
    ),
    WantedIndex("ix_events_tx_hash", "events", ("tx_hash",), "/events?tx_hash=..."),
    WantedIndex(
        "ix_events_contract_event", "events", ("contract", "event"), "/events?contract=&event=, histories"
    ),
)


def missing(engine: Engine) -> list[WantedIndex]:
    """The wanted indexes the database lacks (by name and columns)."""
    inspector = sa.inspect(engine)
    have: set[tuple[str | None, tuple[str | None, ...]]] = set()
    for table in {w.table for w in WANTED}:
        have |= {(ix["name"], tuple(ix["column_names"])) for ix in inspector.get_indexes(table)}
    return [w for w in WANTED if (w.name, w.columns) not in have]
