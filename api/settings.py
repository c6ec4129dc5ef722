"""Settings of the API deployable (`ascendnet api serve`), from ASCENDNET_* variables and .env."""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode
from sqlalchemy.engine import make_url

from ascendnet.errors import ConfigError
from ascendnet.settings import BaseAscendSettings

#: The most worker processes `api_workers` defaults to, however many CPUs there are.
MAX_DEFAULT_WORKERS = 8


#: Read threads per worker on PostgreSQL unless ASCENDNET_API_THREADS says otherwise.
DEFAULT_PG_THREADS = 8


def default_workers() -> int:
    """One worker process per CPU this process may run on, at most `MAX_DEFAULT_WORKERS`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))


class ApiSettings(BaseAscendSettings):
    """Where the read models live and how the API serves them.

    Environment: ASCENDNET_DATABASE_URL (shared with the indexer), ASCENDNET_API_HOST,
    ASCENDNET_API_PORT, ASCENDNET_API_CORS_ORIGINS (comma-separated or a JSON list),
    ASCENDNET_API_RATE_LIMIT, ASCENDNET_API_RATE_BURST, ASCENDNET_API_READY_LAG, ...

    Outside ``env=local`` it refuses what is only safe on a laptop: a wildcard CORS origin, a
    wildcard of trusted proxies, no rate limit.
    """

    #: SQLAlchemy URL of the indexer's database. Empty: the indexer's default SQLite file
    #: (`<data_dir>/indexer.sqlite3`). The API opens it read-only.
    database_url: str = ""
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65_535)
    #: uvicorn worker processes (each has its own connection pool and rate-limit buckets);
    #: default one per CPU this process may run on, at most 8.
    api_workers: int = Field(default_factory=lambda: default_workers(), ge=1, le=64)
    #: Origins allowed by CORS (exact origins such as https://app.example.org; "*" only locally).
    api_cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Sustained requests per second allowed per client IP; 0 turns rate limiting off (local only).
    api_rate_limit: float = Field(default=50.0, ge=0)
    #: Requests a client may burst above the sustained rate.
    api_rate_burst: int = Field(default=100, ge=1)
    #: Most client IPs tracked at once by the rate limiter (the least recently seen are dropped).
    api_rate_clients: int = Field(default=100_000, ge=1)
    #: Proxies whose X-Forwarded-For is trusted for the client IP (uvicorn's forwarded_allow_ips).
    api_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: /ready answers 200 while the indexer is at most this many blocks behind the node.
    api_ready_lag: int = Field(default=5, ge=0)
    #: /ready also needs a status row written within this many seconds (0: any age).
    api_ready_max_age: float = Field(default=60.0, ge=0)
    #: Page size when `limit` is not given, and the most a page holds (larger `limit`s are cut to
    #: it; the OpenAPI document's ceiling is 500).
    api_default_limit: int = Field(default=50, ge=1, le=500)
    api_max_limit: int = Field(default=500, ge=1, le=500)
    #: Seconds between the stream's polls of the read models for new positions.
    api_stream_poll: float = Field(default=0.5, gt=0, le=60)
    #: Seconds between keep-alive comments on an idle stream.
    api_stream_keepalive: float = Field(default=15.0, gt=0, le=300)
    #: Connections each worker's pool keeps open to the database.
    api_db_pool_size: int = Field(default=16, ge=1, le=256)
    #: Worker threads each process runs database reads in; 0 runs them on the event loop (no
    #: thread hop, but a slow read holds up the worker's other requests). Default: 0 on SQLite
    #: and on a PostgreSQL server of this host (reads of tens of microseconds, most of them one
    #: round trip), 8 on a PostgreSQL server elsewhere (round trips over a network).
    api_threads: int = Field(default=-1, ge=-1, le=256)
    #: Memory per worker for whole answers kept while the database has not changed (api.cache);
    #: 0 turns the cache off.
    api_cache_mb: float = Field(default=64.0, ge=0, le=16_384)

    @field_validator("api_cors_origins", "api_trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [v.strip() for v in text.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_outside_local(self) -> ApiSettings:
        # NOTE: same name as the base validator, so it replaces it: the API reads the database
        # only and holds no keys, so it needs no keystore outside local.
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'indexer.sqlite3'}"
        if self.api_threads < 0:
            self.api_threads = 0 if _local_database(self.database_url) else DEFAULT_PG_THREADS
        if self.api_default_limit > self.api_max_limit:
            raise ConfigError(
                f"ASCENDNET_API_DEFAULT_LIMIT ({self.api_default_limit}) is above ASCENDNET_API_MAX_LIMIT "
                f"({self.api_max_limit}); lower it or raise the maximum."
            )
        for origin in self.api_cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(
                    f"ASCENDNET_API_CORS_ORIGINS entry {origin!r} is not an origin; write it as "
                    "scheme://host[:port], e.g. https://app.example.org."
                )
        for proxy in self.api_trusted_proxies:
            if proxy != "*":
                try:
                    ipaddress.ip_network(proxy, strict=False)
                except ValueError as exc:
                    raise ConfigError(
                        f"ASCENDNET_API_TRUSTED_PROXIES entry {proxy!r} is not an IP address or network."
                    ) from exc
        if self.env == "local":
            return self
        if "*" in self.api_cors_origins:
            raise ConfigError(
                f"ASCENDNET_API_CORS_ORIGINS='*' is unsafe on {self.env}: list the dApp origins that may "
                "call the API (e.g. https://app.example.org)."
            )
        if "*" in self.api_trusted_proxies:
            raise ConfigError(
                f"ASCENDNET_API_TRUSTED_PROXIES='*' is unsafe on {self.env}: any client could forge "
                "X-Forwarded-For and dodge the rate limit. List your proxies' addresses."
            )
        if self.api_rate_limit == 0:
            raise ConfigError(
                f"ASCENDNET_API_RATE_LIMIT=0 turns rate limiting off, which is unsafe on {self.env}. "
                "Set a per-client rate (requests per second), e.g. 50."
            )
        return self


def _local_database(url: str) -> bool:
    """A SQLite file, or a PostgreSQL server on this host (TCP loopback or a Unix socket)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return True
    host = parsed.host or parsed.query.get("host")
    return host in (None, "", "localhost", "127.0.0.1", "::1") or str(host).startswith("/")
