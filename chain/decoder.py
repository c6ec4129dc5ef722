"""Turns raw logs into typed event dataclasses (chain/events.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chain import artifacts, events
from chain.codegen import canonical_type, event_signature, snake
from chain.errors import ChainError
from chain.provenance import ChainEvent


class UnknownEvent(ChainError, LookupError):
    """A log whose emitter or topic is not one of our contracts' events."""


class LogDecoder:
    """Decodes logs of the protocol contracts deployed at known addresses.

    `addresses` maps contract name (e.g. "ComputeRental") to its address.
    """

    def __init__(self, addresses: Mapping[str, str], chain_id: int) -> None:
        self.chain_id = chain_id
        self._by_address: dict[str, str] = {to_checksum_address(a): n for n, a in addresses.items()}
        self._by_topic: dict[tuple[str, bytes], tuple[type[ChainEvent], list[dict[str, Any]]]] = {}
        for contract in addresses:
            for entry in artifacts.load(contract).abi:
                if entry.get("type") != "event" or entry.get("anonymous"):
                    continue
                topic0 = keccak(text=event_signature(entry))
                self._by_topic[(contract, topic0)] = (events.EVENT_TYPES[entry["name"]], entry["inputs"])

    @property
    def addresses(self) -> list[str]:
        return list(self._by_address)

    def topics_for(self, contract: str) -> list[str]:
        return ["0x" + t.hex() for (c, t) in self._by_topic if c == contract]

    def decode(self, log: Mapping[str, Any]) -> ChainEvent:
        address = to_checksum_address(log["address"])
        contract = self._by_address.get(address)
        if contract is None:
            raise UnknownEvent(f"log from unknown contract {address}")
        topics = [_as_bytes(t) for t in log["topics"]]
        if not topics:
            raise UnknownEvent(f"anonymous log from {contract}")
        found = self._by_topic.get((contract, topics[0]))
        if found is None:
            raise UnknownEvent(f"unknown event topic 0x{topics[0].hex()} from {contract}")
        cls, inputs = found
        indexed = [i for i in inputs if i.get("indexed")]
        plain = [i for i in inputs if not i.get("indexed")]
        if len(topics) - 1 != len(indexed):
            raise UnknownEvent(
                f"{cls.NAME} log has {len(topics) - 1} indexed topics, expected {len(indexed)}"
            )
        values: dict[str, Any] = {}
        for inp, topic in zip(indexed, topics[1:], strict=True):
            (values[snake(inp["name"])],) = abi_decode([canonical_type(inp)], topic)
        decoded = abi_decode([canonical_type(i) for i in plain], _as_bytes(log["data"]))
        for inp, value in zip(plain, decoded, strict=True):
            values[snake(inp["name"])] = value
        fields = {snake(i["name"]): _normalise(i, values[snake(i["name"])]) for i in inputs}
        return cls(
            contract=contract,
            address=address,
            chain_id=self.chain_id,
            block_number=int(log["blockNumber"]),
            block_hash=_hex(log["blockHash"]),
            tx_hash=_hex(log["transactionHash"]),
            log_index=int(log["logIndex"]),
            **fields,
        )

    def decode_all(self, logs: Iterable[Mapping[str, Any]]) -> list[ChainEvent]:
        return [self.decode(log) for log in logs]


def _normalise(inp: Mapping[str, Any], value: Any) -> Any:
    t = inp["type"]
    if t == "address":
        return to_checksum_address(value)
    if t == "tuple":
        return {snake(c["name"]): _normalise(c, v) for c, v in zip(inp["components"], value, strict=True)}
    return value


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    s = str(value)
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def _hex(value: Any) -> str:
    return "0x" + _as_bytes(value).hex()
