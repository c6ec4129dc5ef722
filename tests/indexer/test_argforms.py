"""The raw event log stores arguments in the API's form (integers as decimal strings); digests
cover the canonical form; migration 0005 rewrites an older table both ways without changing a
digest."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
import structlog.testing

from chain.provenance import ChainEvent
from indexer import argforms, db, models
from indexer.digest import stored_digests
from indexer.projection import _json
from indexer.rebuild import verify
from tests.indexer.history import History
from tests.indexer.readmodels import index
from tests.indexer.synthetic import CHAIN_ID, simple_chain

pytest_plugins = ("tests.indexer.backends",)


def _args_by_log(engine: sa.Engine) -> dict[tuple[str, int], tuple[str, str]]:
    e = models.events
    with engine.connect() as conn:
        rows = conn.execute(sa.select(e.c.block_hash, e.c.log_index, e.c.event, e.c.args)).all()
    return {(r.block_hash, r.log_index): (r.event, r.args) for r in rows}


def test_api_text_writes_every_integer_as_a_string_and_back() -> None:
    args = {"job_id": 7, "amount": 2**200, "client": "0xab", "ok": True, "params": {"fee_bps": 250}}
    text = argforms.api_text(args)
    big = 2**200
    assert text == f'{{"amount":"{big}","client":"0xab","job_id":"7","ok":true,"params":{{"fee_bps":"250"}}}}'
    posted = {"job_id": 7, "amount": 2**200, "client": "0xab"}
    assert argforms.canonical_text("JobPosted", argforms.api_text(posted)) == _json.encode(posted).decode()
    # Canonical text stays canonical; strings that look like numbers stay strings.
    canonical = _json.encode({"spec_cid": "123", "job_id": 5}).decode()
    assert argforms.canonical_text("JobPosted", canonical) == canonical


def test_a_struct_with_members_that_are_not_integers_is_refused() -> None:
    """`canonical_text` restores integers by ABI type; a struct it could not restore exactly
    is refused when the event type is read, not guessed at later."""

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Mixed(ChainEvent):
        NAME: ClassVar[str] = "Mixed"
        SIGNATURE: ClassVar[str] = "Mixed(uint256,(uint64,address))"
        CONTRACTS: ClassVar[tuple[str, ...]] = ("ComputeRental",)
        job_id: int
        params: dict[str, Any]

    with pytest.raises(TypeError, match=r"Mixed\.params: a struct of \(uint64,address\)"):
        argforms._integer_fields(Mixed)


#: The last block digest of the synthetic chain, as 70d1c6c (the table in the canonical form)
#: wrote it: the table's form must not change a digest, or replicas of two versions would
#: disagree about state they share.
SIMPLE_CHAIN_DIGEST = "6fab830232c0a8b0dd5578f78b2eaeb9db26112e291e8f6fc6a70701f59c8e18"


def test_digests_are_the_ones_earlier_versions_wrote(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'indexer.sqlite3'}")
    db.upgrade(engine)
    blocks = simple_chain().blocks
    index(engine, CHAIN_ID, blocks)
    with engine.connect() as conn:
        digests = stored_digests(conn)
        stored = conn.execute(sa.select(models.events.c.args).order_by(models.events.c.id)).scalars().first()
    assert stored is not None and '":"' in stored and not re.search(r'":[0-9]', stored)
    assert digests[blocks[-1][0].number] == SIMPLE_CHAIN_DIGEST
    engine.dispose()


@pytest.mark.anvil
class TestStoredForm:
    def test_the_table_holds_the_api_form_and_digests_the_canonical_one(
        self, engine: sa.Engine, history: History
    ) -> None:
        index(engine, history.chain_id, history.blocks)
        stored = _args_by_log(engine)
        assert len(stored) == len(history.events)
        for ev in history.events:
            name, text = stored[(ev.block_hash, ev.log_index)]
            canonical = _json.encode(ev.args()).decode()
            assert text == argforms.api_text(ev.args())
            assert argforms.canonical_text(name, text) == canonical
        values = [v for e in history.events for v in e.args().values()]
        assert any(type(v) is int for v in values)
        assert verify(engine, history.chain_id).identical

    def test_migration_0005_rewrites_both_ways_and_changes_no_digest(
        self, engine: sa.Engine, history: History
    ) -> None:
        index(engine, history.chain_id, history.blocks)
        api_form = _args_by_log(engine)
        with engine.connect() as conn:
            digests = stored_digests(conn)
        db.downgrade(engine, "0004")
        older = _args_by_log(engine)
        for ev in history.events:
            assert older[(ev.block_hash, ev.log_index)][1] == _json.encode(ev.args()).decode()
        # A table in the older form still verifies against a rebuild in the new one.
        assert verify(engine, history.chain_id).identical
        with structlog.testing.capture_logs() as logs:
            db.upgrade(engine)
        assert _args_by_log(engine) == api_form
        # The indexer's log says what it did (`indexer run` shows it while it waits).
        with_integers = [
            e for e in history.events if argforms.api_text(e.args()) != _json.encode(e.args()).decode()
        ]
        done = [entry for entry in logs if entry["event"] == "migration_done"]
        assert [(d["rewritten"], d["total"]) for d in done] == [(len(with_integers), len(history.events))]
        with engine.connect() as conn:
            assert stored_digests(conn) == digests
        assert verify(engine, history.chain_id).identical

    def test_migration_0005_changes_nothing_when_a_row_cannot_be_read(
        self, engine: sa.Engine, history: History
    ) -> None:
        """A row the indexer never wrote fails the upgrade naming it, after a whole batch of
        rows was already rewritten: the migration's one transaction rolls that back too."""
        index(engine, history.chain_id, history.blocks)
        db.downgrade(engine, "0004")
        e = models.events
        with engine.begin() as conn:
            first = (
                conn.execute(sa.select(e).where(e.c.event == "JobPosted").order_by(e.c.id)).mappings().first()
            )
            assert first is not None
            top = conn.execute(sa.select(sa.func.max(e.c.id))).scalar()
            # More rows than the migration's batch (20,000), so one batch is written before the
            # bad row is read.
            copies = [{**first, "id": top + i, "log_index": 1000 + i} for i in range(1, 20_002)]
            conn.execute(e.insert(), copies)
            conn.execute(e.insert(), {**first, "id": top + 30_000, "args": '{"job_id":'})
        before = _args_by_log(engine)
        with pytest.raises(
            RuntimeError, match=rf"events row {top + 30_000} \(JobPosted\).*nothing was changed"
        ):
            db.upgrade(engine)
        assert db.current_revision(engine) == "0004"
        assert _args_by_log(engine) == before
        assert re.search(r'"job_id":[0-9]', before[(first["block_hash"], 1001)][1])
        with engine.begin() as conn:
            conn.execute(e.delete().where(e.c.id > top))
        db.upgrade(engine)
        assert db.current_revision(engine) == "0005"
