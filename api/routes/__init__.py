"""One module per resource, each with a router from `resource_router`; `api.main` serves
their routes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import Response

from api import encoding
from api.handler import lean_handler
from api.schemas import ErrorBody

#: The answers every route may give besides its own.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown id (or path).", "model": ErrorBody},
    422: {"description": "Invalid input: the message names each bad parameter.", "model": ErrorBody},
    429: {"description": "Rate limited: retry after `Retry-After` seconds.", "model": ErrorBody},
    503: {"description": "The read models cannot be read right now.", "model": ErrorBody},
}


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias or p.name for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def check_query(query_string: bytes, declared: frozenset[str]) -> None:
    """422 for a query parameter the route does not declare, or one given twice: a typo must
    not silently widen a filter."""
    if not query_string:
        return
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name not in declared:
            allowed = ", ".join(sorted(declared)) or "none"
            errors.append(
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": f"unknown query parameter; this endpoint takes: {allowed}",
                    "input": value,
                }
            )
        elif name in seen:
            errors.append(
                {
                    "type": "duplicate",
                    "loc": ("query", name),
                    "msg": "given more than once; give it once",
                    "input": value,
                }
            )
        seen.add(name)
    if errors:
        raise RequestValidationError(errors)


class ApiRoute(APIRoute):
    """A route of the API: it refuses unknown or repeated query parameters (before any other
    validation), turns a request into the endpoint's arguments with `api.handler` (the same
    validation as FastAPI, without its per-request introspection), and writes the response
    model's JSON straight from the dict the endpoint returns (`api.encoding`: pydantic's
    validation of our own answers was most of a listing's cost). A route using what those two
    do not handle keeps FastAPI's own handler, behind the same query check."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        check = functools.partial(check_query, declared=frozenset(_query_names(self.dependant)))
        if self.response_model is not None and self.status_code in (None, 200):
            try:
                dump = encoding.dumper(self.response_model)
            except encoding.NotFast:
                pass
            else:

                def respond(result: Any) -> Response:
                    if isinstance(result, BaseModel):
                        result = result.model_dump()
                    return encoding.JSONBytes(encoding.encode(dump(result)))

                lean = lean_handler(self.dependant, respond, check)
                if lean is not None:
                    return lean
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            check(request.scope.get("query_string", b""))
            return await handler(request)

        return checked


def resource_router(tag: str) -> APIRouter:
    """The router of one resource module: its routes refuse unknown query parameters, answer
    through `ApiRoute` and document the common answers."""
    return APIRouter(tags=[tag], route_class=ApiRoute, responses=COMMON_RESPONSES)
