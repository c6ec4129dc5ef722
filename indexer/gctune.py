"""Garbage-collector settings for the indexer's long batch loops.

NOTE: a backfill or a rebuild allocates millions of short-lived objects (decoded events, rows,
parameter tuples) while holding a large, long-lived heap (imported libraries, the row cache).
With the default thresholds CPython's cyclic collector runs a full collection every few batches
and walks that whole heap each time: a fifth of the indexer's CPU time (measured with py-spy and
bench/indexer_backfill.py). Freezing what exists at the start (it is never garbage) and
collecting young objects less often takes that to almost nothing; cycles are still collected.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between young collections, and the ratios of the older generations.
THRESHOLDS = (50_000, 20, 100)


@contextmanager
def batch_gc() -> Iterator[None]:
    """Run the body with the collector tuned for batch work; restore it afterwards."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
