"""Projection of real contract events into the read models, exactly once, undone on reorgs.

History comes from real transactions on anvil (tests/indexer/history.py); every suite runs on
SQLite and on PostgreSQL. The expected values are read back from the contracts' own getters
wherever the contracts expose them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from chain import artifacts, events
from chain.provenance import ChainEvent
from indexer import folds, models
from indexer.digest import stored_digests
from indexer.projection import Projector, prune_undo, tracked_position
from indexer.rebuild import compare
from indexer.status import write_status
from indexer.store import BlockRef, EventStore
from tests.chain.flows import NATIVE, PARAMS
from tests.indexer.history import JOB_STATES, LICENCE_STATES, History, onchain_job
from tests.indexer.readmodels import index, one, rows

pytestmark = pytest.mark.anvil
ETH = 10**18

pytest_plugins = ("tests.indexer.backends",)


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


class TestEveryEventLands:
    """Each contract event type folds into the right read model with the right values."""

    def test_history_covers_every_event_type(self, history: History) -> None:
        emitted = {e.name for e in history.events}
        declared = {
            e["name"]
            for name in ("ComputeRental", "PromptMarketplace")
            for e in artifacts.load(name).abi
            if e.get("type") == "event"
        }
        # RoleAdminChanged is never emitted by these contracts (no role admin is ever changed).
        assert declared - emitted == {"RoleAdminChanged"}

    def test_raw_event_log_holds_every_event_with_provenance(
        self, engine: sa.Engine, history: History
    ) -> None:
        index(engine, history.chain_id, history.blocks)
        got = rows(engine, "events", order_by="id")
        assert len(got) == len(history.events)
        for row, ev in zip(got, history.events, strict=True):
            assert (row["block_number"], row["block_hash"], row["tx_hash"], row["log_index"]) == (
                ev.block_number,
                ev.block_hash,
                ev.tx_hash,
                ev.log_index,
            )
            assert (row["contract"], row["address"], row["event"], row["chain_id"]) == (
                ev.contract,
                ev.address,
                ev.name,
                history.chain_id,
            )
            assert not row["orphaned"]
        timestamps = {ref.number: ref.timestamp for ref, _ in history.blocks}
        assert all(r["block_timestamp"] == timestamps[r["block_number"]] for r in got)

    def test_jobs_match_the_contract(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        p = history.protocol
        for job_id in range(1, int(p.compute.functions.jobCount().call()) + 1):
            chain = onchain_job(p, job_id)
            row = one(engine, "jobs", job_id=job_id)
            assert row["state"] == JOB_STATES[chain["state"]], job_id
            assert row["client"] == chain["client"]
            assert row["asset"] == chain["asset"]
            assert row["amount"] == chain["amount"]
            assert row["spec_hash"] == _hex(chain["spec_hash"])
            assert row["bid_deadline"] == chain["bid_deadline"]
            assert row["accept_deadline"] == chain["accept_deadline"], job_id
            assert row["execution_timeout"] == chain["execution_timeout"]
            if chain["provider"] != NATIVE:
                assert row["provider"] == chain["provider"]
                assert row["execution_deadline"] == chain["execution_deadline"]
            if chain["challenge_end"]:
                assert row["challenge_end"] == chain["challenge_end"]
                assert row["result_hash"] == _hex(chain["result_hash"])
            if chain["dispute_deadline"]:
                assert row["dispute_deadline"] == chain["dispute_deadline"]

    def test_job_outcomes(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        j, who = history.jobs, history.who
        done = one(engine, "jobs", job_id=j["finalized"])
        fee = (6 * ETH // 10) * 300 // 10_000
        assert (done["price"], done["fee"], done["provider_payout"]) == (
            6 * ETH // 10,
            fee,
            6 * ETH // 10 - fee,
        )
        assert done["completed_by_client"] is False and done["max_amount"] == ETH
        assert done["client_refund"] == 4 * ETH // 10 and done["bid_count"] == 2
        assert one(engine, "jobs", job_id=j["accepted"])["completed_by_client"] is True

        resolved = one(engine, "jobs", job_id=j["resolved"])
        share = 8 * ETH // 10 * 6000 // 10_000
        share_fee = -(-share * 300 // 10_000)
        assert (resolved["arbiter"], resolved["provider_bps"]) == (who["admin"], 6000)
        assert (resolved["provider_payout"], resolved["fee"]) == (share - share_fee, share_fee)
        assert resolved["client_refund"] == 2 * ETH // 10 + (8 * ETH // 10 - share)
        assert resolved["dispute_reason_cid"] == "bafkreason"

        timed_out = one(engine, "jobs", job_id=j["timed_out"])
        assert (timed_out["state"], timed_out["client_refund"]) == ("resolved", 6 * ETH // 10 + 4 * ETH // 10)
        assert timed_out["provider_payout"] is None

        failed = one(engine, "jobs", job_id=j["failed"])
        assert failed["slashed"] == ETH * PARAMS.slash_bps // 10_000
        assert failed["client_refund"] == 7 * ETH // 10 + 3 * ETH // 10

        assert one(engine, "jobs", job_id=j["cancelled"])["client_refund"] == ETH
        assert one(engine, "jobs", job_id=j["expired"])["client_refund"] == ETH
        erc20 = one(engine, "jobs", job_id=j["erc20"])
        assert (erc20["asset"], erc20["price"]) == (history.token_asset, 2 * ETH)

        old, new = one(engine, "jobs", job_id=j["old_window"]), one(engine, "jobs", job_id=j["new_window"])
        assert old["accept_deadline"] - old["bid_deadline"] == PARAMS.accept_window
        assert new["accept_deadline"] - new["bid_deadline"] == 900

    def test_bids_and_results(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        p = history.protocol
        job = history.jobs["finalized"]
        bid = one(engine, "bids", job_id=job, provider=history.who["p1"])
        assert bid["price"] == p.compute.functions.bidOf(job, history.who["p1"]).call() == 6 * ETH // 10
        assert (bid["placed_count"], bid["accepted"]) == (2, True)
        result = one(engine, "results", job_id=job)
        assert result["result_hash"] == _hex(onchain_job(p, job)["result_hash"])
        assert (result["result_cid"], result["provider"]) == ("bafkres", history.who["p1"])
        assert result["challenge_end"] == onchain_job(p, job)["challenge_end"]

    def test_providers_match_the_contract(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        c, who = history.protocol.compute, history.who
        for name in ("p1", "p3"):
            stake, unbonding_at, active_jobs, registered, cid = c.functions.getProvider(who[name]).call()
            row = one(engine, "providers", address=who[name])
            assert (row["stake"], row["active_jobs"], row["metadata_cid"]) == (stake, active_jobs, cid)
            assert registered and row["status"] == "active" and row["unbonding_at"] is None
        p1 = one(engine, "providers", address=who["p1"])
        assert (p1["jobs_done"], p1["failures"], p1["disputes"]) == (3, 0, 2)
        p3 = one(engine, "providers", address=who["p3"])
        assert (p3["failures"], p3["slashed_total"]) == (1, ETH * PARAMS.slash_bps // 10_000)
        left = one(engine, "providers", address=who["p2"])
        assert (left["status"], left["stake"], left["unbonding_at"]) == ("left", 0, None)
        earned = {r["asset"]: r for r in rows(engine, "provider_earnings", provider=who["p1"])}
        paid = [e for e in history.named("Credited") if e.account == who["p1"]]  # type: ignore[attr-defined]
        assert earned[NATIVE]["amount"] + earned[history.token_asset]["amount"] == sum(
            e.amount  # type: ignore[attr-defined]
            for e in paid
        )
        assert earned[history.token_asset]["jobs"] == 1

    def test_prompts_listings_sales(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        m, who = history.protocol.market, history.who
        for token_id in history.tokens.values():
            creator, royalty_bps, content_hash, cid = m.functions.getPrompt(token_id).call()
            row = one(engine, "prompts", token_id=token_id)
            assert (row["creator"], row["royalty_bps"], row["content_hash"], row["metadata_cid"]) == (
                creator,
                royalty_bps,
                _hex(content_hash),
                cid,
            )
            assert row["owner"] == m.functions.ownerOf(token_id).call()
            seller, asset, price = m.functions.getListing(token_id).call()
            assert row["listed"] is (seller != NATIVE)
            terms_asset, terms_price = m.functions.getLicenseTerms(token_id).call()
            assert row["licence_price"] == (terms_price or None)
            assert row["licence_asset"] == (terms_asset if terms_price else None)
        sold = history.tokens["sold"]
        listings = rows(engine, "listings", order_by="seq", token_id=sold)
        assert [(r["state"], r["price"]) for r in listings] == [
            ("cancelled", ETH),
            ("replaced", 2 * ETH),
            ("sold", ETH),
        ]
        assert listings[-1]["buyer"] == who["buyer"]
        (sale,) = rows(engine, "sales")
        fee = ETH * 300 // 10_000
        royalty = ETH * 500 // 10_000
        assert (sale["token_id"], sale["seller"], sale["buyer"], sale["listing_seq"]) == (
            sold,
            who["creator"],
            who["buyer"],
            3,
        )
        assert (sale["price"], sale["fee"], sale["royalty"], sale["seller_proceeds"]) == (
            ETH,
            fee,
            royalty,
            ETH - fee - royalty,
        )
        moved = one(engine, "prompts", token_id=history.tokens["transferred"])
        assert (moved["owner"], moved["listed"], moved["licence_price"]) == (who["reader2"], False, None)
        assert one(engine, "listings", token_id=history.tokens["transferred"], seq=1)["state"] == "cancelled"

    def test_licences_and_ratings(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        m = history.protocol.market
        for lic_id in history.licences.values():
            token_id, buyer, seller, asset, price, deadline, state, rated = m.functions.getLicense(
                lic_id
            ).call()
            row = one(engine, "licences", license_id=lic_id)
            assert (row["token_id"], row["buyer"], row["seller"], row["asset"], row["price"]) == (
                token_id,
                buyer,
                seller,
                asset,
                price,
            )
            assert (row["delivery_deadline"], row["state"], row["rated"]) == (
                deadline,
                LICENCE_STATES[state],
                rated,
            )
        delivered = one(engine, "licences", license_id=history.licences["delivered"])
        assert delivered["encrypted_key"] == b"\x04" + b"k" * 64
        fee = -(-(ETH // 5) * 300 // 10_000)
        assert (delivered["fee"], delivered["seller_proceeds"]) == (fee, ETH // 5 - fee)
        refunded = one(engine, "licences", license_id=history.licences["refunded"])
        assert (refunded["refund"], refunded["encrypted_key"]) == (ETH // 5, None)
        rating = one(engine, "ratings", license_id=history.licences["delivered"])
        assert (rating["score"], rating["review_cid"], rating["rater"]) == (
            4,
            "bafkreview",
            history.who["reader1"],
        )
        prompt = one(engine, "prompts", token_id=history.tokens["sold"])
        assert (
            prompt["rating_count"],
            prompt["rating_sum"],
            prompt["licences_sold"],
            prompt["sales_count"],
        ) == (
            1,
            4,
            2,
            1,
        )

    def test_owed_matches_the_contract(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        p = history.protocol
        got = rows(engine, "owed")
        assert got
        for row in got:
            contract = p.compute if row["contract"] == "ComputeRental" else p.market
            assert row["owed"] == contract.functions.owed(row["account"], row["asset"]).call(), row
            assert row["owed"] == row["credited_total"] - row["withdrawn_total"]
        withdrawn = one(engine, "owed", account=history.who["p1"], asset=NATIVE, contract="ComputeRental")
        assert withdrawn["owed"] == 0 and withdrawn["withdrawn_total"] > 0

    def test_fees_per_day(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        times = {ref.number: ref.timestamp for ref, _ in history.blocks}
        expected: Counter[tuple[str, str]] = Counter()
        counts: Counter[tuple[str, str]] = Counter()
        for e in history.named("FeeCharged"):
            day = datetime.fromtimestamp(times[e.block_number], UTC).date().isoformat()
            expected[(e.asset, day)] += e.amount  # type: ignore[attr-defined]
            counts[(e.asset, day)] += 1  # type: ignore[attr-defined]
        got = {(r["asset"], r["day"]): (r["amount"], r["count"]) for r in rows(engine, "fees_daily")}
        assert got == {k: (v, counts[k]) for k, v in expected.items()}
        assert {a for a, _ in got} == {NATIVE, history.token_asset}

    def test_contract_state_and_roles(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        p, who = history.protocol, history.who
        compute = one(engine, "contract_state", contract="ComputeRental")
        assert compute["treasury"] == p.compute.functions.treasury().call() == who["admin"]
        assert compute["paused"] is False and compute["accept_window"] == 900
        assert one(engine, "contract_state", contract="PromptMarketplace")["delivery_window"] == 600
        token = one(engine, "asset_allowances", contract="PromptMarketplace", asset=history.token_asset)
        assert token["allowed"] is False
        arbiter = _hex(bytes(p.compute.functions.ARBITER_ROLE().call()))
        assert (
            one(engine, "role_members", contract="ComputeRental", role=arbiter, account=who["p3"])["active"]
            is False
        )

    def test_every_row_names_the_log_that_last_changed_it(self, engine: sa.Engine, history: History) -> None:
        index(engine, history.chain_id, history.blocks)
        by_log = {(e.block_number, e.tx_hash, e.log_index): e for e in history.events}
        for table in models.TABLES.values():
            for row in rows(engine, table.name):
                assert (row["block_number"], row["tx_hash"], row["log_index"]) in by_log, (table.name, row)


class TestExactlyOnce:
    def test_batches_of_any_size_give_the_same_read_models(
        self, engine: sa.Engine, history: History, scratch: Callable[[str], sa.Engine]
    ) -> None:
        index(engine, history.chain_id, history.blocks, batch_events=7)
        clean = scratch("clean")
        index(clean, history.chain_id, history.blocks, batch_events=100_000)
        assert compare(engine, clean).identical
        with engine.connect() as a, clean.connect() as b:
            assert stored_digests(a) == stored_digests(b)

    def test_a_batch_never_splits_a_block(self, engine: sa.Engine, history: History) -> None:
        EventStore(engine, history.chain_id).append_blocks(history.blocks)
        projector = Projector(engine, history.chain_id, batch_events=1)
        while projector.run(max_events=1):
            with engine.connect() as conn:
                position = tracked_position(conn)
                last = conn.execute(sa.select(sa.func.max(models.events.c.id))).scalar()
                nxt = conn.execute(
                    sa.select(models.events.c.block_number).where(models.events.c.id == last)
                ).scalar()
            assert position == last
            # every event of the last folded block is in
            assert sum(1 for e in history.events if e.block_number == nxt) == len(
                rows(engine, "events", block_number=nxt)
            )

    def test_a_failed_batch_leaves_nothing_and_is_redone(
        self,
        engine: sa.Engine,
        history: History,
        monkeypatch: pytest.MonkeyPatch,
        scratch: Callable[[str], sa.Engine],
    ) -> None:
        EventStore(engine, history.chain_id).append_blocks(history.blocks)
        real_apply = folds.apply
        calls = {"n": 0}

        def flaky(state: Any, event: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 40:
                raise RuntimeError("crash mid-batch")
            return real_apply(state, event)

        monkeypatch.setattr(folds, "apply", flaky)
        projector = Projector(engine, history.chain_id, batch_events=25)
        with pytest.raises(RuntimeError, match="crash mid-batch"):
            projector.run()
        with engine.connect() as conn:
            position = tracked_position(conn)
            count = conn.execute(sa.select(sa.func.count()).select_from(models.events)).scalar()
        assert 0 < position < 40 and count == position  # the failed batch left no trace
        monkeypatch.setattr(folds, "apply", real_apply)
        projector.run()
        clean = scratch("clean")
        index(clean, history.chain_id, history.blocks)
        assert compare(engine, clean).identical
        assert len(rows(engine, "events")) == len(history.events)

    def test_running_again_changes_nothing(self, engine: sa.Engine, history: History) -> None:
        projector = index(engine, history.chain_id, history.blocks)
        before = rows(engine, "jobs", order_by="job_id")
        assert projector.run() == 0
        EventStore(engine, history.chain_id).append_blocks(history.blocks)  # re-append: a no-op
        assert projector.run() == 0
        assert rows(engine, "jobs", order_by="job_id") == before


def _fork(
    blocks: list[tuple[BlockRef, list[ChainEvent]]], at: int, salt: str
) -> list[tuple[BlockRef, list[ChainEvent]]]:
    """The same logs re-mined on another branch: blocks from index `at` get new hashes."""
    out = list(blocks[:at])
    parent = blocks[at - 1][0].hash
    for ref, logs in blocks[at:]:
        new_hash = "0x" + (salt + ref.hash[2 + len(salt) :])
        new_ref = BlockRef(ref.number, new_hash, parent, ref.timestamp)
        out.append((new_ref, [dataclasses.replace(e, block_hash=new_hash) for e in logs]))
        parent = new_hash
    return out


class TestReorgs:
    """Orphaning restores the read models to exactly a clean index of the canonical chain."""

    @pytest.mark.parametrize("depth", [1, 3, 16])
    def test_orphaning_restores_read_models_exactly(
        self, engine: sa.Engine, history: History, scratch: Callable[[str], sa.Engine], depth: int
    ) -> None:
        chain_id = history.chain_id
        blocks = history.blocks
        at = len(blocks) - depth
        ancestor = blocks[at - 1][0].number
        # The orphaned branch: the last `depth` blocks with other hashes and without their last
        # log of each block (a dropped transaction).
        stale = [(ref, logs[:-1] or logs) for ref, logs in _fork(blocks, at, "dead")[at:]]
        store = EventStore(engine, chain_id)
        store.append_blocks(blocks[:at] + stale)
        projector = Projector(engine, chain_id)
        projector.run()
        orphaned = store.orphan_after(ancestor, depth=depth)
        assert orphaned == sum(len(logs) for _, logs in stale)
        store.append_blocks(blocks[at:])
        projector.run()

        clean = scratch("clean")
        index(clean, chain_id, blocks)
        report = compare(engine, clean)
        assert report.identical, report
        for table in models.TABLES.values():
            key = ",".join(c.name for c in table.primary_key.columns)
            assert rows(engine, table.name, order_by=key) == rows(clean, table.name, order_by=key), table.name
        with engine.connect() as live, clean.connect() as fresh:
            assert stored_digests(live) == stored_digests(fresh)
        # The raw event log keeps what was orphaned, flagged, and names the compensating event.
        flagged = rows(engine, "events", orphaned=True)
        assert len(flagged) == orphaned
        assert {r["block_hash"] for r in flagged} == {ref.hash for ref, _ in stale}
        assert all(r["orphaned_by"] is not None for r in flagged)
        assert len(rows(engine, "events", orphaned=False)) == len(history.events)

        # The orphaned blocks' undo entries are gone: what is left is what a clean index keeps.
        def undo(e: sa.Engine) -> list[tuple[Any, ...]]:
            return sorted(
                (r["block_number"], r["tbl"], r["row_key"], r["before"] or "") for r in rows(e, "undo_log")
            )

        assert undo(engine) == undo(clean)

    def test_a_block_that_returns_after_a_reorg_folds_again(
        self, engine: sa.Engine, history: History, scratch: Callable[[str], sa.Engine]
    ) -> None:
        chain_id, blocks = history.chain_id, history.blocks
        at = len(blocks) - 2
        ancestor = blocks[at - 1][0].number
        other = _fork(blocks, at, "beef")
        store = EventStore(engine, chain_id)
        projector = Projector(engine, chain_id)
        store.append_blocks(blocks)
        projector.run()
        store.orphan_after(ancestor, depth=2)
        store.append_blocks(other[at:])
        projector.run()
        store.orphan_after(ancestor, depth=2)
        store.append_blocks(blocks[at:])  # the first branch wins after all
        projector.run()
        clean = scratch("clean")
        index(clean, chain_id, blocks)
        assert compare(engine, clean).identical
        revived = rows(engine, "events", block_hash=blocks[-1][0].hash)
        assert sorted(r["orphaned"] for r in revived) == [False] * len(blocks[-1][1]) + [True] * len(
            blocks[-1][1]
        )

    def test_reorg_folded_in_the_same_batch_as_its_blocks(
        self, engine: sa.Engine, history: History, scratch: Callable[[str], sa.Engine]
    ) -> None:
        chain_id, blocks = history.chain_id, history.blocks
        at = len(blocks) - 4
        store = EventStore(engine, chain_id)
        store.append_blocks(_fork(blocks, at, "cafe"))
        store.orphan_after(blocks[at - 1][0].number, depth=4)
        store.append_blocks(blocks[at:])
        Projector(engine, chain_id).run()  # one batch: fold, undo, fold
        clean = scratch("clean")
        index(clean, chain_id, blocks)
        assert compare(engine, clean).identical

    def test_final_blocks_keep_no_undo_entries(self, engine: sa.Engine, history: History) -> None:
        chain_id, blocks = history.chain_id, history.blocks
        EventStore(engine, chain_id).append_blocks(blocks)
        finalized = blocks[len(blocks) // 2][0].number
        write_status(
            engine,
            chain_id=chain_id,
            indexed_head=blocks[-1][0].number,
            finalized_block=finalized,
            node_head=None,
            events_per_second=0,
        )
        Projector(engine, chain_id).run()
        kept = rows(engine, "undo_log")
        assert kept and min(r["block_number"] for r in kept) > finalized
        last = blocks[-1][0].number
        assert prune_undo(engine, last) == len([r for r in kept if r["block_number"] < last])
        assert all(r["block_number"] >= last for r in rows(engine, "undo_log"))


def test_folds_handle_every_state_changing_event() -> None:
    """A guard for new contract events: each one is folded, or listed here as raw-log only."""
    raw_only = {"Approval", "ApprovalForAll", "RoleAdminChanged"}
    assert set(events.EVENT_TYPES) - folds.handled_events() == raw_only
