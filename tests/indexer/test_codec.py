"""The fast codecs write exactly what the library's and the standard library's encoders write.

The event store's states, the raw event log's `args`, undo before-images and block digests are
all compared byte for byte with what was stored before the msgspec codecs: existing databases
stay readable and their digests stay valid."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, UUIDAsHex

from chain import events as E
from chain.provenance import ChainEvent
from indexer import digest, projection
from indexer.domain import (
    LOG_INDEXED_TOPIC,
    LogIndexed,
    LogOrphaned,
    block_datetime,
    indexed_state,
    log_originator_id,
    make_mapper,
)
from indexer.models import ROW_TYPES, Row, field_annotations, values_getter
from tests.indexer.synthetic import CHAIN_ID, COMPUTE, PARAMS, block_hash, tx_hash

#: Strings a JSON encoder must escape, or may write raw (ensure_ascii=False).
AWKWARD = ['q"uote\\back/slash', "tab\tnl\ncr\r\x00\x1f\x7f", "é中文😀\u2028\u2029\ufeff", ""]
_BASE = {f.name for f in dataclasses.fields(ChainEvent)}


def _value(kind: str, i: int) -> Any:
    if kind == "int":
        return [0, 1, 2**64 + 7, 2**256 - 1][i % 4]
    if kind == "bool":
        return i % 2 == 0
    if kind == "bytes":
        return bytes(range(i % 7, 40))
    if kind.startswith("dict"):
        return {**PARAMS, "max_bid_window": 2**200, "accept_window": i}
    return AWKWARD[i % len(AWKWARD)] + "bafk"


def every_event() -> list[ChainEvent]:
    """Each event type of both contracts, several times, with awkward values."""
    out: list[ChainEvent] = []
    for n, cls in enumerate(E.EVENT_TYPES.values()):
        for i in range(4):
            fields = {
                f.name: _value(str(f.type), n + i) for f in dataclasses.fields(cls) if f.name not in _BASE
            }
            out.append(
                cls(
                    contract=cls.CONTRACTS[0],
                    address=COMPUTE,
                    chain_id=CHAIN_ID,
                    block_number=n,
                    block_hash=block_hash(n),
                    tx_hash=tx_hash(n, i),
                    log_index=i,
                    **fields,
                )
            )
    return out


def library_mapper() -> Mapper[Any]:
    """The library's own JSON transcoder: what stored states were written with."""
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    return Mapper(transcoder=transcoder)


EVENTS = every_event()


@pytest.mark.parametrize("ev", EVENTS, ids=lambda e: f"{e.NAME}-{e.log_index}")
def test_stored_state_is_the_librarys(ev: ChainEvent) -> None:
    ts = 1_700_000_000 + ev.block_number
    indexed = LogIndexed.from_chain_event(ev, block_timestamp=ts)
    reference = library_mapper().to_stored_event(indexed)
    ours = make_mapper().to_stored_event(indexed)
    fast = indexed_state(ev, block_timestamp=ts, timestamp_iso=block_datetime(ts).isoformat())
    assert ours.state == reference.state
    assert fast == reference.state
    assert reference.topic == LOG_INDEXED_TOPIC
    assert log_originator_id(ev.chain_id, ev.block_hash, ev.tx_hash, ev.log_index) == indexed.originator_id
    # Either transcoder reads what the other wrote, to the same event.
    back = make_mapper().to_domain_event(reference)
    assert back == library_mapper().to_domain_event(ours) == indexed
    assert isinstance(back, LogIndexed)
    assert back.chain_event() == ev


def test_orphaned_state_is_the_librarys() -> None:
    ev = EVENTS[0]
    indexed = LogIndexed.from_chain_event(ev, block_timestamp=1_700_000_000)
    same = ("originator_id", "timestamp", "chain_id", "block_number", "block_hash", "tx_hash", "log_index")
    orphaned = LogOrphaned(
        **{name: getattr(indexed, name) for name in (*same, "contract", "event")},
        originator_version=2,
        ancestor=3,
        depth=2,
    )
    assert make_mapper().to_stored_event(orphaned).state == library_mapper().to_stored_event(orphaned).state


def test_anything_but_plain_json_goes_through_the_librarys_code() -> None:
    transcoder = make_mapper().transcoder
    reference = library_mapper().transcoder
    when = block_datetime(1_700_000_000)
    for awkward in (
        {"x": 1.5},
        {"x": [1.25, "a"]},
        {"x": {"when": when}},
        {"x": {"y": [{"_type_": "uuid_hex", "_data_": "00" * 16}]}},
        [when, 1],
    ):
        assert transcoder.encode(awkward) == reference.encode(awkward)
        assert transcoder.decode(reference.encode(awkward)) == reference.decode(reference.encode(awkward))


def _lines_reference(table: str, values: tuple[Any, ...]) -> str:
    return digest._encode([table, *values])


def rows() -> list[Row]:
    """A row of every read-model type, with awkward strings and bytes where the types allow."""
    out: list[Row] = []
    for n, cls in enumerate(ROW_TYPES):
        values: dict[str, Any] = {}
        for i, (name, kind) in enumerate(field_annotations(cls).items()):
            if kind.endswith("| None") and i % 3 == 0:
                values[name] = None
            elif kind.startswith("bytes"):
                values[name] = b"\x04" * 97
            elif kind.startswith("bool"):
                values[name] = i % 2 == 0
            elif kind.startswith(("int", "Wei", "Timestamp")):
                values[name] = 2**255 + n + i
            else:
                values[name] = AWKWARD[(n + i) % len(AWKWARD)]
        out.append(cls(**values))
    return out


@pytest.mark.parametrize("row", rows(), ids=lambda r: r.TABLE)
def test_row_lines_and_before_images_are_unchanged(row: Row) -> None:
    cls = type(row)
    values = values_getter(cls)(row)
    assert digest.row_line(row) == _lines_reference(cls.TABLE, values)
    reference_image = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, sort_keys=True, default=lambda o: "0x" + bytes(o).hex()
    ).encode(list(values))
    assert projection._before_image(row) == reference_image


@pytest.mark.parametrize("ev", EVENTS[:40], ids=lambda e: f"{e.NAME}-{e.log_index}")
def test_raw_lines_and_args_are_unchanged(ev: ChainEvent) -> None:
    indexed = LogIndexed.from_chain_event(ev, block_timestamp=1_700_000_000)
    args = projection._json.encode(indexed.args).decode()
    assert args == json.dumps(indexed.args, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    line = digest.raw_line(
        CHAIN_ID, ev.block_number, ev.block_hash, 1_700_000_000, ev.tx_hash, ev.log_index,
        ev.contract, ev.address, ev.NAME, args,
    )  # fmt: skip
    assert line == _lines_reference(
        "events",
        (CHAIN_ID, ev.block_number, ev.block_hash, 1_700_000_000, ev.tx_hash, ev.log_index,
         ev.contract, ev.address, ev.NAME, args),
    )  # fmt: skip
