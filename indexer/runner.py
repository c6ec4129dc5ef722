"""`ascendnet indexer run`: backfill from the deploy block, then follow the head.

One step: reconcile reorgs, fetch a verified range of logs and headers, decode them, append the
blocks with their events in one transaction, fold the new events into the read models (the
projector commits each change with its tracking position), then write the status row. A crash
at any instant leaves a consistent store: the next run carries on from its head.

Once a step reaches the head, the runner also resolves a bounded batch of prompt metadata
documents (indexer/metadata.py) before it writes the status row, so an answer that reflects a
mint's block already shows the prompt's title when its document was at hand.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from sqlalchemy.engine import Engine

from ascendnet.log import get_logger
from chain import artifacts
from chain.decoder import LogDecoder
from chain.manifest import Deployment
from chain.provenance import ChainEvent
from indexer.errors import BlockConflict, IndexerError
from indexer.gctune import batch_gc
from indexer.metadata import MetadataResolver
from indexer.projection import DEFAULT_BATCH, Projector, prune_undo
from indexer.reorg import NodeBehind, Reconciler, Reorged
from indexer.rpc import FetchedRange, LogSource, RpcUnavailable
from indexer.status import read_status, write_status
from indexer.store import BlockRef, EventStore

log = get_logger("indexer.runner")

#: Seconds between plain progress log lines while backfilling (no TTY).
PROGRESS_LOG_EVERY = 5.0


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did."""

    start: int | None = None
    end: int | None = None
    events: int = 0
    projected: int = 0
    reorg: Reorged | None = None
    #: The node lags our head (or the chain moved under the fetch): nothing was appended.
    waiting: bool = False
    #: The node's chain ends below our head and contradicts none of it.
    node_behind: bool = False
    node_head: int = 0
    indexed_head: int | None = None


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A fetched range and its blocks with their decoded events, ready to append."""

    fetched: FetchedRange
    blocks: list[tuple[BlockRef, list[ChainEvent]]]


@dataclass(frozen=True, slots=True)
class RunSummary:
    blocks: int
    events: int
    reorgs: int
    seconds: float
    indexed_head: int | None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Rate:
    """Events per second over the last `window` seconds (or since the start, if shorter)."""

    window: float = 10.0
    started: float = field(default_factory=time.monotonic)
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, count: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.samples.append((now, count))
        while self.samples and now - self.samples[0][0] > self.window:
            self.samples.popleft()

    def per_second(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        since = max(now - self.window, self.started)
        span = now - since
        if span <= 0:
            return 0.0
        return sum(c for t, c in self.samples if t >= since) / span


class Indexer:
    """Indexes one deployment's logs into `engine` (event store, read models, status)."""

    def __init__(
        self,
        *,
        engine: Engine,
        deployment: Deployment,
        source: LogSource,
        store: EventStore | None = None,
        projector: Projector | None = None,
        poll_interval: float = 2.0,
        projector_batch_events: int | None = None,
        progress: bool | None = None,
        prefetch: bool | None = None,
        metadata: MetadataResolver | None = None,
    ) -> None:
        self.engine = engine
        #: Resolves prompt metadata documents once the runner follows the head (None: never).
        self.metadata = metadata
        self.deployment = deployment
        self.chain_id = deployment.chain_id
        self.source = source
        self.store = store if store is not None else EventStore(engine, deployment.chain_id)
        if projector is None:
            batch = projector_batch_events or DEFAULT_BATCH
            projector = Projector(engine, deployment.chain_id, batch_events=batch)
        self.projector = projector
        self.decoder = LogDecoder(
            {name: deployment.address(name) for name in artifacts.PROTOCOL_CONTRACTS}, deployment.chain_id
        )
        self.poll_interval = poll_interval
        self.progress = sys.stderr.isatty() if progress is None else progress
        # NOTE: fetching and decoding the next range in a thread while this one is stored pays
        # on PostgreSQL (the writer waits on the network, GIL released) but loses on SQLite,
        # where both sides are CPU-bound in Python and only contend for the GIL (measured with
        # bench/indexer_backfill.py). None picks by backend.
        self.prefetch = engine.dialect.name == "postgresql" if prefetch is None else prefetch
        self.reconciler = Reconciler(self.store, source)
        self._stop = threading.Event()
        self._rate = _Rate()
        self._node_head = 0
        self._node_finalized = -1
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: tuple[int, Future[_Loaded]] | None = None
        #: Undo entries below this block have been dropped (`_prune_undo`).
        self._pruned_below = -1
        status = read_status(engine)
        if status is not None and status.finalized_block is not None:
            # The finality floor survives restarts: blocks final before a crash stay final.
            self.reconciler.observe_finalized(min(status.finalized_block, self._stored_head_number()))

    # ------------------------------------------------------------------ control

    def request_stop(self) -> None:
        """Stop after the current step (signal-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, once: bool = False) -> RunSummary:
        """Backfill to the head, then follow it (or stop there with `once`)."""
        started = time.monotonic()
        events = blocks = 0
        reorgs_before = self.reconciler.reorgs
        first = self._stored_head_number()
        self._rate = _Rate()
        with self._signals(), self._executor(), batch_gc():
            target = self.source.head()
            log.info(
                "indexer_start",
                chain_id=self.chain_id,
                indexed_head=first if first >= 0 else None,
                node_head=target,
                deploy_block=self.deployment.deploy_block,
                once=once,
            )
            with _Progress(self, first, target) as progress:
                while not self.stopping:
                    try:
                        result = self.step(target if once else None)
                    except RpcUnavailable as exc:
                        if once:
                            raise
                        log.error("rpc_unavailable", error=str(exc))
                        self._stop.wait(self.poll_interval)
                        continue
                    events += result.events
                    if result.start is not None and result.end is not None:
                        blocks += result.end - result.start + 1
                    progress.update(result, target if once else result.node_head)
                    head = result.indexed_head
                    if (
                        once
                        and head is not None
                        and head >= target
                        and (result.node_behind or not result.waiting)
                    ):
                        break
                    if result.waiting or (not once and head is not None and head >= result.node_head):
                        self._stop.wait(self.poll_interval)
        summary = RunSummary(
            blocks=blocks,
            events=events,
            reorgs=self.reconciler.reorgs - reorgs_before,
            seconds=time.monotonic() - started,
            indexed_head=self._stored_head_number_or_none(),
        )
        log.info(
            "indexer_stop",
            indexed_head=summary.indexed_head,
            blocks=summary.blocks,
            events=summary.events,
            events_per_second=round(summary.events_per_second, 1),
            reorgs=summary.reorgs,
            seconds=round(summary.seconds, 2),
            stopped_by_signal=self.stopping,
        )
        return summary

    def step(self, target: int | None = None) -> StepResult:
        """One step toward `target` (default: the node's head)."""
        node_head = self.source.head()
        node_final = self.source.finalized(node_head)
        self._node_head, self._node_finalized = node_head, node_final

        outcome = self.reconciler.check()
        if isinstance(outcome, NodeBehind):
            self._discard_prefetch()
            return StepResult(
                waiting=True,
                node_behind=True,
                node_head=node_head,
                indexed_head=self._stored_head_number_or_none(),
            )
        if isinstance(outcome, Reorged):
            self._discard_prefetch()
            if self.metadata is not None:
                self.metadata.rescan()

        head = self.store.head()
        start = head.number + 1 if head is not None else self.deployment.deploy_block
        end = min(node_head, target if target is not None else node_head)
        if start > end:
            projected = self._project()
            self._prune_undo()
            self._resolve_metadata()
            self._write_status(head)
            return StepResult(
                projected=projected,
                reorg=outcome if isinstance(outcome, Reorged) else None,
                node_head=node_head,
                indexed_head=head.number if head else None,
            )

        loaded = self._fetch(start, end, node_final)
        fetched = loaded.fetched
        first = fetched.ref(start)
        if head is not None and first is not None and first.parent_hash != head.hash:
            self._discard_prefetch()
            if head.number <= self.reconciler.finalized:
                raise self.reconciler.too_deep(head.number, head.number)
            # The chain moved between the reorg check and the fetch: reconcile on the next step.
            log.info("chain_moved_during_fetch", block=start, indexed_head=head.number)
            return StepResult(waiting=True, node_head=node_head, indexed_head=head.number)
        if self.prefetch and fetched.end < end:
            self._prefetch(fetched.end + 1, end, node_final)

        blocks = loaded.blocks
        # NOTE: the range's last block is always among `blocks` (with or without logs), so this
        # one transaction also moves the cursor over an empty stretch (what set_cursor does).
        try:
            self.store.append_blocks(blocks)
        except BlockConflict as exc:
            # The chain moved between the reorg check and the fetch: reconcile on the next step.
            self._discard_prefetch()
            log.info("chain_moved_during_fetch", block=exc.number, reason=exc.reason)
            return StepResult(waiting=True, node_head=node_head, indexed_head=head.number if head else None)
        self.reconciler.observe_finalized(min(node_final, fetched.end))
        events = fetched.log_count
        self._rate.add(events)
        projected = self._project()
        self._prune_undo()
        if fetched.end >= end:
            self._resolve_metadata()
        self._write_status(fetched.end_ref)
        return StepResult(
            start=fetched.start,
            end=fetched.end,
            events=events,
            projected=projected,
            reorg=outcome if isinstance(outcome, Reorged) else None,
            node_head=node_head,
            indexed_head=fetched.end,
        )

    # ---------------------------------------------------------------- internals

    def _load(self, start: int, end: int, node_final: int) -> _Loaded:
        """Fetch and decode a range (in the prefetch thread while the previous one is stored)."""
        fetched = self.source.fetch(start, end, dense_from=node_final)
        return _Loaded(fetched, [(b.ref, self.decoder.decode_all(b.logs)) for b in fetched.blocks])

    def _fetch(self, start: int, end: int, node_final: int) -> _Loaded:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead_start, future = ahead
            if ahead_start == start:
                try:
                    loaded = future.result()
                except IndexerError:
                    loaded = None  # fetch again below, in this thread, with its own retries
                if loaded is not None and loaded.fetched.end <= end:
                    return loaded
            else:
                future.cancel()
        return self._load(start, end, node_final)

    def _prefetch(self, start: int, end: int, node_final: int) -> None:
        if self._pool is None:
            return
        self._ahead = (start, self._pool.submit(self._load, start, end, node_final))

    def _discard_prefetch(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead[1].cancel()

    def _project(self) -> int:
        return self.projector.run()

    def _resolve_metadata(self) -> None:
        """One bounded batch of prompt metadata (at the head only: a backfill folds first)."""
        if self.metadata is None:
            return
        try:
            self.metadata.run()
        except Exception as exc:  # noqa: BLE001
            # NOTE: off-chain documents are a side line of the indexer: a failure here (the
            # database busy, a bug) is logged and tried again next step, never a reason to stop
            # folding the chain. Bad documents never get here: they become rows.
            log.error("metadata_resolve_failed", error=f"{type(exc).__name__}: {exc}")

    def _prune_undo(self) -> None:
        """Drop the undo entries of blocks below the finalized block, once per new finalized
        block: a reorg never reaches them (one that would stops with ReorgTooDeep), so without
        this the undo log would grow with the chain."""
        finalized = self.reconciler.finalized
        if finalized > self._pruned_below:
            prune_undo(self.engine, finalized)
            self._pruned_below = finalized

    def _write_status(self, head: BlockRef | None) -> None:
        write_status(
            self.engine,
            chain_id=self.chain_id,
            indexed_head=head.number if head is not None else None,
            finalized_block=self.reconciler.finalized if self.reconciler.finalized >= 0 else None,
            node_head=self._node_head,
            events_per_second=self._rate.per_second(),
        )

    def _stored_head_number(self) -> int:
        head = self.store.head()
        return head.number if head is not None else -1

    def _stored_head_number_or_none(self) -> int | None:
        head = self.store.head()
        return head.number if head is not None else None

    @contextmanager
    def _executor(self) -> Iterator[None]:
        if not self.prefetch:
            yield
            return
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="indexer-prefetch")
        try:
            yield
        finally:
            self._discard_prefetch()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM finish the current step, then stop; a second SIGINT stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: FrameType | None) -> None:
            if self._stop.is_set() and signum == signal.SIGINT:
                raise KeyboardInterrupt
            log.info("indexer_stopping", signal=signal.Signals(signum).name)
            self.request_stop()

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


