"""Per-block state digests: a fingerprint of the read models that two databases can compare.

Two digests, both over canonical state only (orphaned raw events are left out, so a replica
that lived through a reorg equals a clean index of the canonical chain):

- **Block digests** (`block_digests`, written by the projector as it folds):
  `d(n) = sha256(d(prev) || sorted lines of every row block n changed, as it was after n)`,
  where `prev` is the last earlier block that carried events. Two replicas that folded the same
  history the same way have the same chain of digests.
- **Row digests** (`row_digests`, computed on demand from the tables as they are now): rows
  grouped by the block that last changed them (every row names it). A row changed behind the
  indexer's back shows up at its block, which is how `verify` finds tampering.

A row's line is canonical JSON of `[table, value, ...]` in column order; bytes are 0x-hex.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from indexer import models
from indexer.argforms import canonical_text
from indexer.models import ROW_TYPES, Row, field_annotations, from_mapping, values_getter

GENESIS = "0" * 64
#: Bytes per `hashlib` update that stay below its threshold for releasing the GIL (2,048).
_UNDER_GIL_RELEASE = 2_000

_encoder = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, default=lambda o: "0x" + bytes(o).hex()
)
_encode = _encoder.encode
# NOTE: msgspec writes the very text `_encode` writes for the values lines hold (ints, strings,
# bools, None, lists; tested): the digests of existing databases stay valid. It runs for every
# event and every changed row, where the standard library's encoder was a tenth of the fold.
_fast_encode = msgspec.json.Encoder().encode
#: The encoder of lines (UTF-8 JSON of a list or tuple of plain values).
encode = _fast_encode
#: Row class -> positions of its bytes fields.
_BYTES_AT: dict[type[Row], tuple[int, ...]] = {
    cls: tuple(i for i, a in enumerate(field_annotations(cls).values()) if a.startswith("bytes"))
    for cls in ROW_TYPES
}

#: Columns of the raw event log that a digest covers (not its store position nor the flag).
RAW_COLUMNS = (
    "chain_id",
    "block_number",
    "block_hash",
    "block_timestamp",
    "tx_hash",
    "log_index",
    "contract",
    "address",
    "event",
    "args",
)


def row_line(row: Row) -> str:
    return row_line_bytes(row).decode()


def row_line_bytes(row: Row) -> bytes:
    """`row_line(row)`, UTF-8 encoded (the projector's hot path: rows are array-like Structs,
    so msgspec writes `[value, ...]` in field order in one call)."""
    cls = type(row)
    if _BYTES_AT[cls]:
        return _fast_encode([cls.TABLE, *json_values(cls, values_getter(cls)(row))])
    return _fast_encode(row)


def json_values(cls: type[Row], values: tuple[Any, ...]) -> tuple[Any, ...] | list[Any]:
    """A row's values as JSON-ready: its bytes fields as 0x-hex (what `_encode` does for them);
    the other fields are ints, strings, bools and None by the models' declared types."""
    at = _BYTES_AT[cls]
    if not at:
        return values
    out = list(values)
    for i in at:
        if out[i] is not None:
            out[i] = "0x" + bytes(out[i]).hex()
    return out


def raw_line(
    chain_id: int,
    block_number: int,
    block_hash: str,
    block_timestamp: int,
    tx_hash: str,
    log_index: int,
    contract: str,
    address: str,
    event: str,
    args: str,
) -> str:
    """The line of one raw event (its RAW_COLUMNS, `args` being its canonical JSON text:
    integers as numbers, whatever form the table stores, `indexer.argforms`)."""
    return raw_line_bytes(
        chain_id,
        block_number,
        block_hash,
        block_timestamp,
        tx_hash,
        log_index,
        contract,
        address,
        event,
        args,
    ).decode()


def raw_line_bytes(*values: Any) -> bytes:
    """`raw_line(*values)`, UTF-8 encoded."""
    return _fast_encode(["events", *values])


def chain(prev: str, lines: Iterable[str]) -> str:
    """The next digest in the chain from `prev` over a block's row lines (any order):
    sha256 of `prev`, then of a newline before each line, the lines sorted."""
    return chain_bytes(prev, [line.encode() for line in lines])


def chain_bytes(prev: str, lines: list[bytes]) -> str:
    """`chain` over UTF-8 encoded lines (sorted in place). Bytes sort as their text does: UTF-8
    keeps the order of code points."""
    h = hashlib.sha256(prev.encode())
    if lines:
        lines.sort()
        text = memoryview(b"\n" + b"\n".join(lines))
        # NOTE: in pieces below hashlib's 2 KiB threshold for releasing the GIL: the projector's
        # folding thread hashes a block of ten kilobytes in 10 us, and each time it let the GIL
        # go it waited for the reader thread (or a writer thread, off Linux) to give it back.
        for at in range(0, len(text), _UNDER_GIL_RELEASE):
            h.update(text[at : at + _UNDER_GIL_RELEASE])
    return h.hexdigest()


def stored_digests(connection: Connection) -> dict[int, str]:
    """Block number -> stored block digest."""
    t = models.block_digests
    return {int(r[0]): r[1] for r in connection.execute(sa.select(t.c.block_number, t.c.digest))}


def _table_lines(connection: Connection, cls: type[Row]) -> Iterator[tuple[int, str]]:
    table = models.TABLES[cls]
    result = connection.execution_options(yield_per=5_000).execute(sa.select(table))
    for r in result.mappings():
        row = from_mapping(cls, r)
        yield row.block_number, row_line(row)  # type: ignore[attr-defined]


def _raw_lines(connection: Connection) -> Iterator[tuple[int, str]]:
    t = models.events
    q = sa.select(*(t.c[c] for c in RAW_COLUMNS)).where(t.c.orphaned.is_(False))
    for r in connection.execution_options(yield_per=5_000).execute(q):
        yield int(r.block_number), raw_line_bytes(*r[:-1], canonical_text(r.event, r.args)).decode()


def row_digests(connection: Connection) -> dict[int, dict[str, str]]:
    """Block number -> {table: digest of the rows, as they are now, that it last changed}."""
    lines: dict[tuple[int, str], list[str]] = defaultdict(list)
    for cls in ROW_TYPES:
        for block, line in _table_lines(connection, cls):
            lines[(block, cls.TABLE)].append(line)
    for block, line in _raw_lines(connection):
        lines[(block, "events")].append(line)
    out: dict[int, dict[str, str]] = defaultdict(dict)
    for (block, table), table_lines in lines.items():
        out[block][table] = chain(GENESIS, table_lines)
    return dict(out)
