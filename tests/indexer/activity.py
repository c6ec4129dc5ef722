"""Generates on-chain activity quickly through the real contracts, for indexer tests and benches.

Uses anvil's unlocked dev accounts (eth_sendTransaction, signed by anvil), many transactions per
JSON-RPC batch, and optionally many transactions per block (automine off, then evm_mine)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.providers import HTTPProvider
from web3.types import RPCEndpoint

from chain.contracts import Protocol
from chain.deploy import ProtocolParams

NATIVE = "0x0000000000000000000000000000000000000000"
PARAMS = ProtocolParams.local()
MAX_FEE = 50 * 10**9
#: anvil arguments for chains that take many transactions per block: a block gas limit far above
#: what we put in a block keeps the EIP-1559 base fee from climbing (full blocks raise it 12.5%
#: each, and pending transactions whose max fee it passes are dropped from the pool).
ANVIL_ARGS = ["--gas-limit", "3000000000", "--base-fee", "1000"]


def encoder(contract: Contract, fn_name: str) -> Any:
    """A fast calldata encoder for `fn_name` (web3's encode_abi is ~2 ms a call)."""
    entries: list[dict[str, Any]] = [dict(e) for e in contract.abi]
    (abi,) = [e for e in entries if e.get("type") == "function" and e["name"] == fn_name]
    types = [_type(i) for i in abi["inputs"]]
    selector = keccak(text=f"{fn_name}({','.join(types)})")[:4]

    def encode(*args: Any) -> str:
        return "0x" + (selector + abi_encode(types, list(args))).hex()

    return encode


def _type(inp: dict[str, Any]) -> str:
    t = str(inp["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in inp["components"]) + ")" + t[len("tuple") :]
    return t


@dataclass(frozen=True)
class Call:
    sender: str
    to: str
    data: str
    value: int = 0
    gas: int = 300_000


@dataclass
class Activity:
    protocol: Protocol
    accounts: Sequence[str]
    batch_size: int = 500
    _provider: HTTPProvider = field(init=False)
    _nonces: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        uri = str(self.protocol.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
        self._provider = HTTPProvider(
            uri, request_kwargs={"timeout": 120}, exception_retry_configuration=None
        )

    @property
    def w3(self) -> Web3:
        return self.protocol.w3

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        resp = self._provider.make_request(RPCEndpoint(method), params or [])
        if "error" in resp:
            raise RuntimeError(f"{method}: {resp['error']}")
        return resp["result"]

    # ------------------------------------------------------------ building calls

    def register_providers(self, providers: Iterable[str]) -> list[Call]:
        c = self.protocol.compute
        out = []
        for p in providers:
            if not c.functions.isActiveProvider(p).call():
                data = c.encode_abi("registerProvider", ["bafkreiprovider"])
                out.append(Call(p, c.address, data, value=PARAMS.min_stake))
        return out

    def post_job(self, client: str, max_price: int = 10**18, bid_window: int = 20 * 3600) -> Call:
        c = self.protocol.compute
        deadline = int(self.w3.eth.get_block("latest")["timestamp"]) + bid_window
        data = c.encode_abi(
            "postJob", [NATIVE, max_price, hashlib.sha256(b"spec").digest(), "bafkreispec", deadline, 3600]
        )
        return Call(client, c.address, data, value=max_price)

    def bids(self, job_id: int, providers: Sequence[str], n: int, *, start_price: int = 1) -> list[Call]:
        c = self.protocol.compute
        enc = encoder(c, "placeBid")
        return [
            Call(providers[i % len(providers)], c.address, enc(job_id, start_price + i), gas=120_000)
            for i in range(n)
        ]

    def mints(self, creators: Sequence[str], n: int, *, salt: int = 0) -> list[Call]:
        m = self.protocol.market
        enc = encoder(m, "mint")
        out = []
        for i in range(n):
            h = hashlib.sha256(f"prompt-{salt}-{i}".encode()).digest()
            out.append(Call(creators[i % len(creators)], m.address, enc(f"bafkreiprompt{salt}x{i}", h, 500)))
        return out

    # ------------------------------------------------------------------ sending

    def send(self, calls: Sequence[Call]) -> list[str]:
        """Sends `calls` in JSON-RPC batches; returns their tx hashes (mined per the node's mode)."""
        hashes: list[str] = []
        for i in range(0, len(calls), self.batch_size):
            chunk = calls[i : i + self.batch_size]
            reqs = [
                (
                    "eth_sendTransaction",
                    [
                        {
                            "from": c.sender,
                            "to": c.to,
                            "data": c.data,
                            "value": hex(c.value),
                            "gas": hex(c.gas),
                            "maxFeePerGas": hex(MAX_FEE),
                            "maxPriorityFeePerGas": "0x1",
                            "nonce": hex(self._nonce(c.sender)),
                        }
                    ],
                )
                for c in chunk
            ]
            resp = self._provider.make_batch_request(reqs)  # type: ignore[arg-type]
            assert isinstance(resp, list), resp
            for r in resp:
                if "error" in r:
                    raise RuntimeError(f"eth_sendTransaction: {r['error']}")
                hashes.append(r["result"])
        return hashes

    def _nonce(self, sender: str) -> int:
        # NOTE: explicit nonces: anvil picks the same pending nonce twice inside one batch.
        if sender not in self._nonces:
            self._nonces[sender] = int(self.rpc("eth_getTransactionCount", [sender, "pending"]), 16)
        n = self._nonces[sender]
        self._nonces[sender] = n + 1
        return n

    def resync(self) -> None:
        """Forget cached nonces (after a reorg or rollback changed the chain)."""
        self._nonces.clear()

    def send_mined(self, calls: Sequence[Call], *, per_block: int | None = None) -> int:
        """Sends `calls` with automine off and mines them, `per_block` at a time (default: as
        many as fit). Returns the number of blocks mined. Reverts raise."""
        self.rpc("evm_setAutomine", [False])
        blocks = 0
        try:
            step = per_block or len(calls) or 1
            for i in range(0, len(calls), step):
                hashes = self.send(calls[i : i + step])
                while True:
                    self.rpc("evm_mine", [])
                    blocks += 1
                    pending = int(self.rpc("txpool_status")["pending"], 16)
                    if pending == 0:
                        break
                self._check(hashes[-1:])
        finally:
            self.rpc("evm_setAutomine", [True])
        return blocks

    def _check(self, hashes: Sequence[str]) -> None:
        for h in hashes:
            receipt = self.rpc("eth_getTransactionReceipt", [h])
            if receipt is None or int(receipt["status"], 16) != 1:
                raise RuntimeError(f"transaction {h} failed or was not mined: {receipt}")
