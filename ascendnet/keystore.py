"""Signing keys: encrypted JSON keystores (Web3 Secret Storage v3) for every real network, and
anvil's public dev key for a local dev chain only."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ascendnet.errors import AscendNetError, ConfigError

PASSWORD_ENV = "ASCENDNET_KEYSTORE_PASSWORD"
#: anvil's account 0; public knowledge, so it is refused anywhere but a local dev chain.
DEV_PRIVATE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


class KeystoreError(AscendNetError, ValueError):
    """A keystore cannot be read or decrypted."""


def read_password(password_file: Path | None, *, prompt: bool = True) -> str:
    """The keystore password from, in order: --password-file, $ASCENDNET_KEYSTORE_PASSWORD,
    or an interactive prompt when stdin is a terminal."""
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"Cannot read the password file {password_file}: {exc}") from exc
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env
    if prompt and sys.stdin.isatty():
        import getpass

        return getpass.getpass("Keystore password: ")
    raise ConfigError(
        f"No keystore password: pass --password-file, set {PASSWORD_ENV}, or run interactively."
    )


def load_keystore(path: Path, password: str) -> LocalAccount:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise KeystoreError(f"No keystore at {path}. Create one with `ascendnet account new`.") from exc
    except json.JSONDecodeError as exc:
        raise KeystoreError(f"{path} is not a JSON keystore: {exc}") from exc
    try:
        key = Account.decrypt(doc, password)
    except ValueError as exc:
        raise KeystoreError(f"Cannot decrypt {path}: wrong password, or a corrupt keystore.") from exc
    account: LocalAccount = Account.from_key(key)
    return account


def create_keystore(path: Path, password: str, *, private_key: str | None = None) -> LocalAccount:
    """Write a new encrypted keystore (mode 0600). Refuses to overwrite an existing file."""
    if path.exists():
        raise KeystoreError(f"{path} exists already; choose another path.")
    if len(password) < 8:
        raise KeystoreError("Choose a keystore password of at least 8 characters.")
    account: LocalAccount = Account.from_key(private_key) if private_key else Account.create()
    doc = Account.encrypt(account.key, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    return account


def dev_account() -> LocalAccount:
    account: LocalAccount = Account.from_key(DEV_PRIVATE_KEY)
    return account
