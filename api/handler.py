"""A lean request handler for the API's GET routes.

NOTE: FastAPI turns a request into an endpoint's arguments with generic machinery that inspects
every parameter's annotation again on every request (is it a sequence? a model? which
aliases?): measured on `/jobs`, whose nine query parameters come from the route and its
pagination dependency, that was 460 us of a 570 us request before the endpoint even ran. The
API's routes use a small part of what that machinery supports: path and query parameters of
plain types, `Request`, and async dependencies built from those. For such a route this module
works out once, from FastAPI's own analysis of the endpoint (its `Dependant`), what each request
needs, and then does only that, with the same steps and outcomes:

- each parameter is validated by the very pydantic validator FastAPI built for it
  (`ModelField.validate`), so values and error messages are FastAPI's;
- a missing parameter takes its default, or is the same "Field required" error;
- dependencies are resolved first, in declaration order, each once per request; errors of all
  parameters are gathered and raised together as one `RequestValidationError`.

A route that uses anything else (a body, headers, cookies, security scopes, generator or sync
dependencies, dependency overrides) keeps FastAPI's handler: `lean_handler` returns None.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi._compat import ModelField
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    alias: str
    loc: tuple[str, str]
    field: ModelField
    required: bool
    default: Any


@dataclass(frozen=True, slots=True)
class _Call:
    """One dependency or the endpoint: what to pass it and how to call it."""

    call: Callable[..., Awaitable[Any]]
    dependencies: tuple[tuple[str, _Call], ...]
    path: tuple[_Param, ...]
    query: tuple[_Param, ...]
    request_name: str | None


class NotLean(Exception):
    """The route uses something the lean handler leaves to FastAPI."""


def _param(field: ModelField, where: str) -> _Param:
    info = field.field_info
    if not isinstance(info, params.Path | params.Query):
        raise NotLean(f"{field.name}: {type(info).__name__} parameters")
    annotation = info.annotation
    origin = getattr(annotation, "__origin__", None)
    if origin in (list, set, tuple, frozenset) or info.validation_alias is not None:
        raise NotLean(f"{field.name}: sequence or aliased parameter")
    required = info.is_required()
    default = None if required else info.get_default(call_default_factory=True)
    if not required and (default is not None and not isinstance(default, str | int | float | bool)):
        raise NotLean(f"{field.name}: a mutable default")
    if info.validate_default:
        raise NotLean(f"{field.name}: a validated default")
    alias = field.alias or field.name
    return _Param(field.name, alias, (where, alias), field, required, default)


def _plan(dependant: Dependant) -> _Call:
    if dependant.call is None or not inspect.iscoroutinefunction(dependant.call):
        raise NotLean("a dependency that is not an async function")
    if (
        dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
    ):
        raise NotLean("headers, cookies, a body or other special parameters")
    subs: list[tuple[str, _Call]] = []
    for sub in dependant.dependencies:
        if sub.name is None:
            # A dependency of the route or router itself (no parameter receives it).
            raise NotLean("a route-level dependency")
        subs.append((sub.name, _plan(sub)))
    return _Call(
        call=dependant.call,
        dependencies=tuple(subs),
        path=tuple(_param(f, "path") for f in dependant.path_params),
        query=tuple(_param(f, "query") for f in dependant.query_params),
        request_name=dependant.request_param_name,
    )


def _validate(param: _Param, raw: str | None, values: dict[str, Any], errors: list[Any]) -> None:
    if raw is None:
        if param.required:
            errors.append(_missing(param.loc))
        else:
            values[param.name] = param.default
        return
    value, problems = param.field.validate(raw, values, loc=param.loc)
    if problems:
        errors.extend(problems)
    else:
        values[param.name] = value


def _missing(loc: tuple[str, str]) -> dict[str, Any]:
    from fastapi._compat import get_missing_field_error

    return get_missing_field_error(loc=loc)


async def _solve(
    plan: _Call, request: Request, query: Any, cache: dict[Any, Any], errors: list[Any]
) -> dict[str, Any] | None:
    """The arguments of `plan.call` (None when a parameter of it or of its dependencies was
    invalid; the problems are in `errors`)."""
    values: dict[str, Any] = {}
    failed = False
    for name, sub in plan.dependencies:
        if sub.call in cache:
            values[name] = cache[sub.call]
            continue
        before = len(errors)
        arguments = await _solve(sub, request, query, cache, errors)
        if arguments is None or len(errors) > before:
            failed = True
            continue
        values[name] = cache[sub.call] = await sub.call(**arguments)
    before = len(errors)
    if plan.path:
        path_params = request.path_params
        for param in plan.path:
            _validate(param, path_params.get(param.alias), values, errors)
    for param in plan.query:
        _validate(param, query.get(param.alias), values, errors)
    if failed or len(errors) > before:
        return None
    if plan.request_name is not None:
        values[plan.request_name] = request
    return values


def lean_handler(
    dependant: Dependant,
    respond: Callable[[Any], Response],
    check: Callable[[bytes], None],
) -> Handler | None:
    """A handler doing for `dependant`'s endpoint what FastAPI's would, or None when the route
    uses something this one leaves to FastAPI. `check` sees the raw query string first;
    `respond` turns what the endpoint returns into the response."""
    try:
        plan = _plan(dependant)
    except NotLean:
        return None

    async def handle(request: Request) -> Response:
        check(request.scope.get("query_string", b""))
        errors: list[Any] = []
        arguments = await _solve(plan, request, request.query_params, {}, errors)
        if arguments is None or errors:
            raise RequestValidationError(errors)
        result = await plan.call(**arguments)
        return result if isinstance(result, Response) else respond(result)

    return handle
