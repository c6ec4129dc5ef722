"""Shared fixtures: a real anvil from the npm toolchain, and fresh deployments on it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.anvil import Anvil, dev_accounts
from chain.contracts import Protocol
from chain.deploy import DeployOptions, ProtocolParams, deploy
from chain.rpc import connect
from chain.tx import TxSender

IN_CI = os.environ.get("CI", "").lower() == "true"


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
