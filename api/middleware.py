"""ASGI middleware: HEAD served as GET without a body, and freshness headers on every answer.

Plain ASGI (not BaseHTTPMiddleware): they wrap `send` and add no task or copy of the body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.freshness import Freshness, FreshnessCache
from api.routes.stream import HEAD_SCOPE_KEY


class HeadMiddleware:
    """Every GET endpoint also answers HEAD: routed as GET, headers kept (Content-Length
    included), body dropped. The OpenAPI document lists GET only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        scope = dict(scope, method="GET")
        scope[HEAD_SCOPE_KEY] = True

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, send_headers_only)


class FreshnessHeadersMiddleware:
    """Adds X-Indexed-Head and X-Finalized-Block to every response: the snapshot the request's
    data came from when it read any, else the cached latest (errors, probes, the document)."""

    def __init__(self, app: ASGIApp, cache: FreshnessCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                fresh = state.get("freshness")
                if not isinstance(fresh, Freshness):
                    fresh = await self.cache.latest() or Freshness()
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *fresh.headers()]
            await send(message)

        await self.app(scope, receive, send_with_headers)
