from __future__ import annotations

from pathlib import Path

import pytest

from ascendnet import keystore
from ascendnet.errors import ConfigError
from chain.errors import UnsafeKey
from chain.signer import resolve_signer


def test_create_and_load_round_trip(tmp_path: Path) -> None:
    made = keystore.create_keystore(tmp_path / "k.json", "long enough pw")
    loaded = keystore.load_keystore(tmp_path / "k.json", "long enough pw")
    assert loaded.address == made.address
    with pytest.raises(keystore.KeystoreError, match="wrong password"):
        keystore.load_keystore(tmp_path / "k.json", "another password")
    with pytest.raises(keystore.KeystoreError, match="exists already"):
        keystore.create_keystore(tmp_path / "k.json", "long enough pw")


def test_short_password_and_missing_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(keystore.KeystoreError, match="at least 8"):
        keystore.create_keystore(tmp_path / "k.json", "short")
    with pytest.raises(keystore.KeystoreError, match="ascendnet account new"):
        keystore.load_keystore(tmp_path / "missing.json", "whatever pw")


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    monkeypatch.setenv(keystore.PASSWORD_ENV, "from-env")
    assert keystore.read_password(f) == "from-file"
    assert keystore.read_password(None) == "from-env"
    monkeypatch.delenv(keystore.PASSWORD_ENV)
    with pytest.raises(ConfigError, match="--password-file"):
        keystore.read_password(None, prompt=False)


def test_dev_key_only_on_local_anvil(w3, anvil) -> None:
    assert resolve_signer(w3, anvil.rpc_url, None, None).address == keystore.dev_account().address
    # The same node reached through a non-loopback name is not "local".
    with pytest.raises(UnsafeKey):
        resolve_signer(w3, "http://rpc.example.org:8545", None, None)


def test_dev_account_n_only_on_local_anvil_and_only_0_to_9(w3, anvil, dev_keys, tmp_path: Path) -> None:
    assert resolve_signer(w3, anvil.rpc_url, None, None, 0).address == dev_keys[0].address
    assert resolve_signer(w3, anvil.rpc_url, None, None, 7).address == dev_keys[7].address
    with pytest.raises(UnsafeKey, match="0-9"):
        resolve_signer(w3, anvil.rpc_url, None, None, 10)
    with pytest.raises(UnsafeKey, match="--dev-account is for a local anvil chain only"):
        resolve_signer(w3, "http://rpc.example.org:8545", None, None, 7)
    made = keystore.create_keystore(tmp_path / "k.json", "long enough pw")
    pw = tmp_path / "pw"
    pw.write_text("long enough pw")
    with pytest.raises(UnsafeKey, match="not both"):
        resolve_signer(w3, anvil.rpc_url, tmp_path / "k.json", pw, 7)
    assert resolve_signer(w3, anvil.rpc_url, tmp_path / "k.json", pw).address == made.address
