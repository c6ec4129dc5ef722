"""Drives real transactions through both contracts, for tests that need on-chain history."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from web3 import Web3

from chain.contracts import Protocol
from chain.deploy import ProtocolParams
from chain.tx import SentTx, TxSender

NATIVE = "0x0000000000000000000000000000000000000000"
PARAMS = ProtocolParams.local()


def advance(w3: Web3, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


@dataclass
class JobFlow:
    protocol: Protocol
    client: TxSender
    provider: TxSender

    def ensure_provider(self) -> None:
        c = self.protocol.compute
        if not c.functions.isActiveProvider(self.provider.address).call():
            self.provider.transact(
                c.functions.registerProvider("bafkreiprovidercaps"), value=PARAMS.min_stake
            )

    def post(self, max_price: int = 10**18, spec: bytes = b"{}") -> tuple[int, SentTx]:
        c = self.protocol.compute
        w3 = self.protocol.w3
        tx = self.client.transact(
            c.functions.postJob(
                NATIVE, max_price, hashlib.sha256(spec).digest(), "bafkreispec", now(w3) + 600, 3600
            ),
            value=max_price,
        )
        job_id = int(c.functions.jobCount().call())
        return job_id, tx

    def assign(self, price: int = 6 * 10**17, max_price: int = 10**18) -> int:
        self.ensure_provider()
        c = self.protocol.compute
        job_id, _ = self.post(max_price)
        self.provider.transact(c.functions.placeBid(job_id, price))
        self.client.transact(c.functions.acceptBid(job_id, self.provider.address, price))
        return job_id

    def complete(self, price: int = 6 * 10**17) -> int:
        c = self.protocol.compute
        job_id = self.assign(price)
        self.provider.transact(c.functions.submitResult(job_id, b"\x11" * 32, "bafkreiresult"))
        advance(self.protocol.w3, PARAMS.challenge_window + 1)
        self.client.transact(c.functions.finalize(job_id))
        return job_id
