"""/blocks/{n}: each block's state digest (the one `indexer verify` compares) and its events."""

from __future__ import annotations

import pytest

from indexer.db import make_engine
from indexer.digest import GENESIS, stored_digests
from tests.api.conftest import Api, api_settings
from tests.indexer.history import History

pytestmark = pytest.mark.anvil


def _digests(url: str) -> dict[int, str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return stored_digests(conn)
    finally:
        engine.dispose()


def test_a_block_with_events(api: Api) -> None:
    ref, logs = api.history.blocks[len(api.history.blocks) // 2]
    block = api.ok(f"/blocks/{ref.number}")["data"]
    assert (block["number"], block["hash"], block["digest_block"]) == (ref.number, ref.hash, ref.number)
    assert block["digest"] == _digests(api.url)[ref.number]
    assert [(e["tx_hash"], e["log_index"], e["event"]) for e in block["events"]] == [
        (e.tx_hash, e.log_index, e.name) for e in logs
    ]
    assert block["event_count"] == len(logs) and not block["events_truncated"]


def test_a_block_without_events_carries_the_digest_before_it(api: Api) -> None:
    with_events = {ref.number for ref, _ in api.history.blocks}
    head = api.ok("/status")["data"]["read_models_block"]
    quiet = next(n for n in range(head, 0, -1) if n not in with_events)
    before = max(n for n in with_events if n < quiet)
    block = api.ok(f"/blocks/{quiet}")["data"]
    assert block["events"] == [] and block["event_count"] == 0
    assert (block["digest_block"], block["digest"]) == (before, _digests(api.url)[before])
    genesis = api.ok("/blocks/0")["data"]
    assert (genesis["digest"], genesis["digest_block"]) == (GENESIS, None)


def test_beyond_the_read_models_is_404(api: Api) -> None:
    head = api.ok("/status")["data"]["read_models_block"]
    response = api.get(f"/blocks/{head + 1}")
    assert response.status_code == 404 and f"reach block {head}" in response.json()["message"]


def test_sqlite_and_postgresql_serve_the_same_digests(
    indexed_sqlite: str, indexed_postgresql: str, history: History
) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    numbers = [ref.number for ref, _ in history.blocks]
    answers = []
    for url in (indexed_sqlite, indexed_postgresql):
        with TestClient(create_app(api_settings(url))) as client:
            answers.append([client.get(f"/blocks/{n}").json()["data"]["digest"] for n in numbers])
    assert answers[0] == answers[1]
