"""`ascendnet api ...`: serve the read-only API."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ascendnet import log

api_app = typer.Typer(help="The read-only HTTP API over the indexer's read models.", no_args_is_help=True)

#: What `serve` hands uvicorn: the factory, so that every worker builds its own app (its own
#: connection pool) from the same environment.
APP_FACTORY = "api.main:serve_app"
#: Seconds a stopping server waits for open requests (and streams) before it cancels them.
GRACEFUL_SHUTDOWN_S = 5


@api_app.callback()
def api_group() -> None:
    """The read-only HTTP API over the indexer's read models."""


@api_app.command("serve")
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on [ASCENDNET_API_HOST, default 127.0.0.1].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [ASCENDNET_API_PORT, default 8000].")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="The indexer's database, opened read-only [ASCENDNET_DATABASE_URL]."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Worker processes [ASCENDNET_API_WORKERS, default one per CPU, at most 8]."
        ),
    ] = None,
) -> None:
    """Serve the API with uvicorn (Ctrl-C stops it). Several workers, or several hosts, may
    serve one PostgreSQL database."""
    import uvicorn

    from api.deps import make_api_engine
    from api.errors import DatabaseUnavailable
    from api.freshness import read_freshness
    from api.settings import ApiSettings

    # NOTE: options travel to the workers through the environment, as the settings they are.
    for name, value in (
        ("ASCENDNET_API_HOST", host),
        ("ASCENDNET_API_PORT", port),
        ("ASCENDNET_DATABASE_URL", database_url),
        ("ASCENDNET_API_WORKERS", workers),
    ):
        if value is not None:
            os.environ[name] = str(value)
    settings = ApiSettings()
    log.configure(settings.log_format, settings.log_level)
    engine = make_api_engine(settings)
    try:
        with engine.connect() as conn, conn.begin():
            fresh = read_freshness(conn)
    except Exception as exc:  # noqa: BLE001 - any failure to read means the same to the operator
        raise DatabaseUnavailable(
            f"{type(exc).__name__} at {engine.url.render_as_string(hide_password=True)}"
        ) from exc
    finally:
        engine.dispose()
    log.get_logger("api").info(
        "api_start",
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        indexed_head=fresh.indexed_head,
    )
    trusted = settings.api_trusted_proxies
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=",".join(trusted) if trusted else None,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        # NOTE: event streams never end on their own; on SIGTERM they get this long to close.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
