"""The two forms of a raw event's arguments, both compact JSON text with sorted keys.

- **Canonical**: integers as JSON numbers, as the event store holds them (`LogIndexed.args`).
  Block and row digests cover this form (indexer/digest.py), so they do not depend on how the
  `events` table stores arguments: databases written before and after the table's form
  changed (migration 0005) have the same digests.
- **API form**: every integer as its exact decimal string, the rest unchanged. JSON readers
  lose precision above 2**53, so the API answers integers as strings; the `events` table
  stores this form so that `/events` passes a row's arguments through instead of decoding and
  encoding them again.

The API form of an argument is one-to-one with its canonical form given the event's ABI types:
`canonical_text` turns integers back by those types, never by the look of a string.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import msgspec

from chain import events as chain_events
from chain.provenance import ChainEvent

_encode = msgspec.json.Encoder(order="sorted").encode
_decode = msgspec.json.Decoder().decode
_INT_TYPE = re.compile(r"u?int\d*")


def api_form(value: Any) -> Any:
    """`value` with every integer, at any depth, as its decimal string (booleans stay)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is dict:
        return {k: api_form(v) for k, v in value.items()}
    if kind is list:
        return [api_form(v) for v in value]
    return value


def api_args(args: dict[str, Any]) -> dict[str, Any]:
    """An event's arguments in the API form (the hot path of the projector: arguments are
    flat but for a struct's dict)."""
    out = {}
    for key, value in args.items():
        kind = type(value)
        out[key] = str(value) if kind is int else api_form(value) if kind is dict or kind is list else value
    return out


def api_text(args: dict[str, Any]) -> str:
    """The `events.args` text of an event's (canonical) arguments."""
    return _encode(api_args(args)).decode()


def _top_level(types: str) -> list[str]:
    """`a,(b,c),d` -> ["a", "(b,c)", "d"]."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(types):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(types[start:i])
            start = i + 1
    if types:
        out.append(types[start:])
    return out


def _integer_fields(cls: type[ChainEvent]) -> dict[str, bool]:
    """Field -> False for an integer field, True for a struct (dict) whose members are all
    integers. Raises TypeError for a field whose integers `canonical_text` could not tell."""
    base = {f.name for f in dataclasses.fields(ChainEvent)}
    fields = [f for f in dataclasses.fields(cls) if f.name not in base]
    abi = _top_level(cls.SIGNATURE[len(cls.NAME) + 1 : -1])
    if len(abi) != len(fields):
        raise TypeError(f"{cls.NAME}: {len(fields)} fields but {len(abi)} ABI arguments")
    out: dict[str, bool] = {}
    for f, abi_type in zip(fields, abi, strict=True):
        annotation = str(f.type)
        if annotation in ("int", str(int)):
            out[f.name] = False
        elif annotation.startswith("dict"):
            members = _top_level(abi_type[1:-1]) if abi_type.startswith("(") else []
            if not members or not all(_INT_TYPE.fullmatch(m) for m in members):
                raise TypeError(f"{cls.NAME}.{f.name}: a struct of {abi_type}, not only integers")
            out[f.name] = True
        elif annotation not in ("str", "bool", "bytes"):
            raise TypeError(f"{cls.NAME}.{f.name}: arguments of type {annotation} have no API form")
    return out


#: Event name -> its integer fields (True: a struct of integers).
INTEGER_FIELDS: dict[str, dict[str, bool]] = {
    name: _integer_fields(cls) for name, cls in chain_events.EVENT_TYPES.items()
}


def canonical_text(event: str, text: str) -> str:
    """The canonical text of stored arguments, in either form (canonical text comes back as
    it is, re-encoded)."""
    args = _decode(text)
    for name, struct in INTEGER_FIELDS[event].items():
        value = args.get(name)
        if value is None:
            continue
        if struct:
            args[name] = {k: int(v) for k, v in value.items()}
        else:
            args[name] = int(value)
    return _encode(args).decode()
