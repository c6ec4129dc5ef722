"""The application factory: `create_app(settings)`.

Read-only by construction: GET (and HEAD) routes only, over a read-only database connection.
Every answer carries the block it reflects. Every bad input is a 422 naming the parameter, an
unknown id a 404; no input produces a 500 (unexpected errors still answer JSON).
"""

from __future__ import annotations

import gc
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from api import __doc__ as package_doc
from api.cache import ResponseCache, ResponseCacheMiddleware
from api.deps import Reader, make_api_engine
from api.errors import ApiError, DatabaseUnavailable, InvalidInput
from api.feed import FeedReader
from api.freshness import FINALIZED_HEADER, HEAD_HEADER, FreshnessCache
from api.middleware import FreshnessHeadersMiddleware, HeadMiddleware
from api.ratelimit import RateLimitMiddleware, TokenBuckets
from api.routes import accounts, blocks, events, fees, jobs, market, prompts, providers, status, stream
from api.routing import index_routes
from api.settings import ApiSettings
from api.validation import ADDRESS_PATTERN, AMOUNT_PATTERN, HASH_PATTERN, TEXT_PATTERN
from ascendnet import __version__
from ascendnet import log as logging_setup
from ascendnet.log import get_logger
from ascendnet.validation import describe

log = get_logger("api")

TITLE = "AscendNet API"
DESCRIPTION = """Read-only access to AscendNet's indexed chain state: prompts and their market,
compute jobs and providers, accounts, fees, the raw event log with provenance, per-block
digests, and a live event stream.

- **Freshness.** Every response carries `X-Indexed-Head` (the block the data reflects) and
  `X-Finalized-Block` (the highest of those that is final); JSON bodies repeat them in `meta`.
- **Pagination.** Listings are keyset-paginated: pass a page's `next_cursor` as `cursor`.
  `limit` defaults to 50, at most 500.
- **Amounts** are uint256 base units (wei) as decimal strings. **Addresses** are accepted in
  any letter case and answered checksummed.
- **Errors** are JSON (`error`, `message`, `problems`): 422 for any invalid input (unknown query
  parameters included), 404 for an unknown id, 429 with `Retry-After` past the per-client rate
  limit. Only GET and HEAD exist; other methods get 405.
- **Writes** go to the contracts from a wallet; this API never writes.
"""

#: Human wording of the patterns the validation error messages name.
_PATTERNS = {
    ADDRESS_PATTERN: "an address: 0x followed by 40 hex digits",
    HASH_PATTERN: "a 32-byte hash: 0x followed by 64 hex digits",
    AMOUNT_PATTERN: "an amount: 1 to 77 decimal digits",
    TEXT_PATTERN: "text without control characters",
}

_ROUTERS = (
    prompts.router,
    market.router,
    jobs.router,
    providers.router,
    accounts.router,
    fees.router,
    events.router,
    blocks.router,
    status.router,
    stream.router,
)


def _error(
    status_code: int,
    code: str,
    message: str,
    problems: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": code, "message": message, "problems": problems or []},
        status_code=status_code,
        headers=headers,
    )


# ---------------------------------------------------------------- error handlers


