"""`ascendnet status`: one screen on the chain, the indexer, the API and the agent.

Each part is probed on its own and a failure of one never hides the others: the chain over
JSON-RPC, the indexer through the API's `/status` (and the read models for jobs by state,
opened read-only), the API's `/health`, and the agent through the status file it rewrites every
second (`agent-status.json` in its data dir). `ascendnet dev` prints the compact form of the
same snapshot as its live status line.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import psutil
import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine
from web3 import Web3

from ascendnet.apiview import DEFAULT_API_URL, ApiUnavailable, ApiView

#: An agent whose status file is older than this is reported as stale (it rewrites it every second).
AGENT_STALE_SECONDS = 15.0
DEV_DATA_DIR = Path(".data/dev")


@dataclass
class Snapshot:
    chain: dict[str, Any] = field(default_factory=dict)
    indexer: dict[str, Any] = field(default_factory=dict)
    api: dict[str, Any] = field(default_factory=dict)
    agent: dict[str, Any] = field(default_factory=dict)
    jobs_by_state: dict[str, int] | None = None

    @property
    def healthy(self) -> bool:
        """Chain, API and indexer up (an agent is optional: many deployments run none here)."""
        return bool(self.chain.get("up") and self.api.get("up") and self.indexer.get("started"))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


def probe_chain(w3: Web3, rpc_url: str) -> dict[str, Any]:
    try:
        return {"up": True, "rpc_url": rpc_url, "chain_id": w3.eth.chain_id, "head": w3.eth.block_number}
    except Exception as exc:  # noqa: BLE001 - any failure means the node is not usable
        return _chain_down(rpc_url, exc)


def _chain_down(rpc_url: str, exc: Exception) -> dict[str, Any]:
    # The first clause names the problem; the rest is the HTTP library's chain of causes.
    return {"up": False, "rpc_url": rpc_url, "error": str(exc).split(" (")[0]}


def probe_api(api: ApiView) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the API's health, the indexer's status as the API reports it)."""
    try:
        api.get("/health")
    except ApiUnavailable as exc:
        return {"up": False, "url": api.url, "error": str(exc)}, {"started": False, "error": "API down"}
    try:
        indexer = api.get("/status").get("data", {})
    except ApiUnavailable as exc:
        indexer = {"started": False, "error": str(exc)}
    return {"up": True, "url": api.url}, indexer


def probe_agent(status_file: Path) -> dict[str, Any]:
    if not status_file.exists():
        return {"running": False, "why": f"no status file at {status_file}"}
    try:
        doc = json.loads(status_file.read_text())
    except (OSError, ValueError) as exc:
        return {"running": False, "why": f"unreadable {status_file}: {exc}"}
    age = time.time() - float(doc.get("updated_at", 0))
    pid = doc.get("pid")
    alive = isinstance(pid, int) and psutil.pid_exists(pid)
    running = alive and age <= AGENT_STALE_SECONDS
    why = "" if running else ("its process is gone" if not alive else f"status is {age:.0f} s old")
    return {**doc, "running": running, "age_seconds": round(age, 1), "why": why}


