"""The live feed behind `/stream`: new events and reorg notices in store order.

Positions are the event store's notification ids, one global order: a `LogIndexed` is a row of
the raw event log (`events.id`), a `LogOrphaned` (the compensating event of a reorg) is read
from the store itself, where it names the log it orphaned, the common ancestor and the depth.
Only positions the projector has folded are served (`Freshness.position`), so a client never
sees an event before the read models reflect it, and resuming after any position it saw
(Last-Event-ID) replays exactly what came after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from eventsourcing.utils import get_topic
from sqlalchemy.engine import Engine

from api.routes.events import event_out
from indexer import models
from indexer.domain import LogOrphaned, make_mapper
from indexer.store import recorder_for

E = models.events
ORPHANED_TOPIC = get_topic(LogOrphaned)


@dataclass
class FeedItem:
    """One SSE message: a new log, or a reorg notice covering consecutive orphaned logs."""

    id: int
    kind: Literal["log", "reorg"]
    data: dict[str, Any]
    #: For reorg notices: the ancestor and depth of the reorg they belong to.
    group: tuple[int, int] | None = None
    orphaned: list[dict[str, Any]] = field(default_factory=list)


class FeedReader:
    """Reads the feed after a position, in bounded batches (a thread-safe, blocking reader:
    call it from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.recorder = recorder_for(engine)
        self.mapper = make_mapper()

    def read(self, after: int, upto: int, limit: int = 500) -> list[FeedItem]:
        """Items with position in (after, upto], oldest first, at most about `limit`."""
        if upto <= after:
            return []
        with self.engine.connect() as conn:
            logs = conn.execute(
                sa.select(E).where(E.c.id > after, E.c.id <= upto).order_by(E.c.id).limit(limit)
            ).all()
            # NOTE: a full batch ends the window at its last log, so the orphan scan below
            # covers the same stretch of positions and never re-reads the whole store.
            stop = int(logs[-1].id) if len(logs) == limit else upto
            orphans = self.recorder.select_notifications_on(
                conn, after, limit, stop, topics=[ORPHANED_TOPIC], inclusive_of_start=False
            )
        if len(orphans) == limit:
            stop = min(stop, int(orphans[-1].id))
        merged: list[tuple[int, Any]] = [(int(r.id), r) for r in logs if int(r.id) <= stop]
        merged += [(int(n.id), n) for n in orphans if int(n.id) <= stop]
        merged.sort(key=lambda pair: pair[0])
        items: list[FeedItem] = []
        for position, value in merged:
            if isinstance(value, sa.Row):
                items.append(FeedItem(position, "log", event_out(value)))
                continue
            event = self.mapper.to_domain_event(value)
            assert isinstance(event, LogOrphaned)
            orphaned = {
                "block_number": event.block_number,
                "block_hash": event.block_hash,
                "tx_hash": event.tx_hash,
                "log_index": event.log_index,
                "contract": event.contract,
                "event": event.event,
            }
            group = (event.ancestor, event.depth)
            last = items[-1] if items else None
            if last is not None and last.kind == "reorg" and last.group == group:
                last.id = position
                last.orphaned.append(orphaned)
            else:
                items.append(FeedItem(position, "reorg", {}, group=group, orphaned=[orphaned]))
        for item in items:
            if item.kind == "reorg" and item.group is not None:
                item.data = {"ancestor": item.group[0], "depth": item.group[1], "orphaned": item.orphaned}
        return items