def _problem(error: dict[str, Any]) -> dict[str, str]:
    location, reason = describe(error)
    pattern = (error.get("ctx") or {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern in _PATTERNS:
        reason = f"not {_PATTERNS[pattern]}"
    return {"location": location, "reason": reason}


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(e) for e in exc.errors()]
    message = "; ".join(f"{p['location']}: {p['reason']}" for p in problems) or "invalid request"
    return _error(422, "invalid_request", message, problems)


async def _on_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    problems = [{"location": exc.location, "reason": exc.reason}] if isinstance(exc, InvalidInput) else []
    return _error(exc.status_code, exc.code, str(exc), problems)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        return _error(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed: this API is read-only (GET and HEAD).",
            headers={"Allow": "GET, HEAD"},
        )
    if exc.status_code == 404:
        return _error(404, "not_found", f"No endpoint at {request.url.path}; see /docs for the API.")
    return _error(exc.status_code, "http_error", str(exc.detail), headers=dict(exc.headers or {}))


async def _on_data_error(_request: Request, exc: Exception) -> JSONResponse:
    # A value the database refuses (out of range for its column): the request's fault.
    log.warning("api_data_error", error=str(exc).splitlines()[0])
    return _error(422, "invalid_request", "A value in the request is out of range for the database.")


async def _on_database(_request: Request, exc: Exception) -> JSONResponse:
    log.error("api_database_error", error=str(exc).splitlines()[0])
    problem = DatabaseUnavailable(type(getattr(exc, "orig", exc)).__name__)
    return _error(problem.status_code, problem.code, str(problem), headers={"Retry-After": "5"})


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # NOTE: the traceback as plain text: a console renderer's rich traceback (locals included)
    # can take seconds, on the event loop, for every failing request.
    log.error("api_unexpected_error", error=repr(exc), traceback="".join(traceback.format_exception(exc)))
    return _error(500, "internal_error", "The server failed to answer; the error was logged.")


# ---------------------------------------------------------------- OpenAPI


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The document with the headers every response carries: the freshness headers, and
    Retry-After on 429 and 503."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=_TAGS
    )
    freshness_headers = {
        HEAD_HEADER: {
            "description": "The block the response reflects (empty before the indexer first reported).",
            "schema": {"type": "string", "pattern": "^[0-9]*$"},
        },
        FINALIZED_HEADER: {
            "description": "The highest reflected block that is final (empty before the indexer reported).",
            "schema": {"type": "string", "pattern": "^[0-9]*$"},
        },
    }
    retry_after = {
        "Retry-After": {
            "description": "Seconds to wait.",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    }
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                _not_nullable(parameter["schema"])
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if code != "200" and "text/event-stream" in content:
                    # Errors are JSON on every route, the stream's included.
                    content["application/json"] = content.pop("text/event-stream")
                headers = response.setdefault("headers", {})
                headers.update(freshness_headers)
                if code in ("429", "503"):
                    headers.update(retry_after)
    app.openapi_schema = schema
    return schema


def _not_nullable(schema: dict[str, Any]) -> None:
    """An optional parameter is given or left out, never `null`: drop the null alternative
    FastAPI writes for `X | None` (clients would otherwise send the text "null")."""
    options = schema.get("anyOf")
    if options is None:
        return
    rest = [o for o in options if o.get("type") != "null"]
    if len(rest) == 1 and len(rest) < len(options):
        del schema["anyOf"]
        schema.update(rest[0])


_TAGS = [
    {"name": "prompts", "description": "Prompt NFTs: catalogue, details, history."},
    {"name": "market", "description": "Listings, licences, sales and ratings."},
    {"name": "compute", "description": "Jobs, bids, results and GPU providers."},
    {"name": "accounts", "description": "An account's balances and activity across both contracts."},
    {"name": "fees", "description": "The 3% protocol fee, per asset and period."},
    {"name": "audit", "description": "The raw event log with provenance, per-block digests."},
    {"name": "operations", "description": "Indexer status, liveness and readiness."},
    {"name": "stream", "description": "Server-Sent Events of new events and reorgs."},
]


# ---------------------------------------------------------------- the app


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The API over the read models named by `settings` (default: from the environment)."""
    settings = settings or ApiSettings()
    engine = make_api_engine(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # NOTE: reads run in worker threads; a few threads keep the GIL from bouncing between
        # dozens of them under load (requests beyond them wait in the event loop instead).
        # (0: reads run on the event loop; the stream's polls still use a thread.)
        anyio.to_thread.current_default_thread_limiter().total_tokens = max(settings.api_threads, 1)
        yield
        if cache is not None:
            cache.close()
        reader.close()
        engine.dispose()

    app = FastAPI(
        title=TITLE,
        version=__version__,
        summary=(package_doc or "").strip(),
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
        # NOTE: no OpenTelemetry here; left on, FastAPI asks the global providers on every
        # request whether anyone listens.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    reader = app.state.reader = Reader(engine, inline=settings.api_threads == 0)
    kept = int(settings.api_cache_mb * 2**20)
    cache = app.state.cache = ResponseCache(engine, reader, kept) if kept > 0 else None
    app.state.freshness = FreshnessCache(engine, max_age=1.0)
    app.state.feed = FeedReader(engine)
    # NOTE: the routes join the app's own list rather than `include_router`: an included
    # router is matched through a layer per router (about 10 us each for every request that
    # passes it), a flat list route by route. The routers carry the dependencies and responses
    # every route shares (api.routes.resource_router).
    for router in _ROUTERS:
        app.router.routes.extend(router.routes)
    index_routes(app.router)

    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(sa.exc.DataError, _on_data_error)
    app.add_exception_handler(sa.exc.DBAPIError, _on_database)
    app.add_exception_handler(sa.exc.SQLAlchemyError, _on_database)
    app.add_exception_handler(Exception, _on_unexpected)

    # The last added is the outermost: CORS, freshness headers, rate limit, the kept answers,
    # HEAD, the routes.
    app.add_middleware(HeadMiddleware)
    if cache is not None:
        app.add_middleware(ResponseCacheMiddleware, cache=cache)
    if settings.api_rate_limit > 0:
        buckets = TokenBuckets(settings.api_rate_limit, settings.api_rate_burst, settings.api_rate_clients)
        app.add_middleware(RateLimitMiddleware, buckets=buckets)
    app.add_middleware(FreshnessHeadersMiddleware, cache=app.state.freshness)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "HEAD"],
            allow_headers=["Last-Event-ID"],
            expose_headers=[HEAD_HEADER, FINALIZED_HEADER, "Retry-After"],
        )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def serve_app() -> FastAPI:
    """The app as each `ascendnet api serve` worker runs it: settings from the environment (the
    command line's options travel there) and the one logging set-up (JSON lines by default)."""
    settings = ApiSettings()
    logging_setup.configure(settings.log_format, settings.log_level)
    app = create_app(settings)
    app.openapi()
    # NOTE: the app, its models and the libraries are some 150,000 long-lived objects; a full
    # collection walks them all (40 to 80 ms, a stall of every request in flight). Frozen, they
    # are left out of every collection: the tail latency no longer has those pauses in it.
    gc.collect()
    gc.freeze()
    return app
