"""The indexer's status row, which the API reads: how far it is, how far behind, what reorged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from indexer import models
from indexer.projection import tracked_position
from indexer.store import EventStore, store_blocks, stored_events

_ROW_ID = 1


@dataclass(frozen=True, slots=True)
class IndexerStatus:
    chain_id: int
    #: Highest block the event store holds (the cursor).
    indexed_head: int | None
    indexed_head_hash: str | None
    #: Blocks at or below it are final and never revisited.
    finalized_block: int | None
    #: The node's head when the status was written.
    node_head: int | None
    #: node_head - indexed_head.
    lag: int | None
    events_per_second: float
    reorg_count: int
    last_reorg_block: int | None
    last_reorg_depth: int | None
    last_reorg_at: datetime | None
    updated_at: datetime
    #: Store position (notification id) the read models include, and the store's latest.
    projected_position: int
    store_position: int
    #: The block the read models reflect: the indexed head once the projector has caught up
    #: with the store, else the last block it folded.
    read_models_block: int | None

    @property
    def caught_up(self) -> bool:
        return self.projected_position >= self.store_position


def write_status(
    engine: Engine,
    *,
    chain_id: int,
    indexed_head: int | None,
    finalized_block: int | None,
    node_head: int | None,
    events_per_second: float,
) -> None:
    """Record the runner's view of progress (one row, replaced); reorg figures come from the
    store, the head's hash from its canonical block ref."""
    store = EventStore(engine, chain_id)
    with engine.begin() as conn:
        count, last = store.reorg_stats(conn)
        head_hash = None
        if indexed_head is not None:
            b = store_blocks
            head_hash = conn.execute(
                sa.select(b.c.hash).where(
                    b.c.chain_id == chain_id, b.c.canonical.is_(True), b.c.number == indexed_head
                )
            ).scalar()
        values = {
            "chain_id": chain_id,
            "indexed_head": indexed_head,
            "indexed_head_hash": head_hash,
            "finalized_block": finalized_block,
            "node_head": node_head,
            "lag": None if node_head is None or indexed_head is None else max(node_head - indexed_head, 0),
            "events_per_second": float(events_per_second),
            "reorg_count": count,
            "last_reorg_block": None if last is None else int(last.ancestor) + 1,
            "last_reorg_depth": None if last is None else int(last.depth),
            "last_reorg_at": None if last is None else last.detected_at,
            "updated_at": datetime.now(UTC),
        }
        t = models.indexer_status
        updated = conn.execute(t.update().where(t.c.id == _ROW_ID).values(**values))
        if not updated.rowcount:
            conn.execute(t.insert().values(id=_ROW_ID, **values))


def read_status(engine: Engine) -> IndexerStatus | None:
    """The status row with live projector figures, or None before the runner first wrote it."""
    t = models.indexer_status
    with engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == _ROW_ID)).first()
        if row is None:
            return None
        projected = tracked_position(conn)
        latest = int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.max(stored_events.c.id), 0))).scalar_one()
        )
        last_folded = conn.execute(sa.select(sa.func.max(models.block_digests.c.block_number))).scalar()
    reflects = row.indexed_head if projected >= latest else last_folded
    return IndexerStatus(
        chain_id=int(row.chain_id),
        indexed_head=row.indexed_head,
        indexed_head_hash=row.indexed_head_hash,
        finalized_block=row.finalized_block,
        node_head=row.node_head,
        lag=row.lag,
        events_per_second=float(row.events_per_second),
        reorg_count=int(row.reorg_count),
        last_reorg_block=row.last_reorg_block,
        last_reorg_depth=row.last_reorg_depth,
        last_reorg_at=_utc(row.last_reorg_at),
        updated_at=_utc(row.updated_at) or datetime.now(UTC),
        projected_position=projected,
        store_position=latest,
        read_models_block=None if reflects is None else int(reflects),
    )


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time stored here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
