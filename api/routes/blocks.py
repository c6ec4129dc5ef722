"""Per-block state digests, for comparing replicas, and each block's events."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Path

from api.deps import SessionDep
from api.errors import NotFound
from api.freshness import read_freshness
from api.pagination import MAX_LIMIT
from api.routes import resource_router
from api.routes.events import IncludeReorged, event_out
from api.schemas import Block, Item, not_found
from api.validation import MAX_INT64
from indexer import models
from indexer.digest import GENESIS
from indexer.store import store_blocks

router = resource_router("audit")
D = models.block_digests
E = models.events


@router.get(
    "/blocks/{number}",
    response_model=Item[Block],
    summary="A block's digest and events",
    responses=not_found("The read models do not reach that block yet."),
)
async def get_block(
    session: SessionDep,
    number: Annotated[int, Path(ge=0, le=MAX_INT64, description="Block number.", examples=[1])],
    include_reorged: IncludeReorged = False,
) -> dict[str, Any]:
    """The chained state digest of the read models after `number` (equal on two replicas that
    folded the same chain: `ascendnet indexer verify` compares them) and the block's events.

    Blocks without events of ours carry the digest of the last block before them that had
    some (`digest_block`).
    """
    return {"data": await session.read(block, number, include_reorged), "meta": session.meta()}


def block(conn: sa.Connection, number: int, include_reorged: bool) -> dict[str, Any]:
    fresh = read_freshness(conn)
    if fresh.indexed_head is None or number > fresh.indexed_head:
        raise NotFound(
            "Block",
            number,
            f"The read models reach block {fresh.indexed_head}; ask again once the indexer has passed it.",
        )
    digest = conn.execute(
        sa.select(D).where(D.c.block_number <= number).order_by(D.c.block_number.desc()).limit(1)
    ).first()
    block_hash = digest.block_hash if digest is not None and digest.block_number == number else None
    if block_hash is None:
        block_hash = conn.execute(
            sa.select(store_blocks.c.hash).where(
                store_blocks.c.number == number, store_blocks.c.canonical.is_(True)
            )
        ).scalar()
    where = [E.c.block_number == number]
    if not include_reorged:
        where.append(E.c.orphaned.is_(False))
    events = conn.execute(
        sa.select(E).where(*where).order_by(E.c.log_index, E.c.id).limit(MAX_LIMIT + 1)
    ).all()
    count = len(events)
    if count > MAX_LIMIT:
        count = int(conn.execute(sa.select(sa.func.count()).select_from(E).where(*where)).scalar_one())
    data = {
        "number": number,
        "hash": block_hash,
        "digest": GENESIS if digest is None else digest.digest,
        "digest_block": None if digest is None else digest.block_number,
        "event_count": count,
        "events": [event_out(e) for e in events[:MAX_LIMIT]],
        "events_truncated": count > MAX_LIMIT,
    }
    return data
