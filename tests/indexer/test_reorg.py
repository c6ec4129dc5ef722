"""Reorgs made with anvil_reorg / anvil_rollback: after each, the read models equal a clean index
of the canonical chain, and the event store still holds the orphaned events, marked as such."""

# ruff: noqa: F811  (the fixtures imported from harness are requested as test parameters)

from __future__ import annotations

from typing import Any

import pytest

from chain.contracts import Protocol
from indexer.db import make_engine
from indexer.domain import LogIndexed, LogOrphaned
from indexer.errors import ReorgTooDeep
from indexer.reorg import InSync, NodeBehind, Reorged, TooDeep, compare
from indexer.store import BlockRef, EventStore
from tests.indexer.activity import Activity, Call
from tests.indexer.harness import (  # noqa: F401
    Chain,
    Databases,
    activity,
    chain,
    clean_index,
    databases,
    index_once,
    protocol,
    read_models,
    some_activity,
)

pytestmark = pytest.mark.anvil

KINDS = ("drop", "replace", "reorder", "rollback")


def _tx_json(c: Call) -> dict[str, Any]:
    return {"from": c.sender, "to": c.to, "data": c.data, "value": hex(c.value), "gas": hex(c.gas)}


def _logs_in(chain: Chain, protocol: Protocol, start: int, end: int) -> set[tuple[str, str, int]]:
    logs = chain.rpc(
        "eth_getLogs",
        [
            {
                "address": [protocol.compute.address, protocol.market.address],
                "fromBlock": hex(start),
                "toBlock": hex(end),
            }
        ],
    )
    return {(lg["blockHash"], lg["transactionHash"], int(lg["logIndex"], 16)) for lg in logs}


def make_reorg(chain: Chain, activity: Activity, depth: int, kind: str, salt: int) -> None:
    """Replace the last `depth` blocks: with empty blocks ("drop"), with other transactions
    ("replace"), with the same transactions in another order ("reorder"), or roll back and grow
    a shorter chain with other transactions ("rollback")."""
    head = chain.w3.eth.block_number
    if kind == "drop":
        chain.rpc("anvil_reorg", [depth, []])
    elif kind == "replace":
        job_id = int(activity.protocol.compute.functions.jobCount().call())
        calls = activity.mints(chain.accounts[7:9], 3, salt=salt) + activity.bids(
            job_id, chain.accounts[1:4], 2, start_price=10_000 + salt
        )
        chain.rpc("anvil_reorg", [depth, [[_tx_json(c), i % depth] for i, c in enumerate(calls)]])
    elif kind == "reorder":
        txs = [
            chain.w3.eth.get_transaction(h)
            for n in range(head - depth + 1, head + 1)
            for h in chain.w3.eth.get_block(n)["transactions"]
        ]
        rank: dict[str, int] = {}
        for tx in txs:
            rank.setdefault(tx["from"], len(rank))
        # Senders in reverse order of first appearance; each sender's own nonces stay in order.
        ordered = sorted(txs, key=lambda tx: (-rank[tx["from"]], tx["nonce"]))
        raws = [chain.rpc("eth_getRawTransactionByHash", ["0x" + bytes(tx["hash"]).hex()]) for tx in ordered]
        chain.rpc("anvil_reorg", [depth, [[raw, (depth - 1) - (i % depth)] for i, raw in enumerate(raws)]])
    elif kind == "rollback":
        chain.rpc("anvil_rollback", [depth])
        activity.resync()
        calls = activity.mints(chain.accounts[7:9], 2, salt=salt)
        activity.send_mined(calls, per_block=1)  # the new chain is shorter than the old one
    else:
        raise AssertionError(kind)
    activity.resync()


def _orphans(url: str, chain_id: int) -> tuple[set[tuple[str, str, int]], set[tuple[str, str, int]]]:
    """(logs indexed in blocks now orphaned, logs with a compensating LogOrphaned)."""
    engine = make_engine(url)
    try:
        store = EventStore(engine, chain_id)
        orphaned_blocks = store.orphaned_hashes()
        indexed: set[tuple[str, str, int]] = set()
        compensated: set[tuple[str, str, int]] = set()
        after = 0
        while batch := store.events(after, 5_000):
            for _, ev in batch:
                key = (ev.block_hash, ev.tx_hash, ev.log_index)
                if isinstance(ev, LogIndexed) and ev.block_hash in orphaned_blocks:
                    indexed.add(key)
                elif isinstance(ev, LogOrphaned):
                    compensated.add(key)
            after = batch[-1][0]
        return indexed, compensated
    finally:
        engine.dispose()


