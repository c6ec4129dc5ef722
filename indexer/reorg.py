"""Reorg detection: the stored canonical blocks above finality against the node's hashes.

`compare` is the pure decision (no I/O); `Reconciler` asks the node, decides, and records: a
reorg becomes compensating events (`EventStore.orphan_after`), after which the runner indexes the
new canonical blocks from the common ancestor up. A reorg that replaces a block at or below the
finalized block the indexer has already passed raises ReorgTooDeep: the indexer stops rather
than diverge silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ascendnet.log import get_logger
from indexer.errors import ReorgTooDeep
from indexer.store import BlockRef

log = get_logger("indexer.reorg")


class HeaderSource(Protocol):
    def headers(self, numbers: Sequence[int]) -> Mapping[int, BlockRef | None]: ...


class CanonicalBlocks(Protocol):
    def head(self) -> BlockRef | None: ...

    def canonical_blocks(self, from_number: int) -> list[BlockRef]: ...

    def orphan_after(self, ancestor: int, *, depth: int) -> int: ...


@dataclass(frozen=True, slots=True)
class InSync:
    """The stored head is on the node's chain."""


@dataclass(frozen=True, slots=True)
class NodeBehind:
    """The node lacks some of our blocks but contradicts none: it lags (or rolled back and has
    not grown again yet). Wait, do not act on an absence."""

    node_has_up_to: int | None


@dataclass(frozen=True, slots=True)
class Reorged:
    """Blocks above `ancestor` (the last block both chains share) were replaced."""

    ancestor: BlockRef
    old_head: BlockRef
    first_changed: int

    @property
    def depth(self) -> int:
        return self.old_head.number - self.ancestor.number


@dataclass(frozen=True, slots=True)
class TooDeep:
    """A block at or below the finalized block changed."""

    block: int
    depth: int
    limit: int


Verdict = InSync | NodeBehind | Reorged | TooDeep


def compare(stored: Sequence[BlockRef], node: Mapping[int, BlockRef | None], *, finalized: int) -> Verdict:
    """Decide from `stored` (our canonical refs, ascending, the head last) and the node's refs at
    the same numbers (None where the node has no such block).

    Because each block commits to its parent's hash, the chains agree at every block at or below
    the highest stored block whose hash the node shares: that block is the common ancestor."""
    if not stored:
        return InSync()
    head = stored[-1]
    ancestor: BlockRef | None = None
    first_changed: int | None = None
    missing_top: int | None = None
    for ref in reversed(stored):
        theirs = node.get(ref.number)
        if theirs is None:
            missing_top = ref.number if missing_top is None else missing_top
            continue
        if theirs.hash == ref.hash:
            ancestor = ref
            break
        first_changed = ref.number
    limit = max(head.number - finalized, 0)
    if first_changed is None:
        if ancestor is not None and ancestor.number == head.number:
            return InSync()
        return NodeBehind(node_has_up_to=ancestor.number if ancestor else None)
    if first_changed <= finalized or ancestor is None:
        return TooDeep(block=first_changed, depth=head.number - first_changed + 1, limit=limit)
    return Reorged(ancestor=ancestor, old_head=head, first_changed=first_changed)


@dataclass
class Reconciler:
    """Keeps the event store on the node's canonical chain.

    `finalized` is the highest block the indexer has treated as final (it only grows); blocks at
    or below it are never revisited."""

    store: CanonicalBlocks
    source: HeaderSource
    finalized: int = -1
    reorgs: int = 0

    def observe_finalized(self, number: int) -> None:
        self.finalized = max(self.finalized, number)

    def check(self) -> Reorged | NodeBehind | None:
        """Compare, and on a reorg append the compensating events. Returns the reorg handled, a
        NodeBehind when the node lags our head, or None when in sync. Raises ReorgTooDeep."""
        head = self.store.head()
        if head is None or head.number <= self.finalized:
            return None  # nothing above finality: final blocks are never revisited
        # Fast path: one header. Only on a difference are the other unfinalized blocks compared.
        theirs = self.source.headers([head.number]).get(head.number)
        if theirs is not None and theirs.hash == head.hash:
            return None
        stored = self.store.canonical_blocks(max(self.finalized, 0))
        if not stored or stored[-1] != head:
            stored = [*[r for r in stored if r.number < head.number], head]
        verdict = compare(stored, self.source.headers([r.number for r in stored]), finalized=self.finalized)
        if isinstance(verdict, InSync):
            return None
        if isinstance(verdict, NodeBehind):
            log.warning(
                "node_behind_indexed_head",
                indexed_head=head.number,
                node_has_up_to=verdict.node_has_up_to,
                hint="waiting for the node: it lags, or rolled back and has not grown again",
            )
            return verdict
        if isinstance(verdict, TooDeep):
            raise self.too_deep(verdict.block, head.number)
        orphaned = self.store.orphan_after(verdict.ancestor.number, depth=verdict.depth)
        self.reorgs += 1
        log.warning(
            "reorg",
            ancestor=verdict.ancestor.number,
            ancestor_hash=verdict.ancestor.hash,
            old_head=verdict.old_head.number,
            old_head_hash=verdict.old_head.hash,
            depth=verdict.depth,
            orphaned_events=orphaned,
        )
        return verdict

    def too_deep(self, changed: int, head: int) -> ReorgTooDeep:
        """The error for a change at block `changed` (at or below finality), naming the lowest
        stored block the node contradicts."""
        block = self._first_changed_below(changed)
        depth = head - block + 1
        limit = max(head - self.finalized, 0)
        log.error("reorg_too_deep", block=block, depth=depth, limit=limit, finalized=self.finalized)
        return ReorgTooDeep(block, depth, limit)

    def _first_changed_below(self, changed: int) -> int:
        """The lowest stored block the node contradicts, at or below `changed` (which it does).

        Only on the fatal path, so it may read every stored ref: agreement is monotone (a block
        the node shares implies all below it), so a binary search needs ~log2(n) headers."""
        refs = [r for r in self.store.canonical_blocks(0) if r.number <= changed]
        lo, hi = 0, len(refs)  # invariant: refs[:lo] agree with the node, refs[hi:] do not
        while lo < hi:
            mid = (lo + hi) // 2
            theirs = self.source.headers([refs[mid].number]).get(refs[mid].number)
            if theirs is not None and theirs.hash == refs[mid].hash:
                lo = mid + 1
            else:
                hi = mid
        return refs[lo].number if lo < len(refs) else changed
