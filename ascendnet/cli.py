"""The `ascendnet` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ascendnet import __version__, keystore
from ascendnet.errors import AscendNetError

app = typer.Typer(
    help="AscendNet: a marketplace for AI prompts and escrowed GPU compute on an EVM chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
account_app = typer.Typer(help="Encrypted keystores for signing.", no_args_is_help=True)
err = Console(stderr=True)
_LOG_LEVELS = ("debug", "info", "warning", "error")


def _register() -> None:
    from agent.cli import agent_app
    from api.cli import api_app
    from ascendnet.demo import demo_command
    from ascendnet.dev import dev_command
    from ascendnet.jobs.cli import job_app, withdraw_command
    from ascendnet.prompts.cli import prompt_app
    from ascendnet.status import status_command
    from chain.cli import chain_app, contracts_app, deploy_command
    from indexer.cli import indexer_app

    app.add_typer(chain_app, name="chain")
    app.add_typer(contracts_app, name="contracts")
    app.add_typer(account_app, name="account")
    app.add_typer(indexer_app, name="indexer")
    app.add_typer(agent_app, name="agent")
    app.add_typer(api_app, name="api")
    app.add_typer(prompt_app, name="prompt")
    app.add_typer(job_app, name="job")
    app.command("withdraw")(withdraw_command)
    app.command("deploy")(deploy_command)
    app.command("dev")(dev_command)
    app.command("status")(status_command)
    app.command("demo")(demo_command)


@app.command()
def version() -> None:
    """Print the AscendNet version."""
    typer.echo(__version__)


@account_app.command("new")
def account_new(
    path: Annotated[Path, typer.Option("--keystore", help="Where to write the encrypted keystore.")],
    password_file: Annotated[Path | None, typer.Option(help="Read the password from this file.")] = None,
) -> None:
    """Create a new account in an encrypted keystore (mode 0600)."""
    account = keystore.create_keystore(path, keystore.read_password(password_file))
    typer.echo(f"created {account.address} in {path}")


def main() -> None:
    from ascendnet.log import configure

    # Services re-configure logging from their settings; this keeps other commands' debug noise off.
    level = os.environ.get("ASCENDNET_LOG_LEVEL", "info").lower()
    configure(os.environ.get("ASCENDNET_LOG_FORMAT", "auto"), level if level in _LOG_LEVELS else "info")
    _register()
    try:
        app()
    except AscendNetError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
