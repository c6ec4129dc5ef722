"""`ascendnet chain ...`, `ascendnet deploy` and `ascendnet contracts ...`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chain import manifest
from chain.anvil import Anvil, dev_accounts
from chain.deploy import DeployOptions, ProtocolParams, deploy_and_record
from chain.rpc import connect, is_local_dev_chain
from chain.signer import resolve_signer
from chain.tx import TxSender

console = Console()
chain_app = typer.Typer(help="Run a local chain.", no_args_is_help=True)
contracts_app = typer.Typer(help="Developer tools for the Solidity contracts.", no_args_is_help=True)

RpcUrl = Annotated[str, typer.Option("--rpc-url", envvar="ASCENDNET_RPC_URL", help="JSON-RPC endpoint.")]
KeystoreOpt = Annotated[
    Path | None,
    typer.Option("--keystore", envvar="ASCENDNET_KEYSTORE", help="Encrypted JSON keystore to sign with."),
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        envvar="ASCENDNET_PASSWORD_FILE",
        help="File holding the keystore password (else $ASCENDNET_KEYSTORE_PASSWORD or a prompt).",
    ),
]


def print_dev_accounts(count: int = 10) -> None:
    table = Table(title="Funded dev accounts (public keys: local chain only)")
    table.add_column("#")
    # NOTE: fold, never crop: a truncated address or key is useless.
    table.add_column("address", overflow="fold", min_width=42)
    table.add_column("private key", overflow="fold")
    for i, acct in enumerate(dev_accounts(count)):
        table.add_row(str(i), acct.address, "0x" + acct.key.hex().removeprefix("0x"))
    console.print(table)


@chain_app.command("up")
def chain_up(
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1 only).")] = 8545,
    block_time: Annotated[
        float | None, typer.Option(help="Seconds per block; default mines on each tx.")
    ] = None,
    state: Annotated[
        Path | None, typer.Option(help="Load/save chain state here, so a restart resumes.")
    ] = None,
) -> None:
    """Start anvil on 127.0.0.1 and keep it running until Ctrl-C."""
    anvil = Anvil(port=port, block_time=block_time, state_path=state)
    try:
        anvil.start()
        pid = anvil.process.pid if anvil.process else "?"
        console.print(
            f"[green]anvil is up[/] at [bold]{anvil.rpc_url}[/] (chain id {anvil.chain_id}, pid {pid})"
        )
        print_dev_accounts(3)
        console.print("Ctrl-C to stop.")
        while anvil.process is not None and anvil.process.poll() is None:
            time.sleep(0.5)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("stopping anvil ...")
    finally:
        anvil.stop()


def deploy_command(
    rpc_url: RpcUrl = "http://127.0.0.1:8545",
    keystore: KeystoreOpt = None,
    password_file: PasswordFileOpt = None,
    manifest_path: Annotated[
        Path | None,
        typer.Option("--manifest", help=r"Manifest to write \[default: deployments/CHAIN_ID.json]."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing manifest for this chain.")] = False,
    admin: Annotated[
        str | None, typer.Option(help="Admin (and initial arbiter/pauser); default the deployer.")
    ] = None,
    treasury: Annotated[str | None, typer.Option(help="Fee treasury; default the admin.")] = None,
    test_token: Annotated[
        bool | None, typer.Option(help="Deploy and allow TestToken [default: only on a local chain].")
    ] = None,
) -> None:
    """Deploy ComputeRental and PromptMarketplace and write the deployment manifest."""
    w3 = connect(rpc_url)
    local = is_local_dev_chain(w3, rpc_url)
    signer = resolve_signer(w3, rpc_url, keystore, password_file)
    options = DeployOptions(
        admin=admin,
        treasury=treasury,
        params=ProtocolParams.local() if local else ProtocolParams(),
        with_test_token=local if test_token is None else test_token,
    )
    console.print(f"deploying to chain {w3.eth.chain_id} at {rpc_url} from {signer.address} ...")
    deployment, path = deploy_and_record(
        w3, TxSender(w3, signer), options, manifest_path, overwrite=overwrite
    )
    table = Table(title=f"Deployed (block {deployment.deploy_block})")
    table.add_column("contract")
    table.add_column("address")
    for name, address in deployment.contracts.items():
        table.add_row(name, address)
    console.print(table)
    console.print(f"manifest written to [bold]{path}[/]")


@contracts_app.command("build")
def contracts_build() -> None:
    """Compile with ape (solcjs, offline) and refresh chain/abi and chain/events.py."""
    from chain.build import build

    for path in build():
        console.print(f"wrote {path}")


@contracts_app.command("show")
def contracts_show(
    manifest_path: Annotated[Path, typer.Option("--manifest", help="Deployment manifest to show.")],
) -> None:
    """Print a deployment manifest."""
    d = manifest.read(manifest_path)
    console.print_json(d.model_dump_json())
