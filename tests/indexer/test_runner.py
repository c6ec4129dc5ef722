"""`ascendnet indexer run/status/verify/rebuild` end to end, on SQLite and PostgreSQL."""

# ruff: noqa: F811  (the fixtures imported from harness are requested as test parameters)

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console

from ascendnet.storage import LocalContentStore, compute_cid
from chain.anvil import dev_accounts
from chain.contracts import Protocol
from chain.tx import TxSender
from indexer import models
from indexer import runner as runner_module
from indexer.metadata import MetadataResolver
from indexer.rpc import LogSource
from indexer.runner import Indexer
from tests.indexer.activity import Activity, Call, encoder
from tests.indexer.documents import document
from tests.indexer.faulty_rpc import FaultyRpc
from tests.indexer.harness import (  # noqa: F401
    REPO,
    Chain,
    Databases,
    activity,
    chain,
    chain_logs,
    clean_index,
    cli_command,
    cli_env,
    databases,
    index_once,
    json_lines,
    prepared_engine,
    protocol,
    read_models,
    run_cli,
    some_activity,
    status_of,
    wait_for,
    write_manifest,
)

pytestmark = pytest.mark.anvil


class TestRunCommand:
    def test_backfill_then_verify(
        self, chain: Chain, protocol: Protocol, activity: Activity, databases: Databases, tmp_path: Path
    ) -> None:
        some_activity(activity, chain, rounds=3)
        url = databases.new()
        manifest = write_manifest(protocol.deployment, tmp_path)
        logs = chain_logs(chain, protocol.deployment)

        done = run_cli(
            "indexer",
            "run",
            "--once",
            "--rpc-url",
            chain.url,
            "--database-url",
            url,
            "--manifest",
            str(manifest),
        )
        assert done.returncode == 0, done.stderr
        # Not a terminal: plain JSON log lines, no progress bar.
        lines = json_lines(done.stderr)
        assert [e["event"] for e in lines if e["event"].startswith("indexer_")][-1] == "indexer_stop"
        assert next(e for e in lines if e["event"] == "indexer_stop")["events"] == len(logs)
        assert "━" not in done.stderr

        status = status_of(url)
        assert status.indexed_head == chain.w3.eth.block_number
        assert status.lag == 0 and status.caught_up and status.events_per_second > 0
        assert read_models(url) == clean_index(databases, protocol.deployment, chain.url)

        verified = run_cli("indexer", "verify", "--database-url", url)
        assert verified.returncode == 0 and "identical" in verified.stdout, verified.stdout + verified.stderr

    def test_follows_the_head_refuses_a_second_writer_and_stops_on_sigterm(
        self, chain: Chain, protocol: Protocol, activity: Activity, databases: Databases, tmp_path: Path
    ) -> None:
        some_activity(activity, chain, rounds=1)
        url = databases.new()
        manifest = write_manifest(protocol.deployment, tmp_path)
        args = ["indexer", "run", "--rpc-url", chain.url, "--database-url", url, "--manifest", str(manifest)]
        log_path = tmp_path / "follower.log"
        with open(log_path, "w") as log_file:
            follower = subprocess.Popen(
                cli_command(*args), stderr=log_file, stdout=log_file, cwd=REPO, env=cli_env()
            )
        try:
            head = chain.w3.eth.block_number
            wait_for(lambda: (s := status_of(url)) is not None and s.indexed_head == head)
            activity.send_mined(activity.mints(chain.accounts[4:6], 4, salt=4242), per_block=2)
            head = chain.w3.eth.block_number
            wait_for(lambda: (s := status_of(url)) is not None and s.indexed_head == head and s.caught_up)

            second = run_cli(*args, "--once")
            assert second.returncode == 2
            assert "already writing" in second.stderr
            assert f"process {follower.pid}" in second.stderr

            follower.send_signal(signal.SIGTERM)
            assert follower.wait(timeout=30) == 0
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
        stop = [e for e in json_lines(log_path.read_text()) if e["event"] == "indexer_stop"]
        assert stop and stop[-1]["stopped_by_signal"] is True
        assert read_models(url) == clean_index(databases, protocol.deployment, chain.url)

    def test_bad_rpc_answers_cause_retries_not_data_loss(
        self, chain: Chain, protocol: Protocol, activity: Activity, databases: Databases
    ) -> None:
        some_activity(activity, chain, rounds=4, per_block=2)
        url = databases.new()
        getlogs = frozenset({"eth_getLogs"})
        with (
            FaultyRpc(chain.url) as dead,
            FaultyRpc(chain.url, max_logs_span=6, lag_blocks=40, delay_s=1.0, only_methods=getlogs) as flaky,
        ):
            dead.plan(["http500", "drop", "rpc_error", "http429"] * 3)
            flaky.plan(
                [
                    "lag",
                    "http500",
                    "too_many",
                    "lag",
                    "timeout",
                    "bad_hash",
                    "rpc_error",
                    "drop",
                    "lag",
                    "http429",
                ]
            )
            index_once(
                url,
                protocol.deployment,
                [dead.url, flaky.url],
                timeout=0.5,
                initial_span=16,
                max_attempts=20,
                backoff_max=0.05,
            )
            assert set(flaky.injected) == {
                "lag",
                "http500",
                "too_many",
                "timeout",
                "bad_hash",
                "rpc_error",
                "drop",
                "http429",
            }
            assert dead.injected["http500"] >= 1
        assert read_models(url) == clean_index(databases, protocol.deployment, chain.url)


