"""`ascendnet agent ...`: the GPU worker agent's commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agent.monitor import ResourceMonitor, Resources
from agent.settings import AgentSettings
from ascendnet import log

agent_app = typer.Typer(
    help="The GPU worker agent: resources, registration, running jobs.", no_args_is_help=True
)
console = Console()

DataDirOpt = Annotated[
    Path,
    typer.Option(
        "--data-dir", envvar="ASCENDNET_DATA_DIR", help="The agent's data directory (its disk is reported)."
    ),
]


def _configure_logging() -> None:
    # Logs go to stderr, so `--json` output on stdout stays parseable.
    fmt = os.environ.get("ASCENDNET_LOG_FORMAT", "auto")
    level = os.environ.get("ASCENDNET_LOG_LEVEL", "info")
    log.configure(
        fmt if fmt in ("auto", "json", "pretty") else "auto", level if level in log._LEVELS else "info"
    )


def _mib(value: int) -> str:
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value} MiB"


def resources_table(snapshot: Resources) -> list[Table]:
    """The snapshot as rich tables: a summary, then one row per GPU when there are any."""
    summary = Table(
        title=f"Resources of {snapshot.hostname} (agent {snapshot.agent_version})", show_header=False
    )
    summary.add_column("resource", style="bold")
    summary.add_column("value")
    gpu = snapshot.gpu
    if gpu.available:
        models = ", ".join(sorted({g.name for g in gpu.gpus}))
        versions = f"driver {gpu.driver_version or '?'}, CUDA {gpu.cuda_version or '?'}"
        summary.add_row("GPUs", f"{gpu.count} x {models} ({versions})")
    else:
        summary.add_row("GPUs", f"[yellow]none: CPU-only[/] ({gpu.reason})")
    cpu = snapshot.cpu
    cores = f"{cpu.logical_cores} logical" + (
        f" / {cpu.physical_cores} physical" if cpu.physical_cores else ""
    )
    summary.add_row(
        "CPU",
        f"{cpu.model or 'unknown model'}, {cores} cores, load {cpu.load_1m} {cpu.load_5m} {cpu.load_15m}",
    )
    summary.add_row(
        "Memory", f"{_mib(snapshot.memory.available_mb)} available of {_mib(snapshot.memory.total_mb)}"
    )
    summary.add_row(
        "Disk",
        f"{_mib(snapshot.disk.free_mb)} free of {_mib(snapshot.disk.total_mb)} at {snapshot.disk.path}",
    )
    docker = snapshot.docker
    summary.add_row(
        "Docker",
        f"[green]reachable[/] (engine {docker.version or '?'})"
        if docker.reachable
        else f"[red]unreachable[/] ({docker.reason})",
    )
    tables = [summary]
    if gpu.gpus:
        detail = Table(title="GPUs")
        for column in ("#", "model", "VRAM free / total", "utilisation", "temperature", "uuid"):
            detail.add_column(column)
        for g in gpu.gpus:
            detail.add_row(
                str(g.index),
                g.name,
                f"{_mib(g.memory_free_mb)} / {_mib(g.memory_total_mb)}",
                f"{g.utilization_percent} %" if g.utilization_percent is not None else "n/a",
                f"{g.temperature_c} C" if g.temperature_c is not None else "n/a",
                g.uuid or "n/a",
            )
        tables.append(detail)
    return tables


@agent_app.command("resources")
def resources_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    data_dir: DataDirOpt = Path(".data"),
) -> None:
    """Show the GPUs (NVML), CPU, memory, disk and Docker this agent can offer."""
    _configure_logging()
    snapshot = ResourceMonitor(data_dir).snapshot()
    if as_json:
        typer.echo(snapshot.model_dump_json(indent=2))
        return
    for table in resources_table(snapshot):
        console.print(table)


def _settings(data_dir: Path | None) -> AgentSettings:
    settings = AgentSettings()
    return settings.model_copy(update={"data_dir": data_dir}) if data_dir is not None else settings


AgentDataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Journal, content store and sandbox staging [.data/agent].")
]


@agent_app.command("run")
def run_command(data_dir: AgentDataDirOpt = None) -> None:
    """Watch the chain for jobs, bid, run them in the Docker sandbox and post the results.

    Configured by ASCENDNET_* variables or .env (see docs/AGENT.md); Ctrl-C stops it cleanly.
    """
    import signal
    import threading

    from agent.service import build_agent

    _configure_logging()
    agent = build_agent(_settings(data_dir))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    agent.run(stop)


@agent_app.command("register")
def register_command(data_dir: AgentDataDirOpt = None) -> None:
    """Publish this machine's capability document and register as a provider with stake (or
    update the metadata CID when already registered)."""
    from agent.service import register

    _configure_logging()
    cid, sent = register(_settings(data_dir))
    console.print(f"registered: metadata CID [bold]{cid}[/], tx {sent.tx_hash}")