def jobs_by_state(engine: Engine) -> dict[str, int] | None:
    """Jobs per state from the read models; None when they cannot be read (not created yet)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT state, COUNT(*) FROM jobs GROUP BY state")).all()
        return {str(state): int(n) for state, n in sorted(rows)}
    except sa.exc.SQLAlchemyError:
        return None


def default_database_url(data_dir: Path) -> str | None:
    path = data_dir / "indexer.sqlite3"
    return f"sqlite:///{path.resolve()}" if path.exists() else None


@dataclass
class Prober:
    """Probes one stack, keeping its chain connection and its read-only database engine between
    snapshots (`ascendnet dev` takes one a second)."""

    rpc_url: str
    api: ApiView
    data_dir: Path
    database_url: str | None = None
    _w3: Web3 | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    def snapshot(self) -> Snapshot:
        api_part, indexer_part = probe_api(self.api)
        return Snapshot(
            chain=self._chain(),
            indexer=indexer_part,
            api=api_part,
            agent=probe_agent(self.data_dir / "agent-status.json"),
            jobs_by_state=self._jobs(),
        )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def _chain(self) -> dict[str, Any]:
        from chain.rpc import connect

        try:
            if self._w3 is None:
                self._w3 = connect(self.rpc_url)
        except Exception as exc:  # noqa: BLE001 - any failure means the node is not usable
            return _chain_down(self.rpc_url, exc)
        return probe_chain(self._w3, self.rpc_url)

    def _jobs(self) -> dict[str, int] | None:
        if self._engine is None:
            url = self.database_url or default_database_url(self.data_dir)
            if url is None:  # dev's SQLite file is not there yet
                return None
            from indexer.db import make_readonly_engine

            try:
                self._engine = make_readonly_engine(url)
            except Exception:  # noqa: BLE001 - a missing file or server: report nothing
                return None
        return jobs_by_state(self._engine)


def collect(rpc_url: str, api: ApiView, data_dir: Path, database_url: str | None = None) -> Snapshot:
    """One snapshot (`ascendnet status`)."""
    prober = Prober(rpc_url, api, data_dir, database_url)
    try:
        return prober.snapshot()
    finally:
        prober.close()


def compact(s: Snapshot) -> str:
    """One line for `ascendnet dev`: head, indexed head, jobs by state, agent state."""
    head = s.chain.get("head", "?")
    indexed = s.indexer.get("indexed_head", "?")
    jobs = ", ".join(f"{k} {v}" for k, v in (s.jobs_by_state or {}).items()) or "none"
    if s.agent.get("running"):
        phases = s.agent.get("jobs_by_phase") or {}
        busy = len(s.agent.get("running_jobs") or [])
        agent = f"up, {busy} running" + (
            ", " + ", ".join(f"{k} {v}" for k, v in sorted(phases.items())) if phases else ""
        )
    else:
        agent = "not running"
    return f"head {head} | indexed {indexed} | jobs: {jobs} | agent: {agent}"


def render(s: Snapshot, console: Console) -> None:
    table = Table(title="AscendNet status", show_header=True, header_style="bold")
    table.add_column("part")
    table.add_column("state")
    table.add_column("details")
    ok, bad = "[green]up[/]", "[red]down[/]"
    c = s.chain
    table.add_row(
        "chain",
        ok if c.get("up") else bad,
        f"{c['rpc_url']} chain {c.get('chain_id')} head {c.get('head')}"
        if c.get("up")
        else f"{c['rpc_url']}: {c.get('error')}",
    )
    i = s.indexer
    if i.get("started"):
        reorg = i.get("last_reorg")
        details = (
            f"indexed {i.get('indexed_head')} finalized {i.get('finalized_block')} lag {i.get('lag')} "
            f"{i.get('events_per_second') or 0:.0f} ev/s reorgs {i.get('reorg_count')}"
            + (f" (last at block {reorg['block']}, depth {reorg['depth']})" if reorg else "")
        )
        table.add_row("indexer", ok if i.get("caught_up") else "[yellow]catching up[/]", details)
    else:
        table.add_row("indexer", bad, str(i.get("error", "not started")))
    a = s.api
    table.add_row(
        "api", ok if a.get("up") else bad, a["url"] if a.get("up") else f"{a['url']}: {a.get('error')}"
    )
    g = s.agent
    if g.get("running"):
        phases = (
            ", ".join(f"{k} {v}" for k, v in sorted((g.get("jobs_by_phase") or {}).items())) or "no jobs yet"
        )
        table.add_row(
            "agent",
            ok,
            f"{g.get('provider')} pid {g.get('pid')}, sandbox {'on' if g.get('sandbox') else 'off'}, "
            f"running {g.get('running_jobs')}, journal: {phases}",
        )
    else:
        table.add_row("agent", "[yellow]not running[/]", str(g.get("why", "")))
    if s.jobs_by_state is not None:
        jobs = ", ".join(f"{k} {v}" for k, v in s.jobs_by_state.items()) or "none yet"
        table.add_row("jobs", "", jobs)
    console.print(table)


def status_command(
    rpc_url: Annotated[
        str, typer.Option("--rpc-url", envvar="ASCENDNET_RPC_URL", help="JSON-RPC endpoint.")
    ] = "http://127.0.0.1:8545",
    api_url: Annotated[
        str, typer.Option("--api-url", envvar="ASCENDNET_API_URL", help="The API.")
    ] = DEFAULT_API_URL,
    data_dir: Annotated[
        Path,
        typer.Option("--data-dir", help="Where the agent's status file (and dev's SQLite read models) are."),
    ] = DEV_DATA_DIR,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Read models, for jobs by state [<data-dir>/indexer.sqlite3]."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """One screen on the chain, the indexer, the API and the agent. Exits 1 when the chain, the
    API or the indexer is down."""
    snapshot = collect(rpc_url, ApiView(api_url, timeout=5), data_dir, database_url)
    if as_json:
        typer.echo(json.dumps(snapshot.to_json(), indent=2, sort_keys=True, default=str))
    else:
        render(snapshot, Console())
    if not snapshot.healthy:
        raise typer.Exit(1)