def test_the_undo_log_is_pruned_below_the_finalized_block(
    chain: Chain, protocol: Protocol, activity: Activity, databases: Databases
) -> None:
    some_activity(activity, chain, rounds=3, per_block=2)
    url = databases.new()
    engine = prepared_engine(url)
    try:
        # One block a step, two confirmations: finality moves up as the backfill goes, and the
        # first step (before any finalized block is recorded) keeps undo entries for its block.
        index_once(
            url,
            protocol.deployment,
            [chain.url],
            engine=engine,
            finality="confirmations",
            confirmations=2,
            initial_span=1,
            max_span=1,
        )
        finalized = status_of(url).finalized_block
        with engine.connect() as conn:
            undo_blocks = set(conn.execute(sa.select(models.undo_log.c.block_number)).scalars())
    finally:
        engine.dispose()
    assert finalized == chain.w3.eth.block_number - 2
    assert undo_blocks, "the unfinalized blocks keep their undo entries"
    assert min(undo_blocks) >= finalized
    assert read_models(url) == clean_index(databases, protocol.deployment, chain.url)


class TestMetadata:
    """Prompt metadata is resolved from the content store once the runner reaches the head."""

    def _mint(self, protocol: Protocol, chain: Chain, store: LocalContentStore) -> tuple[str, str]:
        """Two prompts: one whose document is in `store`, one whose document is nowhere."""
        found = store.put(document("Runner haiku", "Resolved by the runner.", b"runner"))
        missing = str(compute_cid(document("Lost", "Never stored.", b"lost")))
        minter = TxSender(chain.w3, dev_accounts(5)[4])
        for cid, text in ((found, b"runner"), (missing, b"lost")):
            minter.transact(protocol.market.functions.mint(cid, hashlib.sha256(text).digest(), 0))
        return found, missing

    def test_the_runner_resolves_documents_at_the_head(
        self, chain: Chain, protocol: Protocol, databases: Databases, tmp_path: Path
    ) -> None:
        store = LocalContentStore(tmp_path / "content")
        found, missing = self._mint(protocol, chain, store)
        engine = prepared_engine(databases.new())
        try:
            source = LogSource(
                urls=[chain.url], addresses=[protocol.compute.address, protocol.market.address]
            )
            Indexer(
                engine=engine,
                deployment=protocol.deployment,
                source=source,
                progress=False,
                metadata=MetadataResolver(engine, store),
            ).run(once=True)
            with engine.connect() as conn:
                got = {
                    r.metadata_cid: (r.status, r.title)
                    for r in conn.execute(sa.select(models.prompt_metadata))
                }
        finally:
            engine.dispose()
        assert got == {found: ("resolved", "Runner haiku"), missing: ("unavailable", None)}

    def test_a_reorg_that_re_mints_a_token_id_is_resolved_too(
        self, chain: Chain, protocol: Protocol, activity: Activity, databases: Databases, tmp_path: Path
    ) -> None:
        """The resolver's cursor had passed the token id; the reorg makes it look again."""
        store = LocalContentStore(tmp_path / "content")
        first = store.put(document("Before the reorg", "Orphaned.", b"one"))
        second = store.put(document("After the reorg", "Canonical.", b"two"))
        mint = encoder(protocol.market, "mint")
        creator = chain.accounts[4]

        def minting(cid: str, text: bytes) -> Call:
            return Call(creator, protocol.market.address, mint(cid, hashlib.sha256(text).digest(), 0))

        activity.send_mined([minting(first, b"one")])
        token = int(protocol.market.functions.promptCount().call())
        engine = prepared_engine(databases.new())
        try:
            source = LogSource(
                urls=[chain.url], addresses=[protocol.compute.address, protocol.market.address]
            )
            indexer = Indexer(
                engine=engine,
                deployment=protocol.deployment,
                source=source,
                poll_interval=0.05,
                progress=False,
                metadata=MetadataResolver(engine, store),
            )
            indexer.run(once=True)
            again = minting(second, b"two")
            replacement = {"from": again.sender, "to": again.to, "data": again.data, "gas": hex(again.gas)}
            chain.rpc("anvil_reorg", [1, [[replacement, 0]]])
            activity.resync()
            assert int(protocol.market.functions.promptCount().call()) == token
            indexer.run(once=True)
            with engine.connect() as conn:
                table, prompts = models.prompt_metadata, models.TABLES[models.Prompt]
                titles = {r[0]: r[1] for r in conn.execute(sa.select(table.c.metadata_cid, table.c.title))}
                (cid,) = conn.execute(
                    sa.select(prompts.c.metadata_cid).where(prompts.c.token_id == token)
                ).scalars()
        finally:
            engine.dispose()
        assert cid == second
        assert titles == {first: "Before the reorg", second: "After the reorg"}

    def test_run_resolves_unless_switched_off_and_resolve_metadata_catches_up(
        self, chain: Chain, protocol: Protocol, databases: Databases, tmp_path: Path
    ) -> None:
        store = LocalContentStore(tmp_path / "data" / "content")
        found, missing = self._mint(protocol, chain, store)
        manifest = write_manifest(protocol.deployment, tmp_path)
        data_dir = str(tmp_path / "data")

        def statuses(url: str) -> dict[str, str]:
            engine = prepared_engine(url)
            try:
                with engine.connect() as conn:
                    table = models.prompt_metadata
                    return {r[0]: r[1] for r in conn.execute(sa.select(table.c.metadata_cid, table.c.status))}
            finally:
                engine.dispose()

        run = ["indexer", "run", "--once", "--rpc-url", chain.url, "--manifest", str(manifest)]
        url = databases.new()
        done = run_cli(*run, "--database-url", url, ASCENDNET_DATA_DIR=data_dir)
        assert done.returncode == 0, done.stderr
        assert statuses(url) == {found: "resolved", missing: "unavailable"}
        logged = [e for e in json_lines(done.stderr) if e["event"] == "metadata_resolved"]
        assert [(e["resolved"], e["unavailable"]) for e in logged] == [(1, 1)]

        url = databases.new()
        done = run_cli(
            *run, "--database-url", url, ASCENDNET_METADATA_RESOLVE="false", ASCENDNET_DATA_DIR=data_dir
        )
        assert done.returncode == 0, done.stderr
        assert statuses(url) == {}
        caught_up = run_cli(
            "indexer", "resolve-metadata", "--once", "--database-url", url, ASCENDNET_DATA_DIR=data_dir
        )
        assert caught_up.returncode == 0, caught_up.stderr
        assert "1 resolved, 0 invalid, 1 unavailable" in " ".join(caught_up.stdout.split())
        assert statuses(url) == {found: "resolved", missing: "unavailable"}


