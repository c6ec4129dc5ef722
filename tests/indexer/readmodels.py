"""Helpers to index blocks and read the read-model tables back, for the indexer suites."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from indexer.domain import LogIndexed
from indexer.projection import Projector
from indexer.store import BlockRef, EventStore

#: The database backends every indexer suite runs on.
BACKENDS = ["sqlite", "postgresql"]
Blocks = list[tuple[BlockRef, list[Any]]]


def index(engine: sa.Engine, chain_id: int, blocks: Blocks, *, batch_events: int = 5_000) -> Projector:
    """Append `blocks` to the store and fold everything into the read models."""
    EventStore(engine, chain_id).append_blocks(blocks)
    projector = Projector(engine, chain_id, batch_events=batch_events)
    projector.run()
    return projector


def rows(engine: sa.Engine, table: str, order_by: str | None = None, **where: Any) -> list[dict[str, Any]]:
    """A read-model table's rows as dicts (through the models, so amounts are ints)."""
    from indexer import models

    t = models.metadata.tables[table]
    q = sa.select(t)
    for k, v in where.items():
        q = q.where(t.c[k] == v)
    if order_by:
        q = q.order_by(*(t.c[c] for c in order_by.split(",")))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def one(engine: sa.Engine, table: str, **where: Any) -> dict[str, Any]:
    found = rows(engine, table, **where)
    assert len(found) == 1, f"{table} {where}: {len(found)} rows"
    return found[0]


def store_events(engine: sa.Engine, chain_id: int) -> list[Any]:
    return [e for _, e in EventStore(engine, chain_id).events(0, 1_000_000)]


def indexed(engine: sa.Engine, chain_id: int) -> list[LogIndexed]:
    return [e for e in store_events(engine, chain_id) if isinstance(e, LogIndexed)]
