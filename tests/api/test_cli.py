"""`ascendnet api serve`: a real uvicorn on 127.0.0.1, started and stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import free_port

pytestmark = pytest.mark.anvil
REPO = Path(__file__).resolve().parents[2]


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ascendnet.cli", "api", "serve", *args],
        cwd=REPO,
        env={**os.environ, "ASCENDNET_LOG_FORMAT": "json", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_up(url: str, proc: subprocess.Popen[str], timeout: float = 90.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.communicate()}")
        try:
            return httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not come up")


def test_two_workers_serve_one_postgresql_on_loopback_and_stop_on_sigterm(indexed_postgresql: str) -> None:
    port = free_port()
    proc = _serve("--port", str(port), "--database-url", indexed_postgresql, "--workers", "2")
    try:
        health = _wait_up(f"http://127.0.0.1:{port}/health", proc)
        assert health.status_code == 200 and health.headers["X-Indexed-Head"]
        with httpx.Client(timeout=5) as client:
            pages = [client.get(f"http://127.0.0.1:{port}/jobs?limit=2") for _ in range(8)]
        assert all(p.status_code == 200 and len(p.json()["data"]) == 2 for p in pages)
        assert "server" not in pages[0].headers
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert '"event": "api_start"' in err and '"host": "127.0.0.1"' in err


def test_serve_refuses_a_database_it_cannot_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from api.cli import api_app
    from api.errors import DatabaseUnavailable

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not serve"))
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setattr("ascendnet.log.configure", lambda *a, **k: None)
    result = CliRunner().invoke(
        api_app,
        ["serve", "--port", str(free_port()), "--database-url", f"sqlite:///{tmp_path / 'none.sqlite3'}"],
    )
    assert isinstance(result.exception, DatabaseUnavailable)
    assert "The read models cannot be read" in str(result.exception) and "ascendnet indexer run" in str(
        result.exception
    )


def test_serve_hands_uvicorn_the_factory_and_options(
    indexed_sqlite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from api import cli
    from api.cli import APP_FACTORY, GRACEFUL_SHUTDOWN_S, api_app

    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(cli, "supervise", lambda options, workers: calls.append(((workers,), options)))
    # Logging set-up would bind the runner's captured stderr, closed after the invocation.
    monkeypatch.setattr("ascendnet.log.configure", lambda *a, **k: None)
    # `serve` writes its options into the environment (for the workers): keep that to this test.
    monkeypatch.setattr(os, "environ", {**os.environ, "ASCENDNET_API_TRUSTED_PROXIES": "10.0.0.1"})
    for workers in ("1", "3"):
        result = CliRunner().invoke(
            api_app, ["serve", "--port", "8123", "--database-url", indexed_sqlite, "--workers", workers]
        )
        assert result.exit_code == 0, result.output
    # One worker: uvicorn itself. Several: one uvicorn server per worker process (supervise).
    (single, kwargs), ((workers_n,), options) = calls
    assert single == (APP_FACTORY,) and workers_n == 3 and options == kwargs
    assert kwargs["factory"] is True
    assert (kwargs["host"], kwargs["port"]) == ("127.0.0.1", 8123)
    assert (kwargs["proxy_headers"], kwargs["forwarded_allow_ips"]) == (True, "10.0.0.1")
    # Streams never end by themselves: a stopping server gives them a bounded grace period.
    assert kwargs["timeout_graceful_shutdown"] == GRACEFUL_SHUTDOWN_S
    # The workers build their settings from the same environment.
    assert os.environ["ASCENDNET_DATABASE_URL"] == indexed_sqlite


def test_serve_gets_the_compiled_http_parser_and_event_loop() -> None:
    """uvicorn's defaults ("auto") pick httptools and uvloop when installed (uvicorn[standard]):
    the pure-Python parser (h11) and asyncio's loop cost about as much CPU as a request."""
    import uvloop
    from uvicorn.loops.auto import auto_loop_factory
    from uvicorn.protocols.http.auto import AutoHTTPProtocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert AutoHTTPProtocol is HttpToolsProtocol
    loop = auto_loop_factory()()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_workers_default_to_one_per_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.settings import MAX_DEFAULT_WORKERS, ApiSettings

    monkeypatch.delenv("ASCENDNET_API_WORKERS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert ApiSettings(_env_file=None, env="local").api_workers == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(64)))
    assert ApiSettings(_env_file=None, env="local").api_workers == MAX_DEFAULT_WORKERS


def test_each_worker_listens_on_its_own_socket_of_the_one_port() -> None:
    """Several workers: one SO_REUSEPORT socket each on the same port, so the kernel spreads
    connections over them (one shared socket let a burst of clients land on one)."""
    from api.cli import listening_socket

    port = free_port()
    first, second = listening_socket("127.0.0.1", port), listening_socket("127.0.0.1", port)
    try:
        assert first.getsockname() == second.getsockname() == ("127.0.0.1", port)
        # Listening already: connections made now wait in the backlog of either socket.
        assert first.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert second.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    finally:
        first.close()
        second.close()


def test_connections_opened_while_the_workers_start_are_spread_over_all_of_them(indexed_sqlite: str) -> None:
    """The sockets listen before any worker starts: connections opened at once, as soon as the
    first worker answers, land on both workers, not all on the first one up."""
    import psutil

    port = free_port()
    proc = _serve("--port", str(port), "--database-url", indexed_sqlite, "--workers", "2")
    conns: list[socket.socket] = []
    try:
        _wait_up(f"http://127.0.0.1:{port}/health", proc)
        conns = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(64)]
        for conn in conns:  # one request on each: answered only by the worker that owns it
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for conn in conns:
            assert conn.recv(64).startswith(b"HTTP/1.1 200")
        mine = {c.getsockname()[1] for c in conns}
        owners: dict[int, int] = {}
        for child in psutil.Process(proc.pid).children(recursive=True):
            for c in child.net_connections(kind="tcp"):
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port and c.raddr.port in mine:
                    owners[child.pid] = owners.get(child.pid, 0) + 1
        assert sum(owners.values()) == 64
        # Dealt by hash: 64 connections split evenly give each worker 32 give or take a few; a
        # split with fewer than 12 on one (one in a million) means they were not spread.
        assert len(owners) == 2 and min(owners.values()) >= 12, owners
    finally:
        for conn in conns:
            conn.close()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def test_serve_stops_with_an_error_when_the_port_is_taken(indexed_sqlite: str) -> None:
    port = free_port()
    with socket.socket() as taken:  # held without SO_REUSEPORT: no worker can bind the port
        taken.bind(("127.0.0.1", port))
        taken.listen()
        proc = _serve("--port", str(port), "--database-url", indexed_sqlite, "--workers", "2")
        try:
            _out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 2, err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