def test_progress_bar_on_a_terminal(
    chain: Chain, protocol: Protocol, activity: Activity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    some_activity(activity, chain, rounds=2, per_block=1)
    engine = prepared_engine(f"sqlite:///{tmp_path / 'ix.sqlite3'}")
    screen = io.StringIO()
    monkeypatch.setattr(
        runner_module, "_console", lambda: Console(file=screen, force_terminal=True, width=160), raising=True
    )
    source = LogSource(
        urls=[chain.url],
        addresses=[protocol.compute.address, protocol.market.address],
        initial_span=3,
        max_span=3,
    )
    Indexer(engine=engine, deployment=protocol.deployment, source=source, progress=True).run(once=True)
    engine.dispose()
    text = screen.getvalue()
    assert "backfill" in text and "blocks" in text and "ev/s" in text and "ETA" in text


def test_status_and_rebuild_commands(
    chain: Chain, protocol: Protocol, activity: Activity, tmp_path: Path
) -> None:
    some_activity(activity, chain, rounds=1)
    url = f"sqlite:///{tmp_path / 'ix.sqlite3'}"
    index_once(url, protocol.deployment, [chain.url])
    before = read_models(url)
    logs = chain_logs(chain, protocol.deployment)

    shown = run_cli("indexer", "status", "--json", "--database-url", url)
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["indexed_head"] == chain.w3.eth.block_number and status["caught_up"] is True

    rebuilt = run_cli("indexer", "rebuild", "--database-url", url)
    assert rebuilt.returncode == 0 and f"from {len(logs)} events" in rebuilt.stdout, rebuilt.stderr
    assert read_models(url) == before

    empty = run_cli("indexer", "status", "--database-url", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert empty.returncode == 2 and "ascendnet indexer run" in empty.stderr


def test_indexer_is_registered_in_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ascendnet.cli", "indexer", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0
    for command in ("run", "rebuild", "verify", "status"):
        assert command in done.stdout
