"""Shared fixtures: a real anvil from the npm toolchain, and fresh deployments on it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from ascendnet.processes import stop_process  # noqa: F401 - tests import it from here
from chain.anvil import Anvil, dev_accounts
from chain.contracts import Protocol
from chain.deploy import DeployOptions, ProtocolParams, deploy
from chain.rpc import connect
from chain.tx import TxSender

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "ASCENDNET_TEST_PG_URL", "postgresql+psycopg2://ascendnet:ascendnet@127.0.0.1:5432/ascendnet"
)


def require(component: str, why: str) -> None:
    """A component an integration test needs is missing: fail under CI=true, where a missing
    component means a broken install step that a skip would hide; skip elsewhere."""
    message = (
        f"{component} is not available ({why}). `make setup` installs it and scripts/services.sh starts it."
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    node = Anvil(port=free_port(), log_path=tmp_path_factory.mktemp("anvil") / "anvil.log")
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def w3(anvil: Anvil) -> Web3:
    return connect(anvil.rpc_url)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/ape runs under ape's own runner (`ape test tests/ape`, see the Makefile)."""
    if "ape" in collection_path.parts and not config.pluginmanager.has_plugin("ape_test"):
        return True
    return None


@pytest.fixture(scope="session")
def dev_keys() -> list[LocalAccount]:
    return dev_accounts(10)


@pytest.fixture(scope="session")
def senders(w3: Web3, dev_keys: list[LocalAccount]) -> list[TxSender]:
    """One TxSender per dev account (0 deploys and administers, 9 is the treasury)."""
    return [TxSender(w3, a) for a in dev_keys]


@pytest.fixture(scope="module")
def protocol(w3: Web3, senders: list[TxSender], dev_keys: list[LocalAccount]) -> Protocol:
    """A fresh deployment (local params, TestToken allowed) for each test module."""
    deployment = deploy(
        w3,
        senders[0],
        DeployOptions(treasury=dev_keys[9].address, params=ProtocolParams.local(), with_test_token=True),
    )
    return Protocol.load(w3, deployment)


@pytest.fixture()
def manifest_dir(tmp_path: Path) -> Path:
    return tmp_path / "deployments"


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    """A docker SDK client for a reachable dockerd (started by scripts/services.sh)."""
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no usable dockerd
        require("dockerd", str(exc))
    return client


@contextmanager
def temp_pg_database(prefix: str = "ascendnet_test") -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards; yields its URL. Fails under
    CI=true (skips elsewhere) when no server answers."""
    import uuid

    import sqlalchemy as sa

    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means no usable server
        require("PostgreSQL", str(exc))
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        from indexer.db import drop_pg_database

        drop_pg_database(admin, name)
        admin.dispose()


@pytest.fixture()
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards. Yields its URL."""
    with temp_pg_database() as url:
        yield url
