"""Turns raw logs into typed event dataclasses (chain/events.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
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


#: Checksumming hashes the address (keccak): the same few addresses recur in every log.
_checksum = lru_cache(maxsize=65_536)(to_checksum_address)

_Reader = Callable[[bytes], Any]


def _word_reader(abi_type: str) -> _Reader | None:
    """A decoder for one 32-byte ABI word of a static elementary type, or None."""
    if abi_type == "address":
        return lambda w: _checksum("0x" + w[12:].hex())
    if abi_type.startswith("uint"):
        return lambda w: int.from_bytes(w, "big")
    if abi_type == "bool":
        return lambda w: w[31] == 1
    if abi_type == "bytes32":
        return bytes
    return None


class _Plan:
    """How to decode one event of one contract, worked out once.

    NOTE: eth_abi builds and runs a decoder tree per call (~60 us for three fields); our events
    are static words plus the odd string/bytes, which plain slicing decodes in a few us. Events
    with any other type (the params tuple) go through eth_abi as before."""

    def __init__(self, cls: type[ChainEvent], inputs: list[dict[str, Any]]) -> None:
        self.cls = cls
        self.inputs = inputs
        self.indexed = [(snake(i["name"]), canonical_type(i), i) for i in inputs if i.get("indexed")]
        self.plain = [(snake(i["name"]), canonical_type(i), i) for i in inputs if not i.get("indexed")]
        self.plain_types = [t for _, t, _ in self.plain]
        self.topic_readers = [_word_reader(t) for _, t, _ in self.indexed]
        self.data_readers = [_word_reader(t) for _, t, _ in self.plain]
        self.fast = all(r is not None for r in self.topic_readers) and all(
            r is not None or t in ("string", "bytes")
            for (_, t, _), r in zip(self.plain, self.data_readers, strict=True)
        )
        #: Field names in ABI order (the order of the event's fields).
        self.names = tuple(snake(i["name"]) for i in inputs)
        self.topic_steps = tuple(
            (name, reader) for (name, _, _), reader in zip(self.indexed, self.topic_readers, strict=True)
        )
        self.data_steps = tuple(
            (name, abi_type, reader, 32 * k)
            for k, ((name, abi_type, _), reader) in enumerate(zip(self.plain, self.data_readers, strict=True))
        )


class LogDecoder:
    """Decodes logs of the protocol contracts deployed at known addresses.

    `addresses` maps contract name (e.g. "ComputeRental") to its address.
    """

    def __init__(self, addresses: Mapping[str, str], chain_id: int) -> None:
        self.chain_id = chain_id
        self._by_address: dict[str, str] = {to_checksum_address(a): n for n, a in addresses.items()}
        self._by_topic: dict[tuple[str, bytes], tuple[type[ChainEvent], list[dict[str, Any]]]] = {}
        self._plans: dict[tuple[str, bytes], _Plan] = {}
        for contract in addresses:
            for entry in artifacts.load(contract).abi:
                if entry.get("type") != "event" or entry.get("anonymous"):
                    continue
                topic0 = keccak(text=event_signature(entry))
                self._by_topic[(contract, topic0)] = (events.EVENT_TYPES[entry["name"]], entry["inputs"])
                self._plans[(contract, topic0)] = _Plan(events.EVENT_TYPES[entry["name"]], entry["inputs"])

    @property
    def addresses(self) -> list[str]:
        return list(self._by_address)

    def topics_for(self, contract: str) -> list[str]:
        return ["0x" + t.hex() for (c, t) in self._by_topic if c == contract]

    def decode(self, log: Mapping[str, Any]) -> ChainEvent:
        address = _checksum(log["address"])
        contract = self._by_address.get(address)
        if contract is None:
            raise UnknownEvent(f"log from unknown contract {address}")
        topics = [_as_bytes(t) for t in log["topics"]]
        if not topics:
            raise UnknownEvent(f"anonymous log from {contract}")
        plan = self._plans.get((contract, topics[0]))
        if plan is None:
            raise UnknownEvent(f"unknown event topic 0x{topics[0].hex()} from {contract}")
        if len(topics) - 1 != len(plan.indexed):
            raise UnknownEvent(
                f"{plan.cls.NAME} log has {len(topics) - 1} indexed topics, expected {len(plan.indexed)}"
            )
        data = _as_bytes(log["data"])
        fields = self._fast(plan, topics, data) if plan.fast else None
        if fields is None:
            fields = self._slow(plan, topics, data)
        return plan.cls(
            contract=contract,
            address=address,
            chain_id=self.chain_id,
            block_number=int(log["blockNumber"]),
            block_hash=_hex(log["blockHash"]),
            tx_hash=_hex(log["transactionHash"]),
            log_index=int(log["logIndex"]),
            **fields,
        )

    @staticmethod
    def _fast(plan: _Plan, topics: list[bytes], data: bytes) -> dict[str, Any] | None:
        """Slices the words; None (use eth_abi) if anything is out of bounds or non-canonical."""
        if len(data) < 32 * len(plan.plain) or any(len(t) != 32 for t in topics):
            return None
        values: dict[str, Any] = {}
        for (name, reader), topic in zip(plan.topic_steps, topics[1:], strict=True):
            values[name] = reader(topic)  # type: ignore[misc]
        for name, abi_type, reader, at in plan.data_steps:
            word = data[at : at + 32]
            if reader is not None:
                values[name] = reader(word)
                continue
            offset = int.from_bytes(word, "big")
            if offset + 32 > len(data):
                return None
            length = int.from_bytes(data[offset : offset + 32], "big")
            raw = data[offset + 32 : offset + 32 + length]
            if len(raw) != length:
                return None
            try:
                values[name] = raw.decode() if abi_type == "string" else bytes(raw)
            except UnicodeDecodeError:
                return None
        return {name: values[name] for name in plan.names}

    @staticmethod
    def _slow(plan: _Plan, topics: list[bytes], data: bytes) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for (name, abi_type, _), topic in zip(plan.indexed, topics[1:], strict=True):
            (values[name],) = abi_decode([abi_type], topic)
        for (name, _, _), value in zip(plan.plain, abi_decode(plan.plain_types, data), strict=True):
            values[name] = value
        return {name: _normalise(i, values[name]) for name, i in zip(plan.names, plan.inputs, strict=True)}

    def decode_all(self, logs: Iterable[Mapping[str, Any]]) -> list[ChainEvent]:
        return [self.decode(log) for log in logs]


def _normalise(inp: Mapping[str, Any], value: Any) -> Any:
    t = inp["type"]
    if t == "address":
        return _checksum(value)
    if t == "tuple":
        return {snake(c["name"]): _normalise(c, v) for c, v in zip(inp["components"], value, strict=True)}
    return value


def _as_bytes(value: Any) -> bytes:
    if type(value) is str:
        # The usual case (JSON-RPC hex): no isinstance chain, no str() copy.
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    s = str(value)
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def _hex(value: Any) -> str:
    return "0x" + _as_bytes(value).hex()
