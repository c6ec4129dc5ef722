"""The event store: the eventsourcing library's SQLAlchemy recorder, block refs, reorgs.

Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder

from chain import events as E
from indexer.domain import LogIndexed, LogOrphaned, log_originator_id
from indexer.errors import BlockConflict, StoreMismatch, UnknownBlock
from indexer.store import BlockRef, EventStore, store_reorgs, stored_events
from tests.indexer.synthetic import CHAIN_ID, ETH, PROVIDER, Builder, credited, job_posted, simple_chain

pytest_plugins = ("tests.indexer.backends",)


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


class TestAppend:
    def test_each_log_becomes_a_LogIndexed_event_with_its_provenance(self, engine: sa.Engine) -> None:
        chain = simple_chain()
        store = EventStore(engine, CHAIN_ID)
        appended = store.append_blocks(chain.blocks)
        logs = [(ref, e) for ref, block in chain.blocks for e in block]
        assert appended == len(logs)
        stored = store.events()
        assert [pos for pos, _ in stored] == sorted(pos for pos, _ in stored)
        for (_, event), (ref, log) in zip(stored, logs, strict=True):
            assert isinstance(event, LogIndexed)
            assert (event.chain_id, event.block_number, event.block_hash, event.tx_hash, event.log_index) == (
                CHAIN_ID,
                ref.number,
                ref.hash,
                log.tx_hash,
                log.log_index,
            )
            assert (event.contract, event.address, event.event) == (log.contract, log.address, log.name)
            assert event.args == log.args()
            assert event.block_timestamp == ref.timestamp
            assert event.timestamp.timestamp() == ref.timestamp  # the block's time, not the clock
            assert event.chain_event() == log  # the typed event round-trips exactly
            assert event.originator_id == log_originator_id(CHAIN_ID, ref.hash, log.tx_hash, log.log_index)
            assert event.originator_version == 1

    def test_head_and_canonical_blocks(self, engine: sa.Engine) -> None:
        chain = simple_chain()
        store = EventStore(engine, CHAIN_ID)
        assert store.head() is None
        store.append_blocks(chain.blocks)
        refs = [ref for ref, _ in chain.blocks]
        assert store.head() == refs[-1]
        assert store.canonical_blocks(refs[2].number) == refs[2:]

    def test_reappending_the_same_blocks_is_a_no_op(self, engine: sa.Engine) -> None:
        chain = simple_chain()
        store = EventStore(engine, CHAIN_ID)
        first = store.append_blocks(chain.blocks[:4])
        assert store.append_blocks(chain.blocks[:4]) == 0
        # An overlapping batch appends only what is new.
        assert store.append_blocks(chain.blocks[2:]) == sum(len(b) for _, b in chain.blocks[4:])
        assert _count(engine, stored_events) == first + sum(len(b) for _, b in chain.blocks[4:])

    def test_the_library_unique_index_refuses_a_doubled_log(self, engine: sa.Engine) -> None:
        chain = simple_chain()
        store = EventStore(engine, CHAIN_ID)
        store.append_blocks(chain.blocks)
        ref, logs = chain.blocks[2]
        again = store.mapper.to_stored_event(
            LogIndexed.from_chain_event(logs[0], block_timestamp=ref.timestamp)
        )
        with pytest.raises(IntegrityError):
            store.recorder.insert_events([again])

    def test_set_cursor_records_progress_without_events(self, engine: sa.Engine) -> None:
        chain = simple_chain()
        store = EventStore(engine, CHAIN_ID)
        store.append_blocks(chain.blocks)
        empty = BlockRef(chain.number + 50, "0x" + "ee" * 32, "0x" + "dd" * 32, 1_800_000_000)
        before = _count(engine, stored_events)
        store.set_cursor(empty)
        store.set_cursor(empty)
        assert store.head() == empty
        assert _count(engine, stored_events) == before

    def test_a_block_contradicting_the_stored_chain_is_refused(self, engine: sa.Engine) -> None:
        chain = simple_chain()
        store = EventStore(engine, CHAIN_ID)
        store.append_blocks(chain.blocks)
        ref, logs = chain.blocks[-1]
        other = dataclasses.replace(ref, hash="0x" + "01" * 32)
        with pytest.raises(BlockConflict, match="another block is canonical"):
            store.append_blocks([(other, [dataclasses.replace(e, block_hash=other.hash) for e in logs])])
        orphan_child = BlockRef(ref.number + 1, "0x" + "02" * 32, "0x" + "03" * 32, ref.timestamp + 12)
        with pytest.raises(BlockConflict, match="parent"):
            store.append_blocks([(orphan_child, [])])
        store.set_cursor(BlockRef(ref.number + 10, "0x" + "04" * 32, "0x" + "05" * 32, ref.timestamp + 120))
        passed = Builder(ref.number + 3, branch="late")
        passed.block(credited(PROVIDER, 1))
        with pytest.raises(BlockConflict, match="already passed"):
            store.append_blocks(passed.blocks)

    def test_logs_of_another_block_are_refused(self, engine: sa.Engine) -> None:
        chain = simple_chain()
        ref, logs = chain.blocks[3]
        with pytest.raises(UnknownBlock):
            EventStore(engine, CHAIN_ID).append_blocks([(ref, chain.blocks[2][1])])
        assert _count(engine, stored_events) == 0

    def test_one_database_indexes_one_chain(self, engine: sa.Engine) -> None:
        chain = simple_chain()
        EventStore(engine, CHAIN_ID).append_blocks(chain.blocks[:2])
        with pytest.raises(StoreMismatch, match="chain 31337"):
            EventStore(engine, 1).set_cursor(BlockRef(100, "0x" + "aa" * 32, "0x" + "bb" * 32, 1))

    def test_a_failed_append_appends_nothing(self, engine: sa.Engine) -> None:
        chain = simple_chain()
        store = EventStore(engine, CHAIN_ID)
        store.append_blocks(chain.blocks[:3])
        bad_ref, _ = chain.blocks[4]
        with pytest.raises(UnknownBlock):
            store.append_blocks([chain.blocks[3], (bad_ref, chain.blocks[3][1])])  # second block is bad
        assert store.head() == chain.blocks[2][0]  # the good first block was not kept either

    def test_it_is_the_eventsourcing_librarys_store(self, engine: sa.Engine) -> None:
        chain = simple_chain()
        store = EventStore(engine, CHAIN_ID)
        store.append_blocks(chain.blocks)
        assert isinstance(store.recorder, SQLAlchemyApplicationRecorder)
        notifications = store.recorder.select_notifications(start=1, limit=1000)
        assert len(notifications) == sum(len(b) for _, b in chain.blocks)
        assert store.recorder.max_notification_id() == notifications[-1].id
        assert all(n.topic == "indexer.domain:LogIndexed" for n in notifications)
        first = notifications[0]
        history = store.recorder.select_events(first.originator_id)
        assert [e.originator_version for e in history] == [1]
        assert isinstance(
            store.mapper.to_domain_event(StoredEvent(first.originator_id, 1, first.topic, first.state)),
            LogIndexed,
        )


class TestOrphan:
    def _reorged(self, engine: sa.Engine) -> tuple[EventStore, Builder, Builder, int]:
        main = simple_chain(8)
        store = EventStore(engine, CHAIN_ID)
        store.append_blocks(main.blocks)
        ancestor = main.blocks[4][0].number
        side = Builder(ancestor + 1, branch="side")
        side.parent = main.blocks[4][0].hash
        side.block(job_posted(90), credited(PROVIDER, 1))
        side.block()
        return store, main, side, ancestor

    def test_compensating_events_never_delete_history(self, engine: sa.Engine) -> None:
        store, main, side, ancestor = self._reorged(engine)
        before = store.events()
        orphaned_logs = [e for ref, b in main.blocks if ref.number > ancestor for e in b]
        assert store.orphan_after(ancestor, depth=3) == len(orphaned_logs)
        after = store.events()
        assert after[: len(before)] == before  # nothing deleted or rewritten
        compensating = [e for _, e in after[len(before) :]]
        assert all(isinstance(e, LogOrphaned) for e in compensating)
        assert [(e.tx_hash, e.log_index, e.block_hash) for e in compensating] == [  # type: ignore[union-attr]
            (e.tx_hash, e.log_index, e.block_hash) for e in orphaned_logs
        ]
        assert all(e.ancestor == ancestor and e.depth == 3 for e in compensating)  # type: ignore[union-attr]
        # Each compensating event is the next version of the log it orphans.
        history = store.recorder.select_events(compensating[0].originator_id)
        assert [store.mapper.to_domain_event(s).__class__ for s in history] == [LogIndexed, LogOrphaned]

    def test_folding_reads_a_run_of_compensating_events_in_one_statement(self, engine: sa.Engine) -> None:
        store, main, side, ancestor = self._reorged(engine)
        before = store.max_position()
        orphaned = store.orphan_after(ancestor, depth=3)
        assert orphaned > 1
        statements: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
            statements.append(statement)

        with engine.connect() as conn:
            text = store.fold_chunk(conn, before, 1_000)
            sa.event.listen(engine, "before_cursor_execute", count)
            try:
                folded = store.decode_fold_chunk(conn, text)
            finally:
                sa.event.remove(engine, "before_cursor_execute", count)
        assert [type(e) for _, e in folded] == [LogOrphaned] * orphaned
        assert [e for _, e in folded] == [e for _, e in store.events(before)]
        assert [nid for nid, _ in folded] == list(range(before + 1, before + orphaned + 1))
        assert len(statements) == 1  # not one per event

    def test_orphaned_refs_leave_the_canonical_chain(self, engine: sa.Engine) -> None:
        store, main, side, ancestor = self._reorged(engine)
        store.orphan_after(ancestor, depth=3)
        assert store.head() == main.blocks[4][0]
        assert store.canonical_blocks(ancestor + 1) == []
        assert store.append_blocks(side.blocks) == 2
        assert store.head() == side.blocks[-1][0]
        assert {ref.hash for ref, _ in main.blocks[5:]} <= store.orphaned_hashes()

    def test_reorgs_are_recorded(self, engine: sa.Engine) -> None:
        store, main, side, ancestor = self._reorged(engine)
        store.orphan_after(ancestor, depth=3)
        with engine.connect() as conn:
            count, last = store.reorg_stats(conn)
            (row,) = conn.execute(sa.select(store_reorgs)).all()
        assert count == 1 and last.ancestor == ancestor and last.depth == 3
        assert (row.blocks_orphaned, row.events_orphaned, row.old_head) == (3, 9, main.blocks[-1][0].number)

    def test_orphaning_nothing_is_recorded_but_appends_nothing(self, engine: sa.Engine) -> None:
        store, main, _, _ = self._reorged(engine)
        before = len(store.events())
        assert store.orphan_after(main.blocks[-1][0].number, depth=0) == 0
        assert len(store.events()) == before

    def test_a_block_can_become_canonical_again(self, engine: sa.Engine) -> None:
        store, main, side, ancestor = self._reorged(engine)
        store.orphan_after(ancestor, depth=3)
        store.append_blocks(side.blocks)
        store.orphan_after(ancestor, depth=2)
        assert store.append_blocks(main.blocks[5:]) == 9
        ref, logs = main.blocks[5]
        oid = log_originator_id(CHAIN_ID, ref.hash, logs[0].tx_hash, logs[0].log_index)
        versions = [s.originator_version for s in store.recorder.select_events(oid)]
        assert versions == [1, 2, 3]
        assert store.head() == main.blocks[-1][0]


def test_originator_ids_are_uuid5() -> None:
    name = f"{CHAIN_ID}:0xab:0xcd:3"
    from indexer.domain import LOG_NAMESPACE

    assert log_originator_id(CHAIN_ID, "0xAB", "0xCD", 3) == uuid.uuid5(LOG_NAMESPACE, name)


def test_events_with_bytes_and_tuples_round_trip() -> None:
    b = Builder()
    b.block(
        (E.ParamsUpdated, {"params": {"min_stake": ETH, "accept_window": 300}}),
        (
            E.KeyDelivered,
            {
                "license_id": 1,
                "token_id": 2,
                "buyer": PROVIDER,
                "seller": PROVIDER,
                "encrypted_key": b"\x00\x01" * 40,
                "seller_proceeds": 97,
                "fee": 3,
            },
        ),
    )
    ref, logs = b.blocks[0]
    for log in logs:
        event = LogIndexed.from_chain_event(log, block_timestamp=ref.timestamp)
        assert event.chain_event() == log
