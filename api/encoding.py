"""Responses written straight from the routes' dicts, shaped by the response models.

NOTE: FastAPI validates what a route returns against its response model with pydantic and then
encodes it: for a page of fifty jobs that was most of the request's CPU time. The dicts our
routes build already hold the models' fields; what pydantic still did was convert a few value
types. `dumper(model)` compiles those conversions once per model, from the model's own field
annotations (amounts to decimal strings, 0/1 to booleans, nested models, lists, optionals), and
msgspec encodes the result. The response models stay the one definition of each answer: they
drive the OpenAPI document and these conversions, and tests/api check both paths give the same
JSON on real data.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import msgspec
from pydantic import BaseModel, PlainSerializer
from starlette.responses import Response

Dump = Callable[[Any], Any]

_encode = msgspec.json.Encoder().encode


class JSONBytes(Response):
    """A JSON response whose body is already encoded."""

    media_type = "application/json"


class NotFast(TypeError):
    """A model holds a type `dumper` does not convert (the route keeps pydantic's path)."""


def encode(value: Any) -> bytes:
    return _encode(value)


def dumper(annotation: Any) -> Dump:
    """The function that turns a route's value for `annotation` into plain JSON values, as
    pydantic would serialize it in JSON mode. Raises NotFast for a type it does not handle."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        inner, *extras = args
        if any(isinstance(e, PlainSerializer) and e.func is str for e in extras) and inner is int:
            return _amount
        return dumper(inner)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(rest) < len(args):
            inner_dump = dumper(rest[0])
            if inner_dump is _same:
                return _same
            return lambda v: None if v is None else inner_dump(v)
        raise NotFast(f"no fast form for {annotation!r}")
    if origin is list:
        (item,) = args
        item_dump = dumper(item)
        if item_dump is _same:
            return list
        return lambda v: [item_dump(x) for x in v]
    if origin is dict or annotation is Any or origin is typing.Literal or annotation is str:
        return _same
    if annotation is bool:
        return _bool
    if annotation is int:
        return _int
    if annotation is float:
        return float
    if isinstance(annotation, type) and issubclass(annotation, (date, datetime)):
        raise NotFast("dates are left to pydantic")
    raise NotFast(f"no fast form for {annotation!r}")


def _model(model: type[BaseModel]) -> Dump:
    """One generated function per model: a dict display with each field's conversion inlined
    (a field that needs none is copied as is). NOTE: generated, as dataclasses and attrs do
    it, because a loop over (name, converter) pairs cost twice as much per row."""
    namespace: dict[str, Any] = {}
    items: list[str] = []
    for i, (name, info) in enumerate(model.model_fields.items()):
        convert = _field(info.annotation, info.metadata)
        key = repr(name)
        if convert is _same:
            items.append(f"{key}: v[{key}]")
        elif convert is _amount:
            items.append(f"{key}: _amount(v[{key}])")
        elif convert is _int:
            items.append(f"{key}: (x if type(x := v[{key}]) is int else int(x))")
        elif convert is _bool:
            items.append(f"{key}: (x if type(x := v[{key}]) is bool else bool(x))")
        else:
            namespace[f"_f{i}"] = convert
            items.append(f"{key}: _f{i}(v[{key}])")
    namespace["_amount"] = _amount
    defaults = {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
        if not info.is_required()
    }
    namespace["_defaults"] = defaults
    fill = "    if not _defaults.keys() <= v.keys():\n        v = {**_defaults, **v}\n" if defaults else ""
    source = f"def dump(v):\n{fill}    return {{{', '.join(items)}}}\n"
    exec(source, namespace)  # noqa: S102 - source built above from the model's field names
    dump: Dump = namespace["dump"]
    return dump


def _field(annotation: Any, metadata: list[Any]) -> Dump:
    if metadata:
        return dumper(typing.Annotated[(annotation, *metadata)])
    return dumper(annotation)


def _same(value: Any) -> Any:
    return value


def _int(value: Any) -> int:
    return value if type(value) is int else int(value)


def _bool(value: Any) -> bool:
    return value if type(value) is bool else bool(value)


def _amount(value: Any) -> str:
    """A uint256 as decimal digits: from an int, a Decimal (PostgreSQL) or zero-padded text
    (SQLite)."""
    if type(value) is str:
        return value.lstrip("0") or "0"
    return str(int(value))
