"""`ascendnet dev`: the whole marketplace on one machine.

Today it brings up anvil (state kept under the data dir, so a restart resumes) and deploys the
contracts once. The indexer, API and agent join it as they land (see docs/ROADMAP.md).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chain import manifest
from chain.anvil import Anvil
from chain.cli import print_dev_accounts
from chain.contracts import Protocol
from chain.deploy import DeployOptions, ProtocolParams, deploy_and_record
from chain.errors import ManifestError
from chain.rpc import connect
from chain.signer import resolve_signer
from chain.tx import TxSender

console = Console()


def ensure_deployed(rpc_url: str, manifest_path: Path) -> tuple[manifest.Deployment, bool]:
    """Reuse the manifest when its contracts exist on this chain; otherwise deploy afresh."""
    w3 = connect(rpc_url)
    try:
        existing = manifest.read(manifest_path)
        if existing.chain_id == w3.eth.chain_id and Protocol.load(w3, existing).has_code():
            return existing, False
    except ManifestError:
        pass
    signer = resolve_signer(w3, rpc_url, None, None)
    options = DeployOptions(params=ProtocolParams.local(), with_test_token=True)
    deployment, _ = deploy_and_record(w3, TxSender(w3, signer), options, manifest_path, overwrite=True)
    return deployment, True


def dev_command(
    rpc_port: Annotated[int, typer.Option(help="anvil's port on 127.0.0.1.")] = 8545,
    data_dir: Annotated[
        Path, typer.Option(envvar="ASCENDNET_DATA_DIR", help="Where dev state lives.")
    ] = Path(".data/dev"),
    fresh: Annotated[bool, typer.Option(help="Delete the data dir first and start over.")] = False,
) -> None:
    """Start a local chain, deploy the contracts, and keep running until Ctrl-C."""
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    anvil = Anvil(
        port=rpc_port,
        state_path=data_dir / "anvil-state.json",
        log_path=data_dir / "anvil.log",
        extra_args=["--state-interval", "5"],
    )
    console.print(f"starting anvil on {anvil.rpc_url} ...")
    try:
        anvil.start()
        manifest_path = data_dir / "deployments" / "31337.json"
        deployment, deployed = ensure_deployed(anvil.rpc_url, manifest_path)
        verb = "deployed" if deployed else "reusing"
        console.print(f"[green]{verb}[/] contracts (manifest {manifest_path}):")
        for name, address in deployment.contracts.items():
            console.print(f"  {name:18} {address}")
        console.print(f"RPC: [bold]{anvil.rpc_url}[/]  chain id {deployment.chain_id}")
        print_dev_accounts(4)
        console.print("Running. Ctrl-C stops everything.")
        while anvil.process is not None and anvil.process.poll() is None:
            time.sleep(0.5)
        console.print("[red]anvil exited unexpectedly[/]; see " + str(data_dir / "anvil.log"))
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("stopping ...")
    finally:
        anvil.stop()
        console.print("stopped.")
