"""Drives real transactions through both contracts on anvil, covering every event type, and
returns the decoded logs grouped by block, as the runner would hand them to the store."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3

from chain.contracts import Protocol
from chain.decoder import LogDecoder
from chain.provenance import ChainEvent
from chain.tx import TxSender
from indexer.store import BlockRef
from tests.chain.flows import NATIVE, PARAMS, advance, now

ETH = 10**18
ARBITER_ROLE = Web3.keccak(text="ARBITER_ROLE")


@dataclass
class History:
    protocol: Protocol
    blocks: list[tuple[BlockRef, list[ChainEvent]]]
    jobs: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    licences: dict[str, int] = field(default_factory=dict)
    who: dict[str, str] = field(default_factory=dict)
    token_asset: str = ""

    @property
    def chain_id(self) -> int:
        return self.protocol.deployment.chain_id

    @property
    def events(self) -> list[ChainEvent]:
        return [e for _, logs in self.blocks for e in logs]

    def named(self, name: str) -> list[ChainEvent]:
        return [e for e in self.events if e.name == name]


def decoder_for(protocol: Protocol) -> LogDecoder:
    d = protocol.deployment
    return LogDecoder({n: d.contracts[n] for n in ("ComputeRental", "PromptMarketplace")}, d.chain_id)


def blocks_since(protocol: Protocol, from_block: int) -> list[tuple[BlockRef, list[ChainEvent]]]:
    """Every block from `from_block` to the head that holds protocol logs, with its decoded logs."""
    w3 = protocol.w3
    logs = w3.eth.get_logs(
        {
            "fromBlock": from_block,
            "toBlock": "latest",
            "address": [protocol.compute.address, protocol.market.address],
        }
    )
    decoded = decoder_for(protocol).decode_all(logs)
    by_block: dict[int, list[ChainEvent]] = defaultdict(list)
    for ev in decoded:
        by_block[ev.block_number].append(ev)
    out = []
    for number in sorted(by_block):
        b = w3.eth.get_block(number)
        ref = BlockRef(
            number=number,
            hash="0x" + bytes(b["hash"]).hex(),
            parent_hash="0x" + bytes(b["parentHash"]).hex(),
            timestamp=int(b["timestamp"]),
        )
        out.append((ref, sorted(by_block[number], key=lambda e: e.log_index)))
    return out


def _spec(n: int) -> bytes:
    return hashlib.sha256(f"spec {n}".encode()).digest()


def drive(protocol: Protocol, senders: list[TxSender]) -> History:
    """Every flow of both contracts, with time travel for the timeouts."""
    w3 = protocol.w3
    c, m, token = protocol.compute, protocol.market, protocol.token
    assert token is not None
    admin, client, p1, p2, creator, buyer, reader1, reader2, p3 = senders[:9]
    h = History(protocol=protocol, blocks=[])
    h.who = {
        "admin": admin.address,
        "client": client.address,
        "p1": p1.address,
        "p2": p2.address,
        "p3": p3.address,
        "creator": creator.address,
        "buyer": buyer.address,
        "reader1": reader1.address,
        "reader2": reader2.address,
        "treasury": protocol.deployment.params["treasury"],
    }
    h.token_asset = token.address

    def post(max_price: int = ETH, asset: str = NATIVE, timeout: int = 3600) -> int:
        value = max_price if asset == NATIVE else 0
        client.transact(
            c.functions.postJob(asset, max_price, _spec(now(w3)), "bafkspec", now(w3) + 600, timeout),
            value=value,
        )
        return int(c.functions.jobCount().call())

    def assign(provider: TxSender, price: int, max_price: int = ETH, asset: str = NATIVE) -> int:
        job = post(max_price, asset)
        provider.transact(c.functions.placeBid(job, price + 1))
        provider.transact(c.functions.placeBid(job, price))  # replaces the first bid
        client.transact(c.functions.acceptBid(job, provider.address, price))
        return job

    def submit(provider: TxSender, job: int) -> None:
        provider.transact(
            c.functions.submitResult(job, hashlib.sha256(f"res {job}".encode()).digest(), "bafkres")
        )

    # ---- admin
    admin.transact(c.functions.grantRole(ARBITER_ROLE, admin.address))  # already held: no event
    admin.transact(c.functions.grantRole(ARBITER_ROLE, p3.address))
    admin.transact(c.functions.revokeRole(ARBITER_ROLE, p3.address))
    admin.transact(c.functions.pause())
    admin.transact(c.functions.unpause())
    admin.transact(m.functions.setDeliveryWindow(PARAMS.delivery_window))

    # ---- providers
    p1.transact(c.functions.registerProvider("bafkp1"), value=2 * ETH)
    p1.transact(c.functions.addStake(), value=ETH)
    p1.transact(c.functions.updateProviderMetadata("bafkp1v2"))
    p3.transact(c.functions.registerProvider("bafkp3"), value=ETH)
    p2.transact(c.functions.registerProvider("bafkp2"), value=ETH)
    p2.transact(c.functions.requestUnbond())
    advance(w3, PARAMS.unbonding_delay + 1)
    p2.transact(c.functions.completeUnbond())

    # ---- jobs
    h.jobs["finalized"] = job = assign(p1, 6 * ETH // 10)
    submit(p1, job)
    advance(w3, PARAMS.challenge_window + 1)
    client.transact(c.functions.finalize(job))

    h.jobs["accepted"] = job = assign(p1, 5 * ETH // 10)
    submit(p1, job)
    client.transact(c.functions.acceptResult(job))

    h.jobs["resolved"] = job = assign(p1, 8 * ETH // 10)
    submit(p1, job)
    client.transact(c.functions.dispute(job, "bafkreason"))
    admin.transact(c.functions.resolveDispute(job, 6000))

    h.jobs["timed_out"] = job = assign(p1, 4 * ETH // 10)
    submit(p1, job)
    client.transact(c.functions.dispute(job, "bafkreason2"))
    advance(w3, PARAMS.arbiter_timeout + 1)
    client.transact(c.functions.resolveDisputeTimeout(job))

    h.jobs["failed"] = job = assign(p3, 3 * ETH // 10)
    advance(w3, 3600 + 1)
    client.transact(c.functions.failJob(job))

    h.jobs["cancelled"] = job = post()
    client.transact(c.functions.cancelJob(job))

    h.jobs["expired"] = job = post()
    advance(w3, 600 + PARAMS.accept_window + 1)
    client.transact(c.functions.expireJob(job))

    # ERC-20 job, completed.
    admin.transact(token.functions.mint(client.address, 10 * ETH))
    client.transact(token.functions.approve(c.address, 10 * ETH))
    h.jobs["erc20"] = job = assign(p1, 2 * ETH, max_price=3 * ETH, asset=token.address)
    submit(p1, job)
    client.transact(c.functions.acceptResult(job))

    # The accept window is snapshotted at posting: a job posted before setParams keeps the old one.
    h.jobs["old_window"] = post()
    new = PARAMS.model_copy(update={"accept_window": 900})
    admin.transact(c.functions.setParams(new.compute_tuple()))
    h.jobs["new_window"] = post()

    # ---- withdrawals
    p1.transact(c.functions.withdraw(NATIVE))
    p1.transact(c.functions.withdraw(token.address))
    client.transact(c.functions.withdraw(NATIVE))

    # ---- prompts
    content = hashlib.sha256(b"prompt one").digest()
    creator.transact(m.functions.mint("bafkmeta1", content, 500))
    h.tokens["sold"] = token_id = int(m.functions.promptCount().call())
    creator.transact(m.functions.list(token_id, NATIVE, ETH))
    creator.transact(m.functions.cancelListing(token_id))
    creator.transact(m.functions.list(token_id, NATIVE, 2 * ETH))
    creator.transact(m.functions.list(token_id, NATIVE, ETH))  # replaces the listing
    creator.transact(m.functions.setLicenseTerms(token_id, NATIVE, ETH // 10))
    buyer.transact(m.functions.buy(token_id, ETH), value=ETH)  # clears the terms too
    buyer.transact(m.functions.setLicenseTerms(token_id, NATIVE, ETH // 5))
    reader1.transact(m.functions.buyLicense(token_id, ETH // 5), value=ETH // 5)
    h.licences["delivered"] = lic = int(m.functions.licenseCount().call())
    buyer.transact(m.functions.deliverKey(lic, b"\x04" + b"k" * 64))
    reader1.transact(m.functions.rate(lic, 4, "bafkreview"))
    reader2.transact(m.functions.buyLicense(token_id, ETH // 5), value=ETH // 5)
    h.licences["refunded"] = lic = int(m.functions.licenseCount().call())
    advance(w3, PARAMS.delivery_window + 1)
    reader2.transact(m.functions.refundLicense(lic))

    creator.transact(m.functions.mint("bafkmeta2", hashlib.sha256(b"prompt two").digest(), 0))
    h.tokens["transferred"] = token_id = int(m.functions.promptCount().call())
    creator.transact(m.functions.list(token_id, NATIVE, ETH))
    creator.transact(m.functions.setLicenseTerms(token_id, token.address, ETH))
    creator.transact(m.functions.approve(buyer.address, token_id))
    creator.transact(m.functions.setApprovalForAll(buyer.address, True))
    creator.transact(m.functions.transferFrom(creator.address, reader2.address, token_id))

    # ---- admin, the rest
    admin.transact(m.functions.setAssetAllowed(token.address, False))
    admin.transact(c.functions.setTreasury(admin.address))
    creator.transact(m.functions.withdraw(NATIVE))

    h.blocks = blocks_since(protocol, protocol.deployment.deploy_block)
    return h


def onchain_job(protocol: Protocol, job_id: int) -> dict[str, Any]:
    j = protocol.compute.functions.getJob(job_id).call()
    keys = [
        "client",
        "asset",
        "provider",
        "state",
        "bid_deadline",
        "accept_deadline",
        "execution_timeout",
        "execution_deadline",
        "challenge_end",
        "dispute_deadline",
        "amount",
        "spec_hash",
        "result_hash",
    ]
    return dict(zip(keys, j, strict=True))


JOB_STATES = [
    "none",
    "open",
    "assigned",
    "submitted",
    "completed",
    "cancelled",
    "expired",
    "failed",
    "disputed",
    "resolved",
]
LICENCE_STATES = ["none", "pending", "delivered", "refunded"]
