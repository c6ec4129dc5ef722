"""Chooses the signing account for a command: an encrypted keystore, or the public dev key
on a local anvil chain only."""

from __future__ import annotations

from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from ascendnet import keystore
from chain.errors import UnsafeKey
from chain.rpc import is_local_dev_chain


def resolve_signer(
    w3: Web3, rpc_url: str, keystore_path: Path | None, password_file: Path | None
) -> LocalAccount:
    if keystore_path is not None:
        return keystore.load_keystore(keystore_path, keystore.read_password(password_file))
    if is_local_dev_chain(w3, rpc_url):
        return keystore.dev_account()
    raise UnsafeKey(
        f"{rpc_url} (chain {w3.eth.chain_id}) is not a local anvil chain, so the public dev key is "
        "refused. Pass --keystore (create one with `ascendnet account new`)."
    )
