"""`ascendnet dev`: the whole marketplace on one machine.

It brings up anvil (state kept under the data dir, so a restart resumes), deploys the contracts
once, then runs the indexer, the read-only API and one agent as child processes on embedded
defaults: SQLite, the local content store, and Docker when it is reachable. Ctrl-C stops every
child by its PID, then anvil.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated

import typer
from eth_account import Account
from rich.console import Console

from ascendnet.apiview import ApiView
from ascendnet.processes import stop_process
from ascendnet.prompts.seller_keys import SellerKeyStore
from chain import manifest
from chain.anvil import Anvil, dev_accounts
from chain.cli import print_dev_accounts
from chain.contracts import Protocol
from chain.deploy import DeployOptions, ProtocolParams, deploy_and_record
from chain.errors import ManifestError
from chain.rpc import connect
from chain.signer import resolve_signer
from chain.tx import TxSender

console = Console()
#: Dev account that the local agent runs as (0 is the deployer/admin).
AGENT_ACCOUNT = 1
DEV_KEYSTORE_PASSWORD = "ascendnet-dev-only"


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


@dataclass
class Child:
    """A service `dev` started; stopped by its PID only."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> Child:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=timeout)
        if self._log is not None:
            self._log.close()


def _docker_reachable() -> tuple[bool, str]:
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True, ""
    except Exception as exc:  # noqa: BLE001 - any failure means no usable dockerd
        return False, str(exc)


def _agent_keystore(data_dir: Path) -> Path:
    """An encrypted keystore for the agent's dev account (a public key: local chain only)."""
    path = data_dir / "agent-keystore.json"
    if not path.exists():
        key = dev_accounts(AGENT_ACCOUNT + 1)[AGENT_ACCOUNT].key
        path.write_text(json.dumps(Account.encrypt(key, DEV_KEYSTORE_PASSWORD)))
    return path


def _services(
    *, rpc_url: str, manifest_path: Path, data_dir: Path, api_port: int, with_agent: bool
) -> list[Child]:
    py = [sys.executable, "-m", "ascendnet.cli"]
    database = f"sqlite:///{(data_dir / 'indexer.sqlite3').resolve()}"
    base = {
        **os.environ,
        "ASCENDNET_RPC_URL": rpc_url,
        "ASCENDNET_MANIFEST": str(manifest_path.resolve()),
        "ASCENDNET_LOG_FORMAT": "json",
    }
    children = [
        Child(
            "indexer",
            [
                *py,
                "indexer",
                "run",
                "--database-url",
                database,
                "--finality",
                "confirmations",
                "--confirmations",
                "0",
                "--poll-interval",
                "0.5",
                "--no-progress",
            ],  # fmt: skip
            # The indexer resolves prompt metadata from the local content store the demo and
            # `prompt mint --data-dir` write to: <data_dir>/content.
            {**base, "ASCENDNET_DATA_DIR": str(data_dir.resolve()), "ASCENDNET_STORAGE__BACKEND": "local"},
            data_dir / "indexer.log",
        ),
        Child(
            "api",
            [*py, "api", "serve", "--database-url", database, "--port", str(api_port)],
            base,
            data_dir / "api.log",
        ),
    ]
    if with_agent:
        children.append(
            Child(
                "agent",
                [*py, "agent", "run", "--data-dir", str(data_dir)],
                {
                    **base,
                    "ASCENDNET_KEYSTORE": str(_agent_keystore(data_dir)),
                    "ASCENDNET_KEYSTORE_PASSWORD": DEV_KEYSTORE_PASSWORD,
                    "ASCENDNET_CONFIRMATIONS": "0",
                    "ASCENDNET_POLICY__ALLOW_ANY_DIGEST": "true",
                    "ASCENDNET_SELLER_KEYS": str(seller_keys_path(data_dir).resolve()),
                },
                data_dir / "agent.log",
            )
        )
    return children


def seller_keys_path(data_dir: Path) -> Path:
    """The agent's seller key store: `ascendnet demo` mints into it, the agent delivers from it."""
    return data_dir / "seller-keys.json"


def _register_agent(rpc_url: str, deployment: manifest.Deployment, data_dir: Path) -> None:
    """Register the agent's dev account as a provider, and give it an (empty) seller key store
    so that it delivers licence keys for the prompts minted into it later."""
    w3 = connect(rpc_url)
    protocol = Protocol.load(w3, deployment)
    account = dev_accounts(AGENT_ACCOUNT + 1)[AGENT_ACCOUNT]
    SellerKeyStore(seller_keys_path(data_dir), account).create()
    if not protocol.compute.functions.isActiveProvider(account.address).call():
        stake = int(protocol.compute.functions.params().call()[0])
        TxSender(w3, account).transact(
            protocol.compute.functions.registerProvider("local-dev-agent"), value=stake
        )


