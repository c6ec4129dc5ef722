"""`/stream`: Server-Sent Events of new events and reorg notices, resumable with Last-Event-ID."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.feed import FeedReader
from api.freshness import FreshnessCache
from api.routes import resource_router
from api.validation import MAX_INT64

router = resource_router("stream")

#: Reconnection delay suggested to EventSource clients (milliseconds).
RETRY_MS = 3_000
#: ASGI scope key set by the HEAD middleware: answer the headers only.
HEAD_SCOPE_KEY = "ascendnet.head"


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    summary="Live events (Server-Sent Events)",
    responses={
        200: {
            "description": (
                "An endless `text/event-stream`. It opens with `event: open` (`{after}`: the position it "
                "follows from). `event: log` messages carry an `Event` (as in /events) as JSON data; "
                "`event: reorg` messages carry `{ancestor, depth, orphaned: [...]}` for logs a reorg "
                "removed. The `id` of log and reorg messages is their store position. Comments keep "
                "idle connections alive."
            ),
        }
    },
)
async def stream(
    request: Request,
    last_event_id: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=MAX_INT64,
            description="Resume after this position (browsers send it when they reconnect).",
        ),
    ] = None,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_INT64,
            description="Resume after this position (for clients that cannot set headers).",
        ),
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    """New events as they are indexed, and a notice for every log a reorg removes, in store
    order. Without a position it starts at the present; with `Last-Event-ID` (or `after`) it
    first replays everything after that position, then follows."""
    if request.scope.get(HEAD_SCOPE_KEY):
        return
    settings = request.app.state.settings
    cache: FreshnessCache = request.app.state.freshness
    reader: FeedReader = request.app.state.feed
    start = last_event_id if last_event_id is not None else after
    if start is None:
        fresh = await cache.get(max_age=0)
        start = 0 if fresh is None else fresh.position
    cursor = start
    # No id: a reconnecting browser keeps the id of the last real event it saw.
    yield ServerSentEvent(event="open", data={"after": cursor}, retry=RETRY_MS)
    idle_since = time.monotonic()
    while not await request.is_disconnected():
        fresh = await cache.get(max_age=settings.api_stream_poll)
        if fresh is not None and fresh.position > cursor:
            items = await anyio.to_thread.run_sync(reader.read, cursor, fresh.position)
            for item in items:
                yield ServerSentEvent(data=item.data, event=item.kind, id=str(item.id))
                cursor = item.id
            if items:
                idle_since = time.monotonic()
                continue
            cursor = fresh.position
        if time.monotonic() - idle_since >= settings.api_stream_keepalive:
            yield ServerSentEvent(comment="keep-alive")
            idle_since = time.monotonic()
        await anyio.sleep(settings.api_stream_poll)