class _Progress:
    """A rich progress bar on a TTY while backfilling; plain structured log lines otherwise."""

    def __init__(self, indexer: Indexer, first: int, target: int) -> None:
        self.indexer = indexer
        self.first = max(first + 1, indexer.deployment.deploy_block)
        self.target = target
        self.bar: Any = None
        self.task: Any = None
        self.last_log = time.monotonic()

    def __enter__(self) -> _Progress:
        if self.indexer.progress and self.target - self.first > 0:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]backfill[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("blocks"),
                TextColumn("{task.fields[events]} events, {task.fields[rate]} ev/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=_console(),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("backfill", total=self.target - self.first + 1, events=0, rate="0")
        return self

    def update(self, result: StepResult, target: int) -> None:
        if result.indexed_head is None:
            return
        done = max(result.indexed_head - self.first + 1, 0)
        rate = self.indexer._rate.per_second()
        if self.bar is not None and self.task is not None:
            task = self.bar.tasks[0]
            self.bar.update(
                self.task,
                completed=min(done, task.total or done),
                events=int(task.fields["events"]) + result.events,
                rate=f"{rate:,.0f}",
            )
            if result.indexed_head >= self.target:
                self.bar.stop()
                self.bar = None
            return
        now = time.monotonic()
        if now - self.last_log >= PROGRESS_LOG_EVERY and result.indexed_head < target:
            self.last_log = now
            remaining = target - result.indexed_head
            log.info(
                "indexer_progress",
                indexed_head=result.indexed_head,
                node_head=target,
                remaining_blocks=remaining,
                events_per_second=round(rate, 1),
            )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
