"""The status row the API reads: progress, lag, events/s and reorgs."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from indexer.projection import Projector
from indexer.status import read_status, write_status
from indexer.store import EventStore
from tests.indexer.synthetic import CHAIN_ID, simple_chain

pytest_plugins = ("tests.indexer.backends",)


def test_no_status_before_the_runner_writes_one(engine: sa.Engine) -> None:
    assert read_status(engine) is None


def test_status_reports_progress_and_lag(engine: sa.Engine) -> None:
    chain = simple_chain()
    EventStore(engine, CHAIN_ID).append_blocks(chain.blocks)
    head = chain.blocks[-1][0]
    write_status(
        engine,
        chain_id=CHAIN_ID,
        indexed_head=head.number,
        finalized_block=2,
        node_head=head.number + 5,
        events_per_second=1234.5,
    )
    status = read_status(engine)
    assert status is not None
    assert (status.chain_id, status.indexed_head, status.indexed_head_hash) == (
        CHAIN_ID,
        head.number,
        head.hash,
    )
    assert (status.finalized_block, status.node_head, status.lag, status.events_per_second) == (
        2,
        head.number + 5,
        5,
        1234.5,
    )
    assert status.reorg_count == 0 and status.last_reorg_block is None
    assert status.updated_at.tzinfo is not None and status.updated_at <= datetime.now(UTC)
    # The projector has not run: the read models reflect nothing yet.
    assert not status.caught_up and status.read_models_block is None
    Projector(engine, CHAIN_ID).run()
    status = read_status(engine)
    assert status is not None and status.caught_up and status.read_models_block == head.number


def test_status_counts_reorgs(engine: sa.Engine) -> None:
    chain = simple_chain()
    store = EventStore(engine, CHAIN_ID)
    store.append_blocks(chain.blocks)
    store.orphan_after(chain.blocks[-3][0].number, depth=2)
    store.orphan_after(chain.blocks[-4][0].number, depth=1)
    write_status(
        engine,
        chain_id=CHAIN_ID,
        indexed_head=None,
        finalized_block=None,
        node_head=None,
        events_per_second=0,
    )
    status = read_status(engine)
    assert status is not None
    assert (status.reorg_count, status.last_reorg_block, status.last_reorg_depth) == (
        2,
        chain.blocks[-4][0].number + 1,
        1,
    )
    assert status.last_reorg_at is not None and status.last_reorg_at.tzinfo is not None
    assert status.lag is None


def test_writing_again_replaces_the_row(engine: sa.Engine) -> None:
    for head in (5, 9):
        write_status(
            engine, chain_id=CHAIN_ID, indexed_head=head, finalized_block=1, node_head=10, events_per_second=1
        )
    status = read_status(engine)
    assert status is not None and (status.indexed_head, status.lag) == (9, 1)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM indexer_status")).scalar() == 1
