"""A JSON-RPC proxy on 127.0.0.1 in front of anvil that misbehaves on purpose.

It answers like the unreliable providers the indexer must survive: HTTP errors, JSON-RPC errors,
timeouts, dropped connections, "query returned more than 10000 results", a lagging
load-balanced backend (an old head, no headers for newer blocks and an EMPTY log list for
them), and logs whose block hash no header has.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

#: Faults a script entry can name (one entry is used per HTTP request).
FAULTS = ("ok", "http500", "http429", "rpc_error", "timeout", "drop", "lag", "bad_hash", "too_many")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that timed out and hung up are expected here


@dataclass
class FaultyRpc:
    """Forwards to `upstream`. Each HTTP request takes the next entry of `script` (then "ok").

    `max_logs_span`: eth_getLogs over more blocks than this always gets -32005 "query returned
    more than 10000 results". `lag_blocks`: how far behind a "lag" answer pretends to be.
    `only_methods`: script entries are only used by requests containing one of these methods."""

    upstream: str
    script: deque[str] = field(default_factory=deque)
    max_logs_span: int | None = None
    lag_blocks: int = 50
    delay_s: float = 2.0
    only_methods: frozenset[str] | None = None
    #: Answer the `finalized` block tag with an error, like nodes that predate it.
    no_finalized_tag: bool = False
    injected: Counter[str] = field(default_factory=Counter)
    requests_seen: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def plan(self, entries: Iterable[str]) -> None:
        for e in entries:
            assert e in FAULTS, e
        with self._lock:
            self.script.extend(entries)

    def start(self) -> FaultyRpc:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy._handle(self, body)

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultyRpc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- internals

    def _next_fault(self, calls: list[dict[str, Any]]) -> str:
        with self._lock:
            self.requests_seen += 1
            if self.only_methods is not None and not any(c.get("method") in self.only_methods for c in calls):
                return "ok"
            return self.script.popleft() if self.script else "ok"

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        payload = json.loads(body)
        calls = payload if isinstance(payload, list) else [payload]
        fault = self._next_fault(calls)
        if fault != "ok":
            self.injected[fault] += 1
        if fault == "http500":
            return _reply(handler, 500, b"internal error")
        if fault == "http429":
            return _reply(handler, 429, b"rate limited")
        if fault == "drop":
            handler.close_connection = True
            handler.connection.close()
            return None
        if fault == "timeout":
            time.sleep(self.delay_s)
        answers = self._answers(calls, fault)
        out = answers if isinstance(payload, list) else answers[0]
        return _reply(handler, 200, json.dumps(out).encode())

    def _answers(self, calls: list[dict[str, Any]], fault: str) -> list[dict[str, Any]]:
        """Calls that need no tampering go upstream in one batch; the others one by one."""
        plain = fault in ("ok", "timeout", "too_many") and not self.no_finalized_tag
        simple = [c for c in calls if plain and c.get("method") != "eth_getLogs"]
        upstream = iter(self._forward_batch(simple)) if simple else iter(())
        return [
            next(upstream) if plain and c.get("method") != "eth_getLogs" else self._answer(c, fault)
            for c in calls
        ]

    def _answer(self, call: dict[str, Any], fault: str) -> dict[str, Any]:
        method = call.get("method")
        params = call.get("params") or []
        rid = call.get("id")
        if method == "eth_getLogs":
            flt = params[0]
            span = _num(flt.get("toBlock", "latest"), self._head()) - _num(flt.get("fromBlock", "0x0"), 0) + 1
            if fault == "too_many" or (self.max_logs_span is not None and span > self.max_logs_span):
                return _error(rid, -32005, "query returned more than 10000 results")
        if self.no_finalized_tag and method == "eth_getBlockByNumber" and params and params[0] == "finalized":
            return _error(rid, -32602, "invalid block tag: finalized")
        if fault == "rpc_error":
            return _error(rid, -32000, "internal error: upstream unavailable")
        if fault == "lag":
            return self._lagging(call)
        answer = self._forward(call)
        if fault == "bad_hash" and method == "eth_getLogs" and answer.get("result"):
            first = dict(answer["result"][0])
            first["blockHash"] = "0x" + "ab" * 32
            answer["result"] = [first, *answer["result"][1:]]
        return answer

    def _lagging(self, call: dict[str, Any]) -> dict[str, Any]:
        """What a backend `lag_blocks` behind answers: it has not seen the newer blocks."""
        method = call.get("method")
        params = call.get("params") or []
        rid = call.get("id")
        lag_head = max(self._head() - self.lag_blocks, 0)
        if method == "eth_blockNumber":
            return {"jsonrpc": "2.0", "id": rid, "result": hex(lag_head)}
        if method == "eth_getBlockByNumber" and params and params[0] not in ("finalized", "safe", "earliest"):
            number = lag_head if params[0] in ("latest", "pending") else int(params[0], 16)
            if number > lag_head:
                return {"jsonrpc": "2.0", "id": rid, "result": None}
            return self._forward({**call, "params": [hex(number), *params[1:]]})
        if method == "eth_getLogs":
            answer = self._forward(call)
            if isinstance(answer.get("result"), list):
                answer["result"] = [lg for lg in answer["result"] if int(lg["blockNumber"], 16) <= lag_head]
            return answer
        return self._forward(call)

    def _head(self) -> int:
        return int(
            self._forward({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []})["result"],
            16,
        )

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _forward(self, call: dict[str, Any]) -> dict[str, Any]:
        resp = self._session().post(self.upstream, json=call, timeout=30)
        resp.raise_for_status()
        answer: dict[str, Any] = resp.json()
        return answer

    def _forward_batch(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        resp = self._session().post(self.upstream, json=calls, timeout=30)
        resp.raise_for_status()
        by_id = {a.get("id"): a for a in resp.json()}
        return [by_id[c.get("id")] for c in calls]


def _num(tag: str, default: int) -> int:
    if isinstance(tag, str) and tag.startswith("0x"):
        return int(tag, 16)
    return default


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
