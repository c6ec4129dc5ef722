"""Per-client rate limiting: an in-process token bucket per client IP.

Each client may burst `burst` requests, refilled at `rate` per second. A request without a
token is answered 429 with `Retry-After` (whole seconds until a token is back). Buckets live in
the process: with several workers each keeps its own, so the effective limit is per worker;
put a shared limiter in front (a proxy) when that matters. The table of buckets is bounded:
the least recently seen clients are forgotten first (they come back with a full bucket).
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

#: Paths probes call: never limited, so a busy API is not restarted by its orchestrator.
EXEMPT_PATHS = frozenset({"/health", "/ready"})


class TokenBuckets:
    """Token buckets keyed by client; not thread-safe (used from the event loop only)."""

    def __init__(
        self, rate: float, burst: int, max_clients: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """Take a token for `client`: 0.0 when allowed, else the seconds until one is back."""
        now = self.clock()
        tokens, last = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


class RateLimitMiddleware:
    """Answers 429 (JSON error, Retry-After) when a client IP runs out of tokens."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client[0] if client else "unknown")
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        body = json.dumps(
            {
                "error": "rate_limited",
                "message": (
                    f"Too many requests from this client: at most {self.buckets.rate:g} per second "
                    f"(bursts of {self.buckets.burst}). Retry after {retry_after} s."
                ),
                "problems": [],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})
