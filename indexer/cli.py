"""`ascendnet indexer ...`: run the indexer, rebuild or verify its read models, show its status."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from ascendnet import log
from chain import artifacts, manifest
from indexer.errors import IndexerError
from indexer.settings import Finality, IndexerSettings

indexer_app = typer.Typer(
    help="The event-sourced indexer: contract logs -> event store -> read models.", no_args_is_help=True
)
console = Console()

DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the indexer database (default: $ASCENDNET_DATABASE_URL, else a SQLite "
        "file under the data dir).",
        show_default=False,
    ),
]


def _settings(**overrides: Any) -> IndexerSettings:
    settings = IndexerSettings(**{k: v for k, v in overrides.items() if v is not None})
    log.configure(settings.log_format, settings.log_level)
    return settings


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _engine(url: str) -> Engine:
    from indexer.db import make_engine

    return make_engine(url)


def _not_indexed(url: str) -> IndexerError:
    return IndexerError(f"{_safe(url)} holds no indexed chain yet. Run `ascendnet indexer run` first.")


def _chain_id_of(engine: Engine, url: str) -> int:
    from indexer.store import bound_chain_id

    try:
        with engine.connect() as conn:
            chain_id = bound_chain_id(conn)
    except (OperationalError, ProgrammingError) as exc:
        raise _not_indexed(url) from exc
    if chain_id is None:
        raise IndexerError(f"{_safe(url)} holds no indexed chain yet. Run `ascendnet indexer run` first.")
    return chain_id


@indexer_app.command("run")
def run_command(
    once: Annotated[bool, typer.Option("--once", help="Stop at the node's current head.")] = False,
    rpc_url: Annotated[
        list[str] | None,
        typer.Option(
            "--rpc-url",
            help="JSON-RPC endpoint; repeat for fail-over "
            "(default: $ASCENDNET_RPC_URLS or $ASCENDNET_RPC_URL).",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseUrlOpt = None,
    manifest_path: Annotated[
        Path | None,
        typer.Option("--manifest", help="Deployment manifest (default: deployments/<chain id>.json)."),
    ] = None,
    finality: Annotated[
        Finality | None,
        typer.Option(
            "--finality", help="'tag': the node's finalized block; 'confirmations': N blocks below the head."
        ),
    ] = None,
    confirmations: Annotated[
        int | None, typer.Option("--confirmations", min=0, help="N for --finality confirmations.")
    ] = None,
    poll_interval: Annotated[
        float | None, typer.Option("--poll-interval", help="Seconds between head polls while following.")
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: only on a terminal)."),
    ] = None,
) -> None:
    """Backfill from the deploy block, then follow the head (Ctrl-C stops after the current step).

    Once at the head, it also resolves prompt metadata documents from the content store
    ($ASCENDNET_METADATA_RESOLVE, default true; see `indexer resolve-metadata`)."""
    from indexer.db import upgrade
    from indexer.lock import writer_lock
    from indexer.metadata import MetadataResolver
    from indexer.rpc import LogSource
    from indexer.runner import Indexer

    settings = _settings(
        rpc_urls=rpc_url or None,
        database_url=database_url,
        manifest=manifest_path,
        finality=finality,
        confirmations=confirmations,
        poll_interval=poll_interval,
    )
    probe = LogSource(urls=settings.rpc_urls, addresses=[], timeout=10.0)
    chain_id = probe.chain_id()
    path = settings.manifest or manifest.default_path(chain_id)
    deployment = manifest.read(path)
    if deployment.chain_id != chain_id:
        raise IndexerError(
            f"Manifest {path} is for chain {deployment.chain_id}, but the RPC node is on chain {chain_id}. "
            "Pass the manifest of this chain with --manifest."
        )
    source = LogSource(
        urls=settings.rpc_urls,
        addresses=[deployment.address(name) for name in artifacts.PROTOCOL_CONTRACTS],
        finality=settings.finality,
        confirmations=settings.confirmations,
        initial_span=settings.getlogs_blocks,
        max_span=settings.max_getlogs_blocks,
    )
    with writer_lock(settings.database_url), ExitStack() as closing:
        engine = _engine(settings.database_url)
        closing.callback(engine.dispose)
        upgrade(engine)
        metadata = None
        if settings.metadata_resolve:
            store = closing.enter_context(settings.metadata_store())
            metadata = MetadataResolver(
                engine, store, batch=settings.metadata_batch, budget=settings.metadata_timeout
            )
        Indexer(
            engine=engine,
            deployment=deployment,
            source=source,
            poll_interval=settings.poll_interval,
            projector_batch_events=settings.projector_batch_events,
            progress=progress,
            metadata=metadata,
        ).run(once=once)


@indexer_app.command("rebuild")
def rebuild_command(database_url: DatabaseUrlOpt = None) -> None:
    """Recreate the read models from the event store alone (no RPC)."""
    from indexer.db import upgrade
    from indexer.lock import writer_lock
    from indexer.rebuild import rebuild

    settings = _settings(database_url=database_url)
    with writer_lock(settings.database_url):
        engine = _engine(settings.database_url)
        try:
            upgrade(engine)
            report = rebuild(engine, _chain_id_of(engine, settings.database_url))
        finally:
            engine.dispose()
    console.print(
        f"rebuilt the read models of {_safe(settings.database_url)} from {report.events:,} events "
        f"in {report.seconds:.2f}s ({report.events_per_second:,.0f} events/s)"
    )


@indexer_app.command("verify")
def verify_command(
    database_url: DatabaseUrlOpt = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="Compare with this database's read models instead of a fresh rebuild of the event store.",
        ),
    ] = None,
) -> None:
    """Compare the read models with a fresh rebuild, or with --against another database.

    Exits 1 naming the first block where they differ."""
    from indexer.rebuild import verify

    settings = _settings(database_url=database_url)
    engine = _engine(settings.database_url)
    other = _engine(against) if against else None
    try:
        report = verify(engine, _chain_id_of(engine, settings.database_url), other=other)
    finally:
        engine.dispose()
        if other is not None:
            other.dispose()
    right = _safe(against) if against else "a fresh rebuild of its event store"
    if report.identical:
        console.print(f"[green]identical[/]: {_safe(settings.database_url)} and {right}, {report}")
        return
    console.print(f"[bold red]differ[/]: {_safe(settings.database_url)} and {right}: {report}")
    raise typer.Exit(1)


@indexer_app.command("resolve-metadata")
def resolve_metadata_command(
    once: Annotated[
        bool, typer.Option("--once", help="Resolve what is pending now, then stop (default: keep following).")
    ] = False,
    database_url: DatabaseUrlOpt = None,
    poll_interval: Annotated[
        float | None, typer.Option("--poll-interval", help="Seconds between looks for new prompts.")
    ] = None,
) -> None:
    """Fetch and validate the metadata documents of indexed prompts from the content store.

    `indexer run` does this itself once it follows the head; run this beside an `indexer run`
    with ASCENDNET_METADATA_RESOLVE=false to keep slow fetches away from it, or with --once to
    catch up after a backfill. Unavailable documents are retried with backoff (30 s to 1 h).
    With --once, exits 1 when the content store could not be reached."""
    from indexer import models
    from indexer.metadata import RETRY_BASE, MetadataResolver

    settings = _settings(database_url=database_url, poll_interval=poll_interval)
    url = _safe(settings.database_url)
    totals = {"resolved": 0, "invalid": 0, "unavailable": 0}
    store_down = False
    with ExitStack() as closing:
        engine = _engine(settings.database_url)
        closing.callback(engine.dispose)
        try:
            has_table = sa.inspect(engine).has_table(models.prompt_metadata.name)
        except (OperationalError, ProgrammingError) as exc:
            raise _not_indexed(settings.database_url) from exc
        if not has_table:
            raise IndexerError(
                f"{url} has no prompt_metadata table yet: run `ascendnet indexer run` once, which "
                "brings the schema up to date."
            )
        store = closing.enter_context(settings.metadata_store())

        def reorgs() -> int | None:
            # A reorg may re-mint token ids below the cursor: look at every prompt again.
            with engine.connect() as conn:
                return conn.execute(sa.select(models.indexer_status.c.reorg_count)).scalar()

        # --once fixes "now": a document found unavailable is not retried within this run.
        now = time.time()
        resolver = MetadataResolver(
            engine, store, batch=settings.metadata_batch, wall_clock=(lambda: now) if once else time.time
        )
        seen_reorgs = reorgs()
        try:
            while True:
                # NOTE: never paused here: after the store was down this waits out the pause.
                report = resolver.run()
                assert report is not None
                for key in totals:
                    totals[key] += getattr(report, key)
                store_down = report.store_down
                if store_down:
                    console.print(f"[yellow]the content store ({store.name}) is unavailable[/]")
                if once and (store_down or not report.more):
                    break
                if store_down or not report.more:
                    time.sleep(RETRY_BASE if store_down else settings.poll_interval)
                    if (current := reorgs()) != seen_reorgs:
                        resolver.rescan()
                        seen_reorgs = current
        except KeyboardInterrupt:
            pass
    console.print(
        f"prompt metadata of {url}: {totals['resolved']} resolved, {totals['invalid']} invalid, "
        f"{totals['unavailable']} unavailable (retried later)"
    )
    if once and store_down:
        raise typer.Exit(1)


@indexer_app.command("status")
def status_command(
    database_url: DatabaseUrlOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """How far the indexer is: indexed head, finalized block, lag, events/s, reorgs."""
    from indexer.status import read_status

    settings = _settings(database_url=database_url)
    engine = _engine(settings.database_url)
    try:
        status = read_status(engine)
    except (OperationalError, ProgrammingError) as exc:
        raise _not_indexed(settings.database_url) from exc
    finally:
        engine.dispose()
    if status is None:
        raise _not_indexed(settings.database_url)
    fields = asdict(status)
    if as_json:
        typer.echo(json.dumps({**fields, "caught_up": status.caught_up}, default=str))
        return
    table = Table(title=f"Indexer status ({_safe(settings.database_url)})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in fields.items():
        table.add_row(key, "-" if value is None else str(value))
    table.add_row("caught_up", str(status.caught_up))
    console.print(table)
