"""/stream: a subscriber sees events emitted on-chain after it subscribed (once indexed),
resumes with Last-Event-ID from exactly where it left off, and is told about reorgs.

A real uvicorn server on 127.0.0.1 (in a thread of the test process) over read models the
indexer's runner fills from this module's own anvil.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.main import create_app
from chain.contracts import Protocol
from tests.api.conftest import api_settings
from tests.conftest import free_port
from tests.indexer.activity import Activity
from tests.indexer.harness import (  # noqa: F401 - fixtures
    Chain,
    activity,
    chain,
    index_once,
    protocol,
)

pytestmark = pytest.mark.anvil


@dataclass
class Message:
    event: str | None = None
    id: str | None = None
    data: str = ""
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


class SseClient:
    """Reads an SSE stream in a thread; parsed messages (comments included) land in a queue."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.messages: queue.Queue[Message] = queue.Queue()
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, read=None))
        self._response: httpx.Response | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, headers or {}), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the stream did not open"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        with self._client.stream("GET", url, headers=headers) as response:
            self._response = response
            self.status = response.status_code
            self.headers = response.headers
            self._ready.set()
            current = Message()
            try:
                for line in response.iter_lines():
                    if line == "":
                        self.messages.put(current)
                        current = Message()
                    elif line.startswith(":"):
                        current.comments.append(line[1:].strip())
                    else:
                        name, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        if name == "data":
                            current.data = f"{current.data}\n{value}" if current.data else value
                        elif name == "event":
                            current.event = value
                        elif name == "id":
                            current.id = value
                        elif name == "retry":
                            current.retry = int(value)
            except (httpx.HTTPError, RuntimeError):
                pass  # closed by the test

    def next_event(self, timeout: float = 20.0) -> Message:
        """The next message that is not only a comment."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no event arrived in time")
            message = self.messages.get(timeout=left)
            if message.event is not None or message.data:
                return message

    def no_event_within(self, seconds: float) -> bool:
        try:
            self.next_event(timeout=seconds)
        except (AssertionError, queue.Empty):
            return True
        return False

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._client.close()
        self._thread.join(timeout=10)


@pytest.fixture()
def served(chain: Chain, protocol: Protocol, activity: Activity, tmp_path: Path) -> Iterator[tuple[str, str]]:  # noqa: F811
    """(the API's base URL, the database URL) after indexing an initial bit of history."""
    db_url = f"sqlite:///{tmp_path / 'indexer.sqlite3'}"
    activity.send_mined(activity.mints(chain.accounts[4:6], 2, salt=1))
    index_once(db_url, protocol.deployment, [chain.url])
    settings = api_settings(db_url, api_stream_poll=0.05, api_stream_keepalive=0.3)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", db_url
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_subscribe_see_new_events_resume_and_hear_about_reorgs(
    served: tuple[str, str],
    chain: Chain,  # noqa: F811
    protocol: Protocol,  # noqa: F811
    activity: Activity,  # noqa: F811
) -> None:
    base, db_url = served
    before = httpx.get(f"{base}/events", params={"order": "desc", "limit": 1}).json()["data"][0]["id"]

    live = SseClient(f"{base}/stream")
    try:
        assert live.status == 200 and live.headers["content-type"].startswith("text/event-stream")
        assert live.headers["X-Indexed-Head"]
        hello = live.next_event()
        assert (hello.event, hello.retry, hello.id, hello.json()) == ("open", 3000, None, {"after": before})
        # Only what happens from now on: nothing already indexed is replayed.
        assert live.no_event_within(0.5)

        # Emitted on-chain after subscribing, then indexed: two mints, two blocks.
        activity.send_mined(activity.mints(chain.accounts[6:8], 2, salt=2), per_block=1)
        index_once(db_url, protocol.deployment, [chain.url])
        got = [live.next_event() for _ in range(4)]
        assert [m.event for m in got] == ["log"] * 4
        assert [m.json()["event"] for m in got] == ["Transfer", "PromptMinted", "Transfer", "PromptMinted"]
        ids = [int(m.id or 0) for m in got]
        assert ids == sorted(ids) and ids[0] > before
        assert all(int(m.json()["id"]) == int(m.id or 0) for m in got)
        listed = httpx.get(f"{base}/events", params={"order": "desc", "limit": 4}).json()["data"][::-1]
        assert [m.json() for m in got] == listed
        # Idle: keep-alive comments, no events.
        assert any("keep-alive" in c for c in _comments_within(live, 1.0))
    finally:
        live.close()

    # Reconnect with the id of the second event: only the later ones come, in order.
    resumed = SseClient(f"{base}/stream", headers={"Last-Event-ID": str(ids[1])})
    try:
        assert resumed.next_event().json() == {"after": ids[1]}
        replay = [resumed.next_event() for _ in range(2)]
        assert [int(m.id or 0) for m in replay] == ids[2:]
        assert resumed.no_event_within(0.5)

        # A reorg drops the block of the last mint: the stream says which logs it removed.
        chain.rpc("anvil_reorg", [1, []])
        activity.resync()
        index_once(db_url, protocol.deployment, [chain.url])
        notice = resumed.next_event()
        assert notice.event == "reorg"
        body = notice.json()
        assert body["depth"] == 1 and body["ancestor"] == replay[0].json()["block_number"] - 1
        assert [(o["tx_hash"], o["log_index"], o["event"]) for o in body["orphaned"]] == [
            (m.json()["tx_hash"], m.json()["log_index"], m.json()["event"]) for m in replay
        ]
        assert int(notice.id or 0) > ids[-1]
    finally:
        resumed.close()

    # The API agrees: orphaned events are flagged (and only listed on request), the reorg counted.
    canonical = httpx.get(f"{base}/events", params={"from_block": replay[0].json()["block_number"]}).json()[
        "data"
    ]
    assert canonical == []
    flagged = httpx.get(
        f"{base}/events", params={"from_block": replay[0].json()["block_number"], "include_reorged": "true"}
    ).json()["data"]
    assert [e["id"] for e in flagged] == ids[2:] and all(e["orphaned"] for e in flagged)
    assert all(e["orphaned_by"] is not None for e in flagged)
    status = httpx.get(f"{base}/status").json()["data"]
    assert status["reorg_count"] == 1 and status["last_reorg"]["depth"] == 1

    # Resuming from before the reorg replays history as it happened: the logs, then the notice.
    again = SseClient(f"{base}/stream?after={ids[1]}")
    try:
        kinds = [again.next_event().event for _ in range(4)]
        assert kinds == ["open", "log", "log", "reorg"]
    finally:
        again.close()


def _comments_within(client: SseClient, seconds: float) -> list[str]:
    comments: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            message = client.messages.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            break
        assert message.event is None, "an event arrived while idle"
        comments.extend(message.comments)
    return comments