def dev_command(
    rpc_port: Annotated[int, typer.Option(help="anvil's port on 127.0.0.1.")] = 8545,
    api_port: Annotated[int, typer.Option(help="The API's port on 127.0.0.1.")] = 8000,
    data_dir: Annotated[
        Path, typer.Option(envvar="ASCENDNET_DATA_DIR", help="Where dev state lives.")
    ] = Path(".data/dev"),
    fresh: Annotated[bool, typer.Option(help="Delete the data dir first and start over.")] = False,
    block_time: Annotated[
        float,
        typer.Option(
            help="Seconds between blocks, so that block time (deadlines, challenge windows) follows "
            "the clock; 0 mines a block only per transaction."
        ),
    ] = 1.0,
    agent: Annotated[bool, typer.Option(help="Run an agent (needs a reachable dockerd).")] = True,
    redeploy: Annotated[
        bool,
        typer.Option(
            help="Deploy fresh contracts on the kept chain state, and reset the read models and the "
            "agent's journals that belonged to the old ones."
        ),
    ] = False,
) -> None:
    """Start a local chain, deploy the contracts, and run the indexer, the API and an agent
    until Ctrl-C."""

    def _terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops everything as cleanly as Ctrl-C does

    signal.signal(signal.SIGTERM, _terminate)
    # NOTE: a shell starts background jobs with SIGINT ignored; Ctrl-C / kill -INT must still work.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    anvil = Anvil(
        port=rpc_port,
        state_path=data_dir / "anvil-state.json",
        log_path=data_dir / "anvil.log",
        block_time=block_time or None,
        extra_args=["--state-interval", "5"],
    )
    children: list[Child] = []
    console.print(f"starting anvil on {anvil.rpc_url} ...")
    try:
        anvil.start()
        manifest_path = data_dir / "deployments" / "31337.json"
        if redeploy:
            _forget_deployment(data_dir, manifest_path)
        deployment, deployed = ensure_deployed(anvil.rpc_url, manifest_path)
        verb = "deployed" if deployed else "reusing"
        console.print(f"[green]{verb}[/] contracts (manifest {manifest_path}):")
        for name, address in deployment.contracts.items():
            console.print(f"  {name:18} {address}")
        with_agent = False
        if agent:
            with_agent, why = _docker_reachable()
            if with_agent:
                _register_agent(anvil.rpc_url, deployment, data_dir)
            else:
                console.print(f"[yellow]Docker is not reachable ({why}); running without an agent.[/]")
        for child in _services(
            rpc_url=anvil.rpc_url,
            manifest_path=manifest_path,
            data_dir=data_dir,
            api_port=api_port,
            with_agent=with_agent,
        ):
            if child.name == "api":
                _wait_for_database(data_dir, children[0])
            children.append(child.start())
        api_url = f"http://127.0.0.1:{api_port}"
        console.print(f"RPC: [bold]{anvil.rpc_url}[/]  chain id {deployment.chain_id}")
        console.print(f"API: [bold]{api_url}[/]  (OpenAPI docs at {api_url}/docs)")
        agent_line = "agent: " + (f"running as dev account {AGENT_ACCOUNT}" if with_agent else "not running")
        console.print(agent_line + f"; logs in {data_dir}/*.log")
        print_dev_accounts(4)
        console.print("Running. Ctrl-C stops everything.")
        _watch(anvil, children, api_url, data_dir)
    except KeyboardInterrupt:
        console.print("stopping ...")
    finally:
        for child in reversed(children):
            child.stop()
        anvil.stop()
        console.print("stopped.")


#: What belongs to one deployment: dropped by --redeploy (the chain state and keys are kept).
DEPLOYMENT_STATE = ("indexer.sqlite3*", "journal.db*", "deliveries.db*", "agent-status.json")


def _forget_deployment(data_dir: Path, manifest_path: Path) -> None:
    for pattern in DEPLOYMENT_STATE:
        for path in data_dir.glob(pattern):
            path.unlink()
    if manifest_path.exists():
        old = manifest_path.with_suffix(f".replaced-{int(time.time())}.json")
        manifest_path.rename(old)
        console.print(f"old manifest kept as {old}")


def _wait_for_database(data_dir: Path, indexer: Child, timeout: float = 60.0) -> None:
    """The API opens the indexer's SQLite file read-only, which needs the file and its WAL to
    exist: wait until the indexer has created and migrated it."""
    wal = data_dir / "indexer.sqlite3-wal"
    deadline = time.monotonic() + timeout
    while not wal.exists() and time.monotonic() < deadline:
        if not indexer.alive():
            console.print(f"[red]the indexer exited[/]; see {indexer.log_path}")
            raise typer.Exit(1)
        time.sleep(0.1)


def _watch(anvil: Anvil, children: list[Child], api_url: str, data_dir: Path) -> None:
    """Show the compact live status (head, indexed head, jobs by state, agent) until something
    dies: updated in place on a terminal; otherwise a line whenever jobs or the agent change,
    and every 30 s (blocks come every second, so a line per block would be noise)."""
    from rich.live import Live
    from rich.text import Text

    from ascendnet.status import Prober, compact

    prober = Prober(anvil.rpc_url, ApiView(api_url, timeout=2), data_dir)
    last_key, last_print = "", 0.0
    live = (
        Live(Text(""), console=console, refresh_per_second=2, transient=False)
        if console.is_terminal
        else None
    )
    try:
        if live is not None:
            live.start()
        while True:
            if anvil.process is None or anvil.process.poll() is not None:
                console.print("[red]anvil exited unexpectedly[/]; see its log")
                raise typer.Exit(1)
            for child in children:
                if not child.alive():
                    console.print(f"[red]{child.name} exited[/]; see {child.log_path}")
                    raise typer.Exit(1)
            line = compact(prober.snapshot())
            if live is not None:
                live.update(Text(line))
            else:
                key = line.split(" | jobs: ", 1)[-1]
                if key != last_key or time.monotonic() - last_print >= 30:
                    console.print(line, highlight=False)
                    last_key, last_print = key, time.monotonic()
            time.sleep(1)
    finally:
        prober.close()
        if live is not None:
            live.stop()
