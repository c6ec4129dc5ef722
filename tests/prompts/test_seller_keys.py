"""ascendnet/prompts/seller_keys.py: content keys encrypted at rest, bound to one account."""

from __future__ import annotations

import base64
import json
import stat
import threading
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from ascendnet.prompts.crypto import new_content_key
from ascendnet.prompts.errors import SellerKeysCorrupt, SellerKeysWrongAccount
from ascendnet.prompts.seller_keys import SellerKeyEntry, SellerKeyStore


def entry(n: int) -> SellerKeyEntry:
    return SellerKeyEntry(
        metadata_cid=f"bafkreimeta{n}",
        content_hash="0x" + f"{n:02x}" * 32,
        ciphertext_cid=f"bafkreicipher{n}",
        algorithm="AES-256-GCM",
        nonce="0x" + "00" * 12,
        created_at="2025-06-01T12:00:00Z",
    )


def test_keys_round_trip_and_are_never_on_disk_in_the_clear(
    tmp_path: Path, dev_keys: list[LocalAccount]
) -> None:
    path = tmp_path / "keys" / "seller-keys.json"
    keys = SellerKeyStore(path, dev_keys[3])
    assert not keys.exists() and keys.entries() == []
    secrets = [new_content_key() for _ in range(3)]
    for n, secret in enumerate(secrets):
        keys.add(entry(n), secret)
    keys.set_token("bafkreimeta1", chain_id=31337, market="0x" + "11" * 20, token_id=7)

    reopened = SellerKeyStore(path, dev_keys[3])
    assert [reopened.content_key(f"bafkreimeta{n}") for n in range(3)] == secrets
    assert reopened.entry("bafkreimeta1") == SellerKeyEntry(
        **{**entry(1).__dict__, "chain_id": 31337, "market": "0x" + "11" * 20, "token_id": 7}
    )
    assert reopened.content_key("bafkreiunknown") is None

    raw = path.read_bytes()
    for secret in secrets:
        for encoding in (secret, secret.hex().encode(), base64.b64encode(secret)):
            assert encoding not in raw
    assert bytes(dev_keys[3].key).hex().encode() not in raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_another_account_cannot_open_it(tmp_path: Path, dev_keys: list[LocalAccount]) -> None:
    path = tmp_path / "seller-keys.json"
    SellerKeyStore(path, dev_keys[3]).add(entry(0), new_content_key())
    with pytest.raises(SellerKeysWrongAccount) as info:
        SellerKeyStore(path, dev_keys[4])
    assert info.value.owner == dev_keys[3].address and info.value.account == dev_keys[4].address
    # Forging the owner field does not help: the key-encryption key comes from the account key.
    doc = json.loads(path.read_text())
    doc["account"] = dev_keys[4].address
    path.write_text(json.dumps(doc))
    with pytest.raises(SellerKeysCorrupt, match="does not authenticate"):
        SellerKeyStore(path, dev_keys[4]).content_key("bafkreimeta0")


def test_edited_or_swapped_entries_are_refused(tmp_path: Path, dev_keys: list[LocalAccount]) -> None:
    path = tmp_path / "seller-keys.json"
    keys = SellerKeyStore(path, dev_keys[3])
    keys.add(entry(0), new_content_key())
    keys.add(entry(1), new_content_key())
    doc = json.loads(path.read_text())
    a, b = doc["entries"]["bafkreimeta0"], doc["entries"]["bafkreimeta1"]
    a["wrapped_key"], b["wrapped_key"] = b["wrapped_key"], a["wrapped_key"]
    a["key_nonce"], b["key_nonce"] = b["key_nonce"], a["key_nonce"]
    path.write_text(json.dumps(doc))
    with pytest.raises(SellerKeysCorrupt, match="bafkreimeta0 does not authenticate"):
        SellerKeyStore(path, dev_keys[3]).content_key("bafkreimeta0")
    path.write_text("{not json")
    with pytest.raises(SellerKeysCorrupt, match="not a seller key store"):
        SellerKeyStore(path, dev_keys[3])


def test_a_running_reader_sees_new_keys_and_concurrent_writers_lose_nothing(
    tmp_path: Path, dev_keys: list[LocalAccount]
) -> None:
    path = tmp_path / "seller-keys.json"
    reader = SellerKeyStore(path, dev_keys[3])  # the agent, started before any mint
    writers = [SellerKeyStore(path, dev_keys[3]) for _ in range(4)]

    def mint(i: int) -> None:
        for n in range(5):
            writers[i].add(entry(10 * i + n), new_content_key())

    threads = [threading.Thread(target=mint, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reader.refresh() is True
    assert len(reader.entries()) == 20
    assert reader.refresh() is False
