"""Synthetic but valid chains of contract events, for store and fold tests that need no anvil."""

from __future__ import annotations

import hashlib
from typing import Any

from chain import events as E
from chain.deploy import ProtocolParams
from chain.provenance import ChainEvent
from indexer.store import BlockRef

CHAIN_ID = 31337
COMPUTE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
MARKET = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
NATIVE = "0x0000000000000000000000000000000000000000"
CLIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PROVIDER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
TREASURY = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
ETH = 10**18
#: ComputeRental's params as its ParamsUpdated event carries them: the local dev chain's.
PARAMS = ProtocolParams.local().model_dump(exclude={"delivery_window"})


def block_hash(number: int, branch: str = "") -> str:
    return "0x" + hashlib.sha256(f"block {number} {branch}".encode()).hexdigest()


def tx_hash(number: int, i: int, branch: str = "") -> str:
    return "0x" + hashlib.sha256(f"tx {number} {i} {branch}".encode()).hexdigest()


class Builder:
    """Appends blocks one at a time; each `block(...)` call takes (event class, fields) pairs."""

    def __init__(self, start: int = 1, t0: int = 1_700_000_000, branch: str = "") -> None:
        self.number = start - 1
        self.parent = block_hash(start - 1, "")
        self.t0 = t0
        self.branch = branch
        self.blocks: list[tuple[BlockRef, list[ChainEvent]]] = []
        #: Which contract emits the events both contracts have (Credited, FeeCharged, ...).
        self.shared_contract = "ComputeRental"

    def fork(self, branch: str) -> Builder:
        """A builder continuing from this one's head on another branch."""
        other = Builder(self.number + 1, self.t0, branch)
        other.parent = self.parent
        return other

    def block(self, *logs: tuple[type[ChainEvent], dict[str, Any]], dt: int = 12) -> BlockRef:
        self.number += 1
        h = block_hash(self.number, self.branch)
        ref = BlockRef(self.number, h, self.parent, self.t0 + self.number * dt)
        out = []
        for i, (cls, fields) in enumerate(logs):
            contract = self.shared_contract if len(cls.CONTRACTS) > 1 else cls.CONTRACTS[0]
            address = COMPUTE if contract == "ComputeRental" else MARKET
            out.append(
                cls(
                    contract=contract,
                    address=address,
                    chain_id=CHAIN_ID,
                    block_number=self.number,
                    block_hash=h,
                    tx_hash=tx_hash(self.number, i, self.branch),
                    log_index=i,
                    **fields,
                )
            )
        self.blocks.append((ref, out))
        self.parent = h
        return ref


def job_posted(
    job_id: int, amount: int = ETH, bid_deadline: int = 1_800_000_000
) -> tuple[type[ChainEvent], dict[str, Any]]:
    return E.JobPosted, {
        "job_id": job_id,
        "client": CLIENT,
        "asset": NATIVE,
        "amount": amount,
        "spec_hash": hashlib.sha256(f"spec {job_id}".encode()).digest(),
        "spec_cid": f"bafkspec{job_id}",
        "bid_deadline": bid_deadline,
        "execution_timeout": 3600,
    }


def credited(account: str, amount: int) -> tuple[type[ChainEvent], dict[str, Any]]:
    return E.Credited, {"account": account, "asset": NATIVE, "amount": amount}


def simple_chain(n_blocks: int = 6) -> Builder:
    """Params, a provider, and a job per block with a bid and a credit."""
    b = Builder()
    b.block(
        (E.ParamsUpdated, {"params": PARAMS}), (E.TreasuryUpdated, {"previous": NATIVE, "current": TREASURY})
    )
    b.block((E.ProviderRegistered, {"provider": PROVIDER, "stake": ETH, "metadata_cid": "bafkp"}))
    for job in range(1, n_blocks - 1):
        b.block(
            job_posted(job),
            (E.BidPlaced, {"job_id": job, "provider": PROVIDER, "price": ETH // 2}),
            credited(CLIENT, job),
        )
    return b
