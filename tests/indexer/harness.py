"""Fixtures and helpers for the runner-level indexer tests (rpc, reorg, runner, crash).

Each test module gets its own anvil (many transactions per block need a high block gas limit,
and reorg tests rewrite the chain), a fresh deployment per test, and the database backends the
suites are parametrized over: a SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from web3 import Web3

from chain.anvil import Anvil, dev_accounts
from chain.contracts import Protocol
from chain.deploy import DeployOptions, ProtocolParams, deploy
from chain.manifest import Deployment
from chain.rpc import connect
from chain.tx import TxSender
from indexer.db import make_engine, upgrade
from indexer.rpc import LogSource
from tests.conftest import free_port, temp_pg_database
from tests.indexer.activity import ANVIL_ARGS, Activity

BACKENDS = ["sqlite", "postgresql"]


@dataclass
class Chain:
    anvil: Anvil
    w3: Web3
    accounts: list[str]

    @property
    def url(self) -> str:
        return self.anvil.rpc_url

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        resp = self.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
        if "error" in resp:
            raise RuntimeError(f"{method}: {resp['error']}")
        return resp["result"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    node = Anvil(
        port=free_port(),
        extra_args=list(ANVIL_ARGS),
        log_path=tmp_path_factory.mktemp("anvil") / "anvil.log",
    ).start()
    try:
        w3 = connect(node.rpc_url)
        yield Chain(anvil=node, w3=w3, accounts=[a.address for a in dev_accounts(10)])
    finally:
        node.stop()


@pytest.fixture()
def protocol(chain: Chain) -> Protocol:
    keys = dev_accounts(10)
    deployment = deploy(
        chain.w3,
        TxSender(chain.w3, keys[0]),
        DeployOptions(treasury=keys[9].address, params=ProtocolParams.local(), with_test_token=True),
    )
    return Protocol.load(chain.w3, deployment)


@pytest.fixture()
def activity(protocol: Protocol, chain: Chain) -> Activity:
    return Activity(protocol, chain.accounts)


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped afterwards); yields its URL."""
    with temp_pg_database("ascendnet_ix") as url:
        yield url


@dataclass
class Databases:
    """Makes fresh databases of one backend for a test (all removed afterwards)."""

    backend: str
    tmp: Path
    _stack: list[Any]

    def new(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp / f'ix-{uuid.uuid4().hex[:8]}.sqlite3'}"
        cm = pg_database()
        url = cm.__enter__()
        self._stack.append(cm)
        return url


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    dbs = Databases(backend=request.param, tmp=tmp_path, _stack=[])
    try:
        yield dbs
    finally:
        for cm in reversed(dbs._stack):
            cm.__exit__(None, None, None)


def prepared_engine(url: str) -> sa.Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


def index_once(
    url: str,
    deployment: Deployment,
    rpc_urls: list[str],
    *,
    engine: sa.Engine | None = None,
    **source_kwargs: Any,
) -> Any:
    """Runs the indexer in-process into `url` until the node's current head (a RunSummary)."""
    from indexer.runner import Indexer

    own = engine is None
    engine = engine or prepared_engine(url)
    try:
        source_kwargs.setdefault("backoff_base", 0.01)
        source = LogSource(urls=rpc_urls, addresses=_addresses(deployment), **source_kwargs)
        return Indexer(
            engine=engine, deployment=deployment, source=source, poll_interval=0.05, progress=False
        ).run(once=True)
    finally:
        if own:
            engine.dispose()


def _addresses(deployment: Deployment) -> list[str]:
    return [deployment.address("ComputeRental"), deployment.address("PromptMarketplace")]


def some_activity(activity: Activity, chain: Chain, *, rounds: int = 3, per_block: int = 4) -> None:
    """A mix of calls of both contracts over several blocks: providers, a job and its bids, mints."""
    providers = chain.accounts[1:4]
    activity.send_mined(activity.register_providers(providers) + [activity.post_job(chain.accounts[0])])
    job_id = int(activity.protocol.compute.functions.jobCount().call())
    for r in range(rounds):
        calls = activity.bids(job_id, providers, 6, start_price=100 * (r + 1)) + activity.mints(
            chain.accounts[4:7], 6, salt=r + 1000 * job_id
        )
        activity.send_mined(calls, per_block=per_block)


def read_models(url: str) -> dict[str, Any]:
    """What a reader of the read models can tell apart: per-block row digests (every table plus
    the canonical raw event log) and the stored per-block digest chain."""
    from indexer import digest

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {"rows": digest.row_digests(conn), "blocks": digest.stored_digests(conn)}
    finally:
        engine.dispose()


def clean_index(databases: Databases, deployment: Deployment, rpc_url: str) -> dict[str, Any]:
    """Read models of a fresh index of the node's current canonical chain, in a new SQLite file.

    NOTE: SQLite even when the database under test is PostgreSQL: the read models of the two
    backends must be identical, and a fresh SQLite file costs far less than a new database."""
    url = f"sqlite:///{databases.tmp / f'clean-{uuid.uuid4().hex[:8]}.sqlite3'}"
    index_once(url, deployment, [rpc_url])
    return read_models(url)


# ------------------------------------------------------------------ the CLI in a subprocess

REPO = Path(__file__).resolve().parents[2]


def cli_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ASCENDNET_")}
    env.update({"ASCENDNET_LOG_FORMAT": "json", "ASCENDNET_POLL_INTERVAL": "0.2", **extra})
    return env


def cli_command(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "ascendnet.cli", *args]


def run_cli(*args: str, timeout: float = 120, **env: str) -> Any:
    import subprocess

    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, timeout=timeout, cwd=REPO, env=cli_env(**env)
    )


def write_manifest(deployment: Deployment, directory: Path) -> Path:
    from chain import manifest

    return manifest.write(deployment, directory / f"manifest-{uuid.uuid4().hex[:6]}.json")


def json_lines(text: str) -> list[dict[str, Any]]:
    import json

    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def chain_logs(chain: Chain, deployment: Deployment) -> list[tuple[str, int]]:
    """(tx hash, log index) of every protocol log on the node's canonical chain."""
    logs = chain.rpc(
        "eth_getLogs",
        [
            {
                "address": _addresses(deployment),
                "fromBlock": hex(deployment.deploy_block),
                "toBlock": hex(chain.w3.eth.block_number),
            }
        ],
    )
    return [(lg["transactionHash"], int(lg["logIndex"], 16)) for lg in logs]


def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.1) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def status_of(url: str) -> Any:
    from indexer.status import read_status

    engine = make_engine(url)
    try:
        return read_status(engine)
    except sa.exc.OperationalError:
        return None
    except sa.exc.ProgrammingError:
        return None
    finally:
        engine.dispose()
