"""One module per resource, each with a router from `resource_router`; `api.main` serves
their routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from api.schemas import ErrorBody

#: The answers every route may give besides its own.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown id (or path).", "model": ErrorBody},
    422: {"description": "Invalid input: the message names each bad parameter.", "model": ErrorBody},
    429: {"description": "Rate limited: retry after `Retry-After` seconds.", "model": ErrorBody},
    503: {"description": "The read models cannot be read right now.", "model": ErrorBody},
}

#: Attribute caching, on each route, the query parameters it declares (dependencies' included).
_DECLARED = "_ascendnet_query_names"


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias or p.name for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _declared_query(route: APIRoute) -> frozenset[str]:
    names: frozenset[str] | None = getattr(route, _DECLARED, None)
    if names is None:
        names = frozenset(_query_names(route.dependant))
        setattr(route, _DECLARED, names)
    return names


async def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the route does not declare, or one given twice: a typo must
    not silently widen a filter."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    declared = _declared_query(route)
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
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


def resource_router(tag: str) -> APIRouter:
    """The router of one resource module: its routes refuse unknown query parameters and
    document the common answers."""
    return APIRouter(tags=[tag], dependencies=[Depends(reject_unknown_query)], responses=COMMON_RESPONSES)
