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
from collections.abc import Callable, Sequence
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


class Rendered(list[Any]):
    """Items already in their JSON form (made by a `row_renderer`): dumped as they are."""


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
        return lambda v: v if type(v) is Rendered else [item_dump(x) for x in v]
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


#: Inline forms of the common conversions, of a value `{v}` (bound to `x` once).
_INLINE = {
    "int": "(x if type(x := {v}) is int else int(x))",
    "bool": "(x if type(x := {v}) is bool else bool(x))",
    "amount": '((x.lstrip("0") or "0") if type(x := {v}) is str else str(int(x)))',
}
_INLINE_OPTIONAL = {
    "int": "(x if (x := {v}) is None or type(x) is int else int(x))",
    "bool": "(x if (x := {v}) is None or type(x) is bool else bool(x))",
    "amount": '(None if (x := {v}) is None else (x.lstrip("0") or "0") if type(x) is str else str(int(x)))',
}


def _inline(annotation: Any, metadata: list[Any], value: str) -> str | None:
    """An expression converting `value` (source text) as `dumper` would, for the plain types:
    None when the type needs a function."""
    if metadata:
        annotation = typing.Annotated[(annotation, *metadata)]
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) != 1:
            return None
        annotation, optional = rest[0], True
    try:
        convert = dumper(annotation)
    except NotFast:
        return None
    if convert is _same:
        return value
    kind = _KIND_OF.get(convert)
    if kind is None:
        return None
    return (_INLINE_OPTIONAL if optional else _INLINE)[kind].format(v=value)


def _model(model: type[BaseModel]) -> Dump:
    """One generated function per model: a dict display with each field's conversion inlined
    (a field that needs none is copied as is). NOTE: generated, as dataclasses and attrs do
    it, because a loop over (name, converter) pairs cost twice as much per row."""
    namespace: dict[str, Any] = {}
    items: list[str] = []
    for i, (name, info) in enumerate(model.model_fields.items()):
        key = repr(name)
        inline = _inline(info.annotation, info.metadata, f"v[{key}]")
        if inline is not None:
            items.append(f"{key}: {inline}")
        else:
            namespace[f"_f{i}"] = _field(info.annotation, info.metadata)
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


def row_renderer(
    model: type[BaseModel], columns: Sequence[str], overrides: dict[str, Dump] | None = None
) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """A function from a database row (a tuple of `columns`) straight to `model`'s JSON form:
    each field is the column of its name, converted as `dumper` would; a field that is itself
    a model is made from the same row (`last_change` from the row's own provenance columns);
    `overrides` convert the columns they name instead. Raises NotFast for a field with no
    column, or an optional model."""
    overrides = overrides or {}
    namespace: dict[str, Any] = {"_amount": _amount}
    expression = _render_expression(model, list(columns), overrides, namespace, "m")
    exec(f"def render(r):\n    return {expression}\n", namespace)  # noqa: S102 - built from field names
    render: Callable[[Sequence[Any]], dict[str, Any]] = namespace["render"]
    return render


def _render_expression(
    model: type[BaseModel],
    columns: list[str],
    overrides: dict[str, Dump],
    namespace: dict[str, Any],
    prefix: str,
) -> str:
    items: list[str] = []
    for name, info in model.model_fields.items():
        key = repr(name)
        annotation = info.annotation
        if name in overrides:
            fn = f"_{prefix}_{name}"
            namespace[fn] = overrides[name]
            items.append(f"{key}: {fn}(r[{columns.index(name)}])")
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            inner = _render_expression(annotation, columns, overrides, namespace, f"{prefix}_{name}")
            items.append(f"{key}: {inner}")
            continue
        if name not in columns:
            raise NotFast(f"{model.__name__}.{name}: no column of that name")
        at = columns.index(name)
        inline = _inline(annotation, info.metadata, f"r[{at}]")
        if inline is not None:
            items.append(f"{key}: {inline}")
        else:
            fn = f"_{prefix}_{name}"
            namespace[fn] = _field(annotation, info.metadata)
            items.append(f"{key}: {fn}(r[{at}])")
    return "{" + ", ".join(items) + "}"


_KIND_OF: dict[Dump, str] = {_int: "int", _bool: "bool", _amount: "amount"}
