"""`ascendnet api ...`: serve the read-only API."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
from typing import Annotated, Any

import typer

from ascendnet import log
from ascendnet.errors import ConfigError

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
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.api_host,
        "port": settings.api_port,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": ",".join(trusted) if trusted else None,
        "log_level": settings.log_level,
        "access_log": False,
        "server_header": False,
        # NOTE: event streams never end on their own; on SIGTERM they get this long to close.
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }
    if settings.api_workers > 1:
        supervise(options, settings.api_workers)
    else:
        uvicorn.run(APP_FACTORY, **options)


# ---------------------------------------------------------------- several workers

#: A worker that exits sooner than this after its start failed to start: give up, do not loop.
STARTUP_S = 10.0


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket on host:port that other processes may bind too (SO_REUSEPORT): the
    kernel spreads new connections over all the listening ones."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def run_worker(options: dict[str, Any], sock: socket.socket) -> None:
    """One worker process: a uvicorn server on its own listening socket."""
    import uvicorn

    uvicorn.Server(uvicorn.Config(APP_FACTORY, **options)).run(sockets=[sock])


def supervise(options: dict[str, Any], workers: int) -> None:
    """Run `workers` worker processes until SIGTERM or SIGINT, replacing any that dies.

    NOTE: not uvicorn's own `workers`: its workers share one listening socket, and whichever
    is awake when connections arrive takes them all (64 clients opened at once split 49 to
    15 over two workers, and the busier one's queue set the tail latency). Each worker here
    serves its own SO_REUSEPORT socket, so the kernel deals connections out over them.
    The sockets are bound and listening here, before any worker starts, and stay open here:
    connections the kernel deals to a worker that is still starting (about a second, the
    imports) or being replaced wait in its socket's backlog. (Bound by each worker as it came
    up, the first worker up took every connection opened meanwhile: all 64 of a benchmark's.)
    """
    try:
        socks = [listening_socket(options["host"], options["port"]) for _ in range(workers)]
    except OSError as exc:
        where = f"{options['host']}:{options['port']}"
        raise ConfigError(
            f"The API cannot listen on {where}: {exc.strerror}. Stop what holds the port or pick "
            "another one (--port or ASCENDNET_API_PORT)."
        ) from exc
    context = multiprocessing.get_context("spawn")
    logger = log.get_logger("api")

    def start(i: int) -> tuple[Any, float]:
        proc = context.Process(target=run_worker, args=(options, socks[i]), name="ascendnet-api-worker")
        proc.start()
        return proc, time.monotonic()

    stopping = threading.Event()
    interrupted: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        interrupted.append(signum)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    procs = [start(i) for i in range(workers)]
    failed = False
    try:
        while not stopping.wait(0.5):
            for i, (proc, started) in enumerate(procs):
                if proc.is_alive():
                    continue
                if time.monotonic() - started < STARTUP_S:
                    logger.error("api_worker_failed_to_start", exitcode=proc.exitcode)
                    failed = True
                    stopping.set()
                    break
                logger.warning("api_worker_replaced", exitcode=proc.exitcode)
                procs[i] = start(i)
    finally:
        if signal.SIGINT in interrupted:
            # Ctrl-C reached the workers too (one process group): a second signal would make
            # uvicorn skip its graceful shutdown, so give them the time it takes first.
            deadline = time.monotonic() + GRACEFUL_SHUTDOWN_S + 2
            for proc, _ in procs:
                proc.join(max(deadline - time.monotonic(), 0))
        for proc, _ in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for proc, _ in procs:
            proc.join(GRACEFUL_SHUTDOWN_S + 10)
            if proc.is_alive():
                proc.kill()
                proc.join()
    if failed:
        raise typer.Exit(3)
