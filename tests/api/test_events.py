"""/events: the raw event log with provenance equals what the chain emitted."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import create_app
from indexer import db
from tests.api.conftest import Api, api_settings

pytestmark = pytest.mark.anvil


def _prov(e: object) -> tuple[object, ...]:
    if isinstance(e, dict):
        return (
            e["block_number"],
            e["block_hash"],
            e["tx_hash"],
            e["log_index"],
            e["contract"],
            e["address"],
            e["event"],
        )
    return (e.block_number, e.block_hash, e.tx_hash, e.log_index, e.contract, e.address, e.name)  # type: ignore[attr-defined]


def test_the_log_is_every_chain_event_in_order(api: Api) -> None:
    events = api.all("/events", limit=50)
    assert [_prov(e) for e in events] == [_prov(e) for e in api.history.events]
    assert all(e["chain_id"] == api.history.chain_id and not e["orphaned"] for e in events)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    stamps = {ref.number: ref.timestamp for ref, _ in api.history.blocks}
    assert all(e["block_timestamp"] == stamps[e["block_number"]] for e in events)
    backwards = api.all("/events", order="desc", limit=500)
    assert [e["id"] for e in backwards] == ids[::-1]
    # Reorged events are listed on request; this history has none, so nothing changes.
    assert [e["id"] for e in api.all("/events", include_reorged="true", limit=500)] == ids


def test_args_are_exact(api: Api) -> None:
    (posted,) = [
        e
        for e in api.all("/events", event="JobPosted")
        if e["args"]["job_id"] == str(api.history.jobs["erc20"])
    ]
    chain = next(e for e in api.history.named("JobPosted") if e.job_id == api.history.jobs["erc20"])
    assert posted["args"]["amount"] == str(chain.amount)
    assert posted["args"]["spec_hash"] == "0x" + chain.spec_hash.hex()
    assert posted["args"]["asset"] == api.history.token_asset


def test_filters(api: Api) -> None:
    chain = api.history.events
    market = api.all("/events", contract="PromptMarketplace", limit=500)
    assert [_prov(e) for e in market] == [_prov(e) for e in chain if e.contract == "PromptMarketplace"]
    bids = api.all("/events", event="BidPlaced", contract="ComputeRental", limit=500)
    assert len(bids) == len(api.history.named("BidPlaced"))
    tx = chain[-1].tx_hash
    by_tx = api.all("/events", tx_hash=tx.upper().replace("0X", "0x"))
    assert [_prov(e) for e in by_tx] == [_prov(e) for e in chain if e.tx_hash == tx]
    first, last = chain[10].block_number, chain[30].block_number
    ranged = api.all("/events", from_block=first, to_block=last, limit=7)
    assert [_prov(e) for e in ranged] == [_prov(e) for e in chain if first <= e.block_number <= last]
    assert api.all("/events", from_block=last, to_block=first) == []
    # An address: events emitted by it, or naming it in any argument.
    reader1 = api.who("reader1")
    named = api.all("/events", address=reader1.lower(), limit=500)
    assert named and all(reader1 in str(e["args"].values()) for e in named)
    assert {e["event"] for e in named} >= {"LicensePurchased", "KeyDelivered", "PromptRated"}
    compute = api.history.protocol.compute.address
    assert len(api.all("/events", address=compute, limit=500)) >= len(
        [e for e in chain if e.address == compute]
    )


def test_a_log_stored_in_the_older_form_answers_the_same(sqlite_api: Api, tmp_path: Path) -> None:
    """A table the indexer wrote before migration 0005 (integers as JSON numbers) gets the
    same answers: the API turns its integers into strings itself, and finds a job's or a
    token's events by either form of the id."""
    older = tmp_path / "older.sqlite3"
    shutil.copyfile(sqlite_api.url.removeprefix("sqlite:///"), older)
    engine = db.make_engine(f"sqlite:///{older}")
    db.downgrade(engine, "0004")
    with engine.connect() as conn:
        sample = conn.execute(sa.text("SELECT args FROM events WHERE event = 'JobPosted' LIMIT 1")).scalar()
    engine.dispose()
    assert re.search(r'"job_id":[0-9]', sample), sample
    history = sqlite_api.history
    block = history.named("JobPosted")[0].block_number
    urls = [
        "/events?limit=500",
        f"/events?address={history.who['reader1']}&limit=500",
        f"/jobs/{history.jobs['erc20']}/history",
        f"/prompts/{next(iter(history.tokens.values()))}/history",
        f"/blocks/{block}",
    ]
    with TestClient(create_app(api_settings(f"sqlite:///{older}"))) as client:
        for url in urls:
            theirs, ours = client.get(url), sqlite_api.client.get(url)
            assert theirs.status_code == ours.status_code == 200, url
            body = ours.json()
            assert body.get("data", body.get("events")), url
            assert theirs.json() == body, url
