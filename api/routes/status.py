"""Operations: the indexer's status, liveness and readiness probes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from api.deps import SessionDep, SettingsDep
from api.routes import resource_router
from api.schemas import Health, Item, Ready, Status
from indexer.status import IndexerStatus, read_status

router = resource_router("operations")


def _status_out(status: IndexerStatus | None) -> dict[str, Any]:
    if status is None:
        return {
            "started": False,
            "chain_id": None,
            "indexed_head": None,
            "indexed_head_hash": None,
            "finalized_block": None,
            "node_head": None,
            "lag": None,
            "events_per_second": None,
            "read_models_block": None,
            "caught_up": None,
            "reorg_count": None,
            "last_reorg": None,
            "updated_at": None,
        }
    return {
        "started": True,
        "chain_id": status.chain_id,
        "indexed_head": status.indexed_head,
        "indexed_head_hash": status.indexed_head_hash,
        "finalized_block": status.finalized_block,
        "node_head": status.node_head,
        "lag": status.lag,
        "events_per_second": status.events_per_second,
        "read_models_block": status.read_models_block,
        "caught_up": status.caught_up,
        "reorg_count": status.reorg_count,
        "last_reorg": (
            None
            if status.reorg_count == 0
            else {
                "block": status.last_reorg_block,
                "depth": status.last_reorg_depth,
                "at": status.last_reorg_at,
            }
        ),
        "updated_at": status.updated_at,
    }


@router.get("/status", response_model=Item[Status], summary="Indexer status")
async def get_status(request: Request, session: SessionDep) -> dict[str, Any]:
    """How far the indexer is: indexed head, finalized block, the node's head and the lag,
    events per second, whether the read models caught up, and the last reorg."""
    engine = request.app.state.engine
    status = await session.read(lambda _conn: read_status(engine))
    return {"data": _status_out(status), "meta": session.meta()}


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> dict[str, Any]:
    """200 while the process serves requests; it does not touch the database."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=Ready,
    summary="Readiness",
    responses={503: {"model": Ready, "description": "Not ready: the reason says why."}},
)
async def ready(request: Request, settings: SettingsDep, session: SessionDep) -> Any:
    """200 when the read models are within `ASCENDNET_API_READY_LAG` blocks of the node's head,
    include every stored event and were updated recently; 503 with the reason otherwise."""
    engine = request.app.state.engine
    status = await session.read(lambda _conn: read_status(engine))
    reason: str | None = None
    if status is None:
        reason = "the indexer has not reported yet"
    elif status.lag is None or status.lag > settings.api_ready_lag:
        reason = f"the indexer is {status.lag} blocks behind the node (at most {settings.api_ready_lag})"
    elif not status.caught_up:
        reason = "the read models have not folded every stored event yet"
    elif settings.api_ready_max_age > 0:
        age = (datetime.now(UTC) - status.updated_at).total_seconds()
        if age > settings.api_ready_max_age:
            reason = f"the indexer last reported {age:.0f} s ago (at most {settings.api_ready_max_age:.0f} s)"
    body = Ready(
        ready=reason is None,
        reason=reason,
        lag=None if status is None else status.lag,
        max_lag=settings.api_ready_lag,
        read_models_block=None if status is None else status.read_models_block,
    )
    if reason is None:
        return body
    return JSONResponse(body.model_dump(), status_code=503)
