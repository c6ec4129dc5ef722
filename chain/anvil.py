"""Runs a local anvil chain on 127.0.0.1 (`ascendnet chain up`, `ascendnet dev`, tests)."""

from __future__ import annotations

import functools
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ascendnet.processes import stop_process
from ascendnet.toolchain import find_tool
from chain.errors import RpcError
from chain.rpc import ANVIL_CHAIN_ID

#: anvil's well-known default mnemonic. Its keys are public: dev chains only.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_BALANCE_ETH = 10_000


def dev_accounts(count: int = 10) -> list[LocalAccount]:
    """The funded accounts of a default anvil chain (public keys: never use on a real network)."""
    return [_dev_account(i) for i in range(count)]


@functools.cache
def _dev_account(index: int) -> LocalAccount:
    # NOTE: cached: deriving from the mnemonic costs tens of milliseconds an account.
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return account


@dataclass
class Anvil:
    """An anvil process we started, stopped by its PID only."""

    port: int = 8545
    host: str = "127.0.0.1"
    chain_id: int = ANVIL_CHAIN_ID
    block_time: float | None = None
    state_path: Path | None = None
    accounts: int = 10
    extra_args: list[str] = field(default_factory=list)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            find_tool("anvil"),
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--accounts", str(self.accounts),
            "--balance", str(DEV_BALANCE_ETH),
            "--mnemonic", DEV_MNEMONIC,
        ]  # fmt: skip
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        if self.state_path:
            # Loads the state at start (when present) and dumps it on exit: restarts resume.
            cmd += ["--state", str(self.state_path)]
        return cmd + self.extra_args

    def start(self, timeout: float = 30.0) -> Anvil:
        if self.state_path:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        # NOTE: its own session, so a Ctrl-C meant for us does not kill it before we stop it
        # cleanly (anvil dumps --state on SIGTERM).
        self.process = subprocess.Popen(
            self.command(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RpcError(
                    f"anvil exited with code {self.process.returncode} while starting on {self.rpc_url}. "
                    f"Is port {self.port} already in use? Try another with --port."
                )
            try:
                req = urllib.request.Request(
                    self.rpc_url, data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(req, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RpcError(f"anvil did not answer on {self.rpc_url} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (anvil dumps --state on it), then SIGKILL if it does not exit."""
        if self.process is not None:
            stop_process(self.process, timeout=timeout)

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