class TestReorgs:
    """The same suite on SQLite and PostgreSQL (the `databases` fixture's parameter)."""

    def test_reorgs_of_depth_1_to_16_converge_to_a_clean_index(
        self, chain: Chain, protocol: Protocol, activity: Activity, databases: Databases
    ) -> None:
        deployment = protocol.deployment
        live = databases.new()
        some_activity(activity, chain, rounds=1)
        index_once(live, deployment, [chain.url])
        providers = chain.accounts[1:4]
        job_id = int(protocol.compute.functions.jobCount().call())
        seen_orphans: set[tuple[str, str, int]] = set()
        for step, depth in enumerate(range(1, 17)):
            kind = KINDS[step % len(KINDS)]
            # `depth` fresh blocks with logs of both contracts, indexed before the reorg hits them.
            calls = []
            for i in range(depth):
                calls += activity.mints(chain.accounts[4:7], 1, salt=100 * step + i)
                calls += activity.bids(job_id, providers, 1, start_price=1_000 * step + i + 1)
            activity.send_mined(calls, per_block=2)
            index_once(live, deployment, [chain.url])
            head = chain.w3.eth.block_number
            doomed = _logs_in(chain, protocol, head - depth + 1, head)
            assert doomed

            make_reorg(chain, activity, depth, kind, salt=50_000 + step)
            if step % 3 == 0:  # sometimes the new chain grows further before the indexer looks
                activity.send_mined(activity.mints(chain.accounts[4:7], 2, salt=90_000 + step), per_block=1)
            summary = index_once(live, deployment, [chain.url])
            assert summary.reorgs == 1, (depth, kind)

            assert read_models(live) == clean_index(databases, deployment, chain.url), (depth, kind)
            indexed, compensated = _orphans(live, deployment.chain_id)
            replaced = doomed - _logs_in(chain, protocol, head - depth + 1, head)
            assert replaced <= indexed, (depth, kind)  # the store still holds them...
            assert indexed <= compensated, (depth, kind)  # ...each with its compensating event
            seen_orphans |= indexed
        assert len(seen_orphans) > 50

    def test_reorg_deeper_than_finality_halts_naming_the_block(
        self, chain: Chain, protocol: Protocol, activity: Activity, databases: Databases
    ) -> None:
        deployment = protocol.deployment
        live = databases.new()
        some_activity(activity, chain, rounds=1)
        job_id = int(protocol.compute.functions.jobCount().call())
        calls = [
            c for i in range(8) for c in activity.bids(job_id, chain.accounts[1:4], 1, start_price=7_000 + i)
        ]
        activity.send_mined(calls, per_block=1)
        index_once(live, deployment, [chain.url], finality="confirmations", confirmations=3)
        before = read_models(live)
        head = chain.w3.eth.block_number

        make_reorg(chain, activity, 6, "replace", salt=77_000)
        with pytest.raises(ReorgTooDeep) as info:
            index_once(live, deployment, [chain.url], finality="confirmations", confirmations=3)
        assert info.value.block == head - 5  # the first block that changed
        assert info.value.limit == 3
        assert f"block {head - 5}" in str(info.value)
        assert read_models(live) == before  # stopped: nothing half-applied, nothing diverged

    def test_rollback_without_new_blocks_waits_for_the_node(
        self, chain: Chain, protocol: Protocol, activity: Activity, databases: Databases
    ) -> None:
        """A node whose head is below ours contradicts nothing yet: the indexer waits (it might
        just lag) and handles the reorg once the node's chain shows different blocks."""
        deployment = protocol.deployment
        live = databases.new()
        some_activity(activity, chain, rounds=2)
        index_once(live, deployment, [chain.url])
        before = read_models(live)
        chain.rpc("anvil_rollback", [3])
        activity.resync()
        assert index_once(live, deployment, [chain.url]).reorgs == 0
        assert read_models(live) == before
        activity.send_mined(activity.mints(chain.accounts[4:7], 6, salt=31_337), per_block=1)
        assert index_once(live, deployment, [chain.url]).reorgs == 1
        assert read_models(live) == clean_index(databases, deployment, chain.url)


def _ref(n: int, tag: str) -> BlockRef:
    return BlockRef(number=n, hash=f"0x{tag}{n:02d}", parent_hash=f"0x{tag}{n - 1:02d}", timestamp=n)


class TestCompare:
    """The pure decision, on made-up chains."""

    def test_in_sync(self) -> None:
        ours = [_ref(n, "a") for n in range(10, 15)]
        assert compare(ours, {r.number: r for r in ours}, finalized=10) == InSync()

    def test_finds_the_common_ancestor(self) -> None:
        ours = [_ref(n, "a") for n in range(10, 15)]
        theirs = {n: (_ref(n, "a") if n <= 12 else _ref(n, "b")) for n in range(10, 16)}
        verdict = compare(ours, theirs, finalized=10)
        assert isinstance(verdict, Reorged)
        assert verdict.ancestor == _ref(12, "a") and verdict.depth == 2 and verdict.first_changed == 13

    def test_a_lagging_node_is_not_a_reorg(self) -> None:
        ours = [_ref(n, "a") for n in range(10, 15)]
        theirs: dict[int, BlockRef | None] = {n: (_ref(n, "a") if n <= 12 else None) for n in range(10, 15)}
        assert compare(ours, theirs, finalized=10) == NodeBehind(node_has_up_to=12)

    def test_a_changed_final_block_is_too_deep(self) -> None:
        ours = [_ref(n, "a") for n in range(10, 15)]
        theirs = {n: _ref(n, "b") for n in range(10, 15)}
        assert compare(ours, theirs, finalized=10) == TooDeep(block=10, depth=5, limit=4)
