"""Crash safety: `kill -9` the indexer at random points of a backfill, restart, many times. The
final read models equal a clean index of the same chain, and no row is doubled."""

# ruff: noqa: F811  (the fixtures imported from harness are requested as test parameters)

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from chain.contracts import Protocol
from indexer import models
from indexer.db import make_engine
from indexer.rebuild import verify
from indexer.store import stored_events
from tests.indexer.activity import Activity
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
    protocol,
    read_models,
    write_manifest,
)

pytestmark = pytest.mark.anvil

KILLS = 8


def _thousands_of_events(activity: Activity, chain: Chain) -> None:
    """~2,500 logs over ~80 blocks: mints (2 logs each) and bids (1 each) from several accounts."""
    providers = chain.accounts[1:4]
    activity.send_mined(activity.register_providers(providers) + [activity.post_job(chain.accounts[0])])
    job_id = int(activity.protocol.compute.functions.jobCount().call())
    calls = []
    for i in range(80):
        calls += activity.mints(chain.accounts[4:8], 10, salt=i) + activity.bids(
            job_id, providers, 10, start_price=1 + 10 * i
        )
    activity.send_mined(calls, per_block=20)


class TestCrashSafety:
    def test_kill_9_during_backfill_then_restart(
        self, chain: Chain, protocol: Protocol, activity: Activity, databases: Databases, tmp_path: Path
    ) -> None:
        _thousands_of_events(activity, chain)
        logs = chain_logs(chain, protocol.deployment)
        assert len(logs) >= 2_000
        url = databases.new()
        manifest = write_manifest(protocol.deployment, tmp_path)
        args = [
            "indexer",
            "run",
            "--once",
            "--rpc-url",
            chain.url,
            "--database-url",
            url,
            "--manifest",
            str(manifest),
        ]
        # Small steps (3 blocks, ~90 logs) and small projector batches: many transactions, so the
        # kills land inside and between appends, folds and status writes.
        env = cli_env(
            ASCENDNET_GETLOGS_BLOCKS="3",
            ASCENDNET_MAX_GETLOGS_BLOCKS="3",
            ASCENDNET_PROJECTOR_BATCH_EVENTS="40",
        )
        rng = random.Random(20_240_501)
        kills = attempt = 0
        while kills < KILLS:
            attempt += 1
            log_path = tmp_path / f"run-{attempt}.log"
            with open(log_path, "w") as out:
                proc = subprocess.Popen(cli_command(*args), stdout=out, stderr=out, cwd=REPO, env=env)
            try:
                # Wait until it is indexing (imports take a while), then kill it at a random instant.
                deadline = time.monotonic() + 60
                while "indexer_start" not in log_path.read_text() and proc.poll() is None:
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.02)
                # Short delays, so that eight kills stay inside the ~80-block backfill.
                time.sleep(rng.uniform(0.0, 0.2))
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    kills += 1
                proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if proc.returncode == 0:
                # A fast machine may finish the backfill early; the kills so far still count, but
                # too few of them would leave the test proving little.
                assert kills >= KILLS // 2, (
                    f"finished after only {kills} kills: " + log_path.read_text()[-3000:]
                )
                break
            assert proc.returncode == -signal.SIGKILL, log_path.read_text()[-3000:]

        final = subprocess.run(
            cli_command(*args), capture_output=True, text=True, cwd=REPO, env=env, timeout=120
        )
        assert final.returncode == 0, final.stderr[-3000:]

        assert read_models(url) == clean_index(databases, protocol.deployment, chain.url)
        engine = make_engine(url)
        try:
            assert verify(engine, protocol.deployment.chain_id).identical
            with engine.connect() as conn:
                e = models.events
                raw = conn.execute(sa.select(sa.func.count()).select_from(e)).scalar_one()
                distinct = conn.execute(
                    sa.select(sa.func.count()).select_from(
                        sa.select(e.c.tx_hash, e.c.log_index).distinct().subquery()
                    )
                ).scalar_one()
                stored = conn.execute(sa.select(sa.func.count()).select_from(stored_events)).scalar_one()
        finally:
            engine.dispose()
        assert raw == distinct == stored == len(logs)  # every log exactly once, everywhere
