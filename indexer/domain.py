"""Domain events of the indexer's event store, and how they are stored.

Each contract log becomes one `LogIndexed` event. When a reorg drops the log's block from the
canonical chain, a compensating `LogOrphaned` event is appended: history is never deleted.

Both are `eventsourcing` domain events. Their originator is the log itself, identified by
`(chain_id, block_hash, tx_hash, log_index)`, so the library's unique
`(originator_id, originator_version)` index is what makes appending the same log twice
impossible. A log's versions alternate: `LogIndexed` is version `2g + 1` and its `LogOrphaned`
version `2g + 2`, where `g` counts how often its block had been orphaned before (a block can
return to the canonical chain after a reorg is itself reorged away).
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, UUIDAsHex
from eventsourcing.utils import get_topic

from chain import events as chain_events
from chain.provenance import ChainEvent

#: Namespace of the uuid5 originator ids of logs. Never change it: stored ids depend on it.
LOG_NAMESPACE = uuid.UUID("6c0b6f1e-5a52-4f4e-9d1e-a5ce9d0e1a17")


def log_originator_id(chain_id: int, block_hash: str, tx_hash: str, log_index: int) -> uuid.UUID:
    """The originator id of one log in one block: the same log in another block is another one.
    (`uuid.uuid5(LOG_NAMESPACE, "<chain_id>:<block_hash>:<tx_hash>:<log_index>")`, lower-case.)"""
    name = f"{chain_id}:{block_hash.lower()}:{tx_hash.lower()}:{log_index}".encode()
    return uuid.UUID(bytes=hashlib.sha1(_NS_BYTES + name).digest()[:16], version=5)


_NS_BYTES = LOG_NAMESPACE.bytes


def block_datetime(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass(frozen=True)
class LogIndexed(DomainEvent):
    """A log of one of our contracts, as found in a canonical block.

    `timestamp` is the block's timestamp (never the indexer's clock), so the store's content is
    a function of the chain alone.
    """

    chain_id: int
    block_number: int
    block_hash: str
    block_timestamp: int
    tx_hash: str
    log_index: int
    contract: str
    address: str
    event: str
    #: The event's own fields, JSON-ready (`ChainEvent.args()`: bytes as 0x-hex).
    args: dict[str, Any]

    @classmethod
    def from_chain_event(cls, ev: ChainEvent, *, block_timestamp: int, generation: int = 0) -> LogIndexed:
        return cls(
            originator_id=log_originator_id(ev.chain_id, ev.block_hash, ev.tx_hash, ev.log_index),
            originator_version=2 * generation + 1,
            timestamp=block_datetime(block_timestamp),
            chain_id=ev.chain_id,
            block_number=ev.block_number,
            block_hash=ev.block_hash,
            block_timestamp=block_timestamp,
            tx_hash=ev.tx_hash,
            log_index=ev.log_index,
            contract=ev.contract,
            address=ev.address,
            event=ev.NAME,
            args=event_args(ev),
        )

    def chain_event(self) -> ChainEvent:
        """The typed event (chain/events.py) this log decodes to, with its provenance."""
        cls = chain_events.EVENT_TYPES[self.event]
        args = self.args
        for name in _BYTES_FIELDS[self.event]:
            value = args[name]
            args = {**args, name: bytes.fromhex(value[2:])}
        return cls(
            contract=self.contract,
            address=self.address,
            chain_id=self.chain_id,
            block_number=self.block_number,
            block_hash=self.block_hash,
            tx_hash=self.tx_hash,
            log_index=self.log_index,
            **args,
        )


@dataclass(frozen=True)
class LogOrphaned(DomainEvent):
    """The compensating event of a `LogIndexed` whose block a reorg removed from the chain.

    It names the original log by `(tx_hash, log_index, block_hash)`; `ancestor` is the last
    block the old and the new chain share, `depth` how many blocks the reorg replaced.
    """

    chain_id: int
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    event: str
    ancestor: int
    depth: int


StoreEvent = LogIndexed | LogOrphaned


class IndexedLog(msgspec.Struct, frozen=True, gc=False):
    """A stored `LogIndexed` as the projector folds it: the same fields, decoded straight from
    the stored state, without the library's bookkeeping (originator id and version, the block
    time as a datetime), which a fold never reads.

    NOTE: building the library's event (a UUID and a datetime per event) and then the typed
    `chain.events` object cost a fifth of a rebuild; this is one C call per event."""

    chain_id: int
    block_number: int
    block_hash: str
    block_timestamp: int
    tx_hash: str
    log_index: int
    contract: str
    address: str
    event: str
    args: dict[str, Any]
    #: The version of `LogIndexed` that stored it (the library writes it from version 2 on;
    #: such a state is read through the library's upcasting instead).
    class_version: int = 1


#: Decodes a stored `LogIndexed` state into an `IndexedLog` (its other keys are skipped).
decode_indexed = msgspec.json.Decoder(IndexedLog).decode
FoldEvent = IndexedLog | LogOrphaned

LOG_INDEXED_TOPIC = get_topic(LogIndexed)
_state_encoder = msgspec.json.Encoder()


def indexed_state(ev: ChainEvent, *, block_timestamp: int, timestamp_iso: str) -> bytes:
    """The stored state of `LogIndexed.from_chain_event(ev, block_timestamp=...)`: the bytes
    `make_mapper().to_stored_event` writes for it, without building the domain event (the hot
    path of every append; equality is tested). `timestamp_iso` is the block time as
    `block_datetime(block_timestamp).isoformat()`, computed once per block."""
    return _state_encoder.encode(
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": timestamp_iso},
            "chain_id": ev.chain_id,
            "block_number": ev.block_number,
            "block_hash": ev.block_hash,
            "block_timestamp": block_timestamp,
            "tx_hash": ev.tx_hash,
            "log_index": ev.log_index,
            "contract": ev.contract,
            "address": ev.address,
            "event": ev.NAME,
            "args": event_args(ev),
        }
    )


_BASE_FIELDS = frozenset(f.name for f in dataclasses.fields(ChainEvent))
#: Event name -> (field name, how it is stored), for the event's own fields.
_ARG_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    name: tuple(
        (f.name, "bytes" if f.type in ("bytes", bytes) else "json" if "dict" in str(f.type) else "plain")
        for f in dataclasses.fields(cls)
        if f.name not in _BASE_FIELDS
    )
    for name, cls in chain_events.EVENT_TYPES.items()
}


def event_args(ev: ChainEvent) -> dict[str, Any]:
    """`ev.args()`, computed from a per-class field table (the hot path of every append)."""
    out: dict[str, Any] = {}
    for name, kind in _ARG_FIELDS[ev.NAME]:
        value = getattr(ev, name)
        if kind == "bytes":
            value = "0x" + value.hex()
        elif kind == "json":
            value = ev.args()[name]
        out[name] = value
    return out


#: Event name -> its fields of type bytes (stored as 0x-hex in `args`).
_BYTES_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(f.name for f in dataclasses.fields(cls) if f.type in ("bytes", bytes))
    for name, cls in chain_events.EVENT_TYPES.items()
}


class EventTranscoder(JSONTranscoder):
    """The library's JSON transcoder, encoding and decoding our events with msgspec's C codec.

    NOTE: the library's transcoder runs the standard library's encoder with a Python `default`
    hook and decodes with a Python `object_hook` called for every JSON object: together a third
    of the cost of storing and reading back an event. Our events carry transcoded values (the
    datetime `timestamp`, a UUID) only at the top level, and their `args` are plain JSON by
    construction (`event_args`: ints, strings, bools, None, lists and dicts of them), so this
    transcodes the top level by hand and lets msgspec do the rest. The bytes written are the
    very bytes the library's transcoder writes (same separators, UTF-8, key order; tested), so
    either reads what the other stored. Anything else (a nested value that is not plain JSON)
    goes through the library's code.
    """

    def __init__(self) -> None:
        super().__init__()
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder()

    def encode(self, obj: Any) -> bytes:
        if type(obj) is not dict:
            return super().encode(obj)
        out: dict[str, Any] = {}
        types = self.types
        for key, value in obj.items():
            kind = type(value)
            if kind in _PLAIN:
                out[key] = value
            elif kind in types:
                out[key] = self._encode_obj(value)
            elif kind is dict and _plain_json(value):
                out[key] = value
            else:
                return super().encode(obj)
        return self._encoder.encode(out)

    def decode(self, data: bytes) -> Any:
        obj = self._decoder.decode(data)
        if type(obj) is not dict:
            return super().decode(bytes(data))
        found = 0
        for key, value in obj.items():
            if type(value) is dict and len(value) == 2 and "_type_" in value and "_data_" in value:
                obj[key] = self._decode_obj(value)
                found += 1
        if bytes(data).count(b'"_type_"') > found:
            # A transcoded value below the top level (never in our events): the library's way.
            return super().decode(bytes(data))
        return obj


_PLAIN = frozenset({str, int, bool, type(None)})


def _plain_json(value: Any) -> bool:
    """Whether `value` holds nothing but what JSON has (so msgspec writes what `json` writes):
    no float (their texts differ), no custom type, and no object the library would transcode."""
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind is dict:
        if len(value) == 2 and "_type_" in value:
            return False
        return all(type(k) is str and _plain_json(v) for k, v in value.items())
    if kind is list:
        return all(_plain_json(v) for v in value)
    return False


def make_mapper() -> Mapper[uuid.UUID]:
    """The library's mapper with a JSON transcoder that knows UUIDs and datetimes."""
    transcoder = EventTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    return Mapper(transcoder=transcoder)
