"""`rebuild` recreates the read models from the store alone; `verify` finds the first block where
two sets of read models differ."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from indexer import models
from indexer.digest import stored_digests
from indexer.projection import Projector
from indexer.rebuild import compare, rebuild, reset_read_models, table_counts, verify
from indexer.store import EventStore
from tests.indexer.history import History
from tests.indexer.readmodels import index, rows

pytestmark = pytest.mark.anvil

pytest_plugins = ("tests.indexer.backends",)


def _dump(engine: sa.Engine) -> dict[str, list[dict[str, object]]]:
    out = {}
    for table in models.READ_MODEL_TABLES:
        if table is models.undo_log:
            key = "block_number,tbl,row_key"
        else:
            key = ",".join(c.name for c in table.primary_key.columns)
        out[table.name] = [
            {k: v for k, v in r.items() if not (table is models.undo_log and k == "id")}
            for r in rows(engine, table.name, order_by=key)
        ]
    return out


class TestRebuild:
    def test_rebuild_in_place_equals_live(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks, batch_events=50)
        live = _dump(engine)
        report = rebuild(engine, history.chain_id)
        assert report.events == len(history.events) and report.position == report.events
        assert _dump(engine) == live

    def test_rebuild_into_another_database_from_the_store_alone(
        self, engine: sa.Engine, history: History, scratch: Callable[[str], sa.Engine]
    ) -> None:
        index(engine, history.chain_id, history.blocks)
        # Break the RPC on purpose: rebuild must not need it.
        target = scratch("rebuilt")
        rebuild(engine, history.chain_id, target=target)
        assert _dump(target) == _dump(engine)
        # The target holds read models only; the event store stays in the source.
        with target.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM stored_events")).scalar() == 0

    def test_rebuild_replays_reorgs_the_way_the_live_indexer_lived_them(
        self, engine: sa.Engine, history: History
    ) -> None:
        chain_id, blocks = history.chain_id, history.blocks
        store = EventStore(engine, chain_id)
        projector = Projector(engine, chain_id)
        at = len(blocks) - 5
        fork = []
        for ref, logs in blocks[at:]:
            # Flip bits of the first byte, so the fork's hash differs from the real one even
            # when the real one already begins with the byte a fixed prefix would write.
            new_hash = f"0x{int(ref.hash, 16) ^ (0xF0 << 248):064x}"
            fork.append(
                (
                    dataclasses.replace(ref, hash=new_hash),
                    [dataclasses.replace(e, block_hash=new_hash) for e in logs[:1]],
                )
            )
        store.append_blocks(blocks[:at])
        projector.run()
        # The fork's blocks chain onto each other, the first onto the ancestor.
        fixed, parent = [], blocks[at - 1][0].hash
        for ref, logs in fork:
            fixed.append((dataclasses.replace(ref, parent_hash=parent), logs))
            parent = ref.hash
        store.append_blocks(fixed)
        projector.run()
        store.orphan_after(blocks[at - 1][0].number, depth=5)
        store.append_blocks(blocks[at:])
        projector.run()
        live = _dump(engine)
        rebuild(engine, chain_id)
        assert _dump(engine) == live
        assert len(rows(engine, "events", orphaned=True)) == len(fixed)

    def test_reset_empties_read_models_but_not_the_store(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        reset_read_models(engine)
        counts = table_counts(engine)
        assert set(counts.values()) == {0}
        assert Projector(engine, history.chain_id).position() == 0
        assert len(EventStore(engine, history.chain_id).events(0, 100_000)) == len(history.events)


class TestVerify:
    def test_live_equals_a_fresh_rebuild(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        report = verify(engine, history.chain_id)
        assert report.identical
        assert report.up_to_block == history.blocks[-1][0].number
        assert str(report) == f"identical up to block {report.up_to_block}"

    def test_a_tampered_row_is_found_at_its_block(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        job = rows(engine, "jobs", job_id=history.jobs["resolved"])[0]
        with engine.begin() as conn:
            t = models.TABLES[models.Job]
            conn.execute(t.update().where(t.c.job_id == job["job_id"]).values(fee=job["fee"] + 1))
        report = verify(engine, history.chain_id)
        assert not report.identical
        diff = report.first_difference
        assert diff is not None
        assert (diff.block, diff.kind, diff.table) == (job["block_number"], "rows", "jobs")
        assert str(report) == f"first difference at block {job['block_number']}: rows differ in table jobs"

    def test_a_deleted_raw_event_is_found(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        victim = rows(engine, "events", order_by="id")[10]
        with engine.begin() as conn:
            conn.execute(models.events.delete().where(models.events.c.id == victim["id"]))
        diff = verify(engine, history.chain_id).first_difference
        assert diff is not None and (diff.block, diff.table) == (victim["block_number"], "events")

    def test_two_databases_differ_first_where_their_histories_do(
        self, engine: sa.Engine, history: History, scratch: Callable[[str], sa.Engine]
    ) -> None:
        blocks = history.blocks
        index(engine, history.chain_id, blocks)
        other = scratch("other")
        ref, logs = blocks[20]
        changed = dataclasses.replace(logs[0], log_index=logs[0].log_index + 1000)
        index(other, history.chain_id, [*blocks[:20], (ref, [changed, *logs[1:]]), *blocks[21:]])
        report = compare(engine, other)
        assert report.first_difference is not None and report.first_difference.block == ref.number
        with engine.connect() as a, other.connect() as b:
            da, db_ = stored_digests(a), stored_digests(b)
        assert [n for n in sorted(da) if da[n] != db_.get(n)][0] == ref.number
        # Chained: every later block digest differs too.
        assert all(da[n] != db_[n] for n in da if n >= ref.number)

    def test_a_replica_behind_is_compared_up_to_its_own_position(
        self, engine: sa.Engine, history: History
    ) -> None:
        store = EventStore(engine, history.chain_id)
        store.append_blocks(history.blocks)
        Projector(engine, history.chain_id).run(max_events=len(history.events) // 2)
        assert verify(engine, history.chain_id).identical

    def test_sqlite_and_postgresql_digests_agree(
        self, engine: sa.Engine, history: History, scratch: Callable[[str], sa.Engine]
    ) -> None:
        index(engine, history.chain_id, history.blocks)
        lite = scratch("lite")
        index(lite, history.chain_id, history.blocks)
        assert compare(engine, lite).identical
