"""The projector's pipeline: a long catch-up (a backfill, a rebuild) folds on this process's
thread while a forked writer process commits the batches before (indexer/projection.py).

The history is real contract events from anvil; the pipeline's threshold is lowered so that
its short history goes through the writer process in many batches and several commits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from indexer import bulk, db, models, projection
from indexer.digest import stored_digests
from indexer.projection import Projector, tracked_position
from indexer.rebuild import compare, rebuild
from indexer.store import EventStore
from tests.indexer.history import History
from tests.indexer.readmodels import rows

pytestmark = pytest.mark.anvil

pytest_plugins = ("tests.indexer.backends",)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["process", "thread"])
def pipelined(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every run pipelines, and the writer commits every 40 events (several commits per run);
    the writer is a forked process (Linux's default) or a thread (elsewhere)."""
    monkeypatch.setattr(projection, "PIPELINE_EVENTS", 0)
    monkeypatch.setattr(projection, "COMMIT_EVENTS", 40)
    monkeypatch.setattr(projection, "WRITER_PROCESS", request.param == "process")
    return str(request.param)


def _clean(scratch: Callable[[str], sa.Engine], history: History) -> sa.Engine:
    clean = scratch("clean")
    EventStore(clean, history.chain_id).append_blocks(history.blocks)
    Projector(clean, history.chain_id, pipeline=False).run()
    return clean


@pytest.mark.usefixtures("pipelined")
class TestWriter:
    def test_the_writes_happen_on_the_writer(
        self,
        engine: sa.Engine,
        history: History,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        pipelined: str,
    ) -> None:
        seen = tmp_path / "writers"
        real = bulk.run_all

        def noting(conn: sa.Connection, writes: Any) -> None:
            with seen.open("a") as f:
                f.write(f"{os.getpid()} {threading.current_thread().name}\n")
            real(conn, writes)

        monkeypatch.setattr(bulk, "run_all", noting)
        EventStore(engine, history.chain_id).append_blocks(history.blocks)
        Projector(engine, history.chain_id, batch_events=25).run()
        calls = [tuple(line.split(" ", 1)) for line in seen.read_text().splitlines()]
        ours = str(os.getpid())
        # (a batch that carries a reorg runs alone, on the calling thread)
        if pipelined == "process":
            on_writer = [pid for pid, _ in calls if pid != ours]
            assert len(set(on_writer)) == 1
        else:
            on_writer = [
                pid for pid, thread in calls if pid == ours and thread.startswith("projector-writer")
            ]
        assert len(on_writer) > len(calls) / 2
        with engine.connect() as conn:
            store = EventStore(engine, history.chain_id)
            assert tracked_position(conn) == store.recorder.max_notification_id_on(conn)
        assert len(rows(engine, "events")) == len(history.events)

    def test_pipelined_read_models_equal_one_batch_at_a_time(
        self, engine: sa.Engine, history: History, scratch: Callable[[str], sa.Engine]
    ) -> None:
        EventStore(engine, history.chain_id).append_blocks(history.blocks)
        Projector(engine, history.chain_id, batch_events=7).run()
        clean = _clean(scratch, history)
        assert compare(engine, clean).identical
        with engine.connect() as a, clean.connect() as b:
            assert stored_digests(a) == stored_digests(b)
            assert tracked_position(a) == tracked_position(b)

    def test_a_pipelined_rebuild_equals_the_live_read_models(
        self, engine: sa.Engine, history: History, scratch: Callable[[str], sa.Engine]
    ) -> None:
        EventStore(engine, history.chain_id).append_blocks(history.blocks)
        Projector(engine, history.chain_id, pipeline=False).run()
        tables = ("jobs", "prompts", "owed", "events")

        def snapshot() -> dict[str, list[str]]:
            return {t: sorted(repr(sorted(r.items())) for r in rows(engine, t)) for t in tables}

        before = snapshot()
        report = rebuild(engine, history.chain_id, batch_events=9)
        assert report.events > 0
        assert snapshot() == before
        assert compare(engine, _clean(scratch, history)).identical

    def test_a_failure_in_the_writer_rolls_back_to_whole_batches_and_is_redone(
        self,
        engine: sa.Engine,
        history: History,
        monkeypatch: pytest.MonkeyPatch,
        scratch: Callable[[str], sa.Engine],
    ) -> None:
        EventStore(engine, history.chain_id).append_blocks(history.blocks)
        real = bulk.run_all
        calls = {"n": 0}

        def flaky(conn: sa.Connection, writes: Any) -> None:
            calls["n"] += 1  # counted in the writer process, which inherited this patch
            if calls["n"] == 6:
                raise RuntimeError("writer crash mid-run")
            real(conn, writes)

        monkeypatch.setattr(bulk, "run_all", flaky)
        with pytest.raises(RuntimeError, match="writer crash mid-run"):
            Projector(engine, history.chain_id, batch_events=10).run()
        with engine.connect() as conn:
            position = tracked_position(conn)
            count = conn.execute(sa.select(sa.func.count()).select_from(models.events)).scalar_one()
        # Commits every 40 events: what was committed is whole batches, with their position;
        # the batches after the last commit left nothing.
        assert 0 < position < len(history.events)
        assert count == position
        monkeypatch.setattr(bulk, "run_all", real)
        Projector(engine, history.chain_id, batch_events=10).run()
        assert compare(engine, _clean(scratch, history)).identical
        assert len(rows(engine, "events")) == len(history.events)


def test_the_writer_process_dies_with_its_parent(history: History, tmp_path: Path) -> None:
    """kill -9 of the indexer leaves no writer behind (it would hold a transaction open); the
    writer ignores the signals that ask its parent to stop."""
    url = f"sqlite:///{tmp_path / 'indexer.sqlite3'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    EventStore(engine, history.chain_id).append_blocks(history.blocks)
    engine.dispose()
    script = textwrap.dedent(
        f"""
        import multiprocessing, threading, time
        from indexer import bulk, db, projection
        projection.PIPELINE_EVENTS = 0
        bulk.run_all = lambda conn, writes: time.sleep(600)  # the writer hangs in its first batch
        def report():
            while not multiprocessing.active_children():
                time.sleep(0.05)
            print(multiprocessing.active_children()[0].pid, flush=True)
        threading.Thread(target=report, daemon=True).start()
        projection.Projector(db.make_engine({url!r}), {history.chain_id}, batch_events=10).run()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    writer = None
    try:
        assert proc.stdout is not None
        writer = int(proc.stdout.readline())
        assert _alive(writer)
        # A Ctrl-C or a service manager's SIGTERM reaches the whole group: the writer leaves
        # stopping to its parent.
        os.kill(writer, signal.SIGINT)
        os.kill(writer, signal.SIGTERM)
        time.sleep(0.5)
        assert _alive(writer)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while _alive(writer) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(writer), f"writer process {writer} outlived its parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if writer is not None and _alive(writer):
            os.kill(writer, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody reaped yet counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
