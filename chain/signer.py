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
    w3: Web3,
    rpc_url: str,
    keystore_path: Path | None,
    password_file: Path | None,
    dev_account: int | None = None,
) -> LocalAccount:
    """The keystore's account; else, on a local anvil chain only, anvil's funded dev account
    `dev_account` (0, the deployer, by default)."""
    if keystore_path is not None:
        if dev_account is not None:
            raise UnsafeKey("pass either --keystore or --dev-account, not both")
        return keystore.load_keystore(keystore_path, keystore.read_password(password_file))
    if is_local_dev_chain(w3, rpc_url):
        if dev_account is None or dev_account == 0:
            return keystore.dev_account()
        from chain.anvil import dev_accounts

        if not 0 <= dev_account < 10:
            raise UnsafeKey(f"--dev-account must be 0-9 (anvil's funded accounts), not {dev_account}")
        return dev_accounts(dev_account + 1)[dev_account]
    if dev_account is not None:
        raise UnsafeKey(
            f"--dev-account is for a local anvil chain only, and {rpc_url} (chain {w3.eth.chain_id}) is "
            "not one. Pass --keystore (create one with `ascendnet account new`)."
        )
    raise UnsafeKey(
        f"{rpc_url} (chain {w3.eth.chain_id}) is not a local anvil chain, so the public dev key is "
        "refused. Pass --keystore (create one with `ascendnet account new`)."
    )
