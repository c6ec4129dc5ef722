"""ascendnet/prompts/crypto.py: the content AEAD, ECIES key wrapping, and public-key recovery
from real signed transactions on anvil."""

from __future__ import annotations

import os
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from ascendnet.prompt_metadata import content_hash_of
from ascendnet.prompts.crypto import (
    KEY_BYTES,
    WRAPPED_KEY_BYTES,
    buyer_public_key,
    new_content_key,
    open_content,
    recover_signer,
    seal_content,
    unwrap_key,
    wrap_key,
)
from ascendnet.prompts.errors import BuyerKeyUnavailable, DecryptionFailed, UnsupportedCipher
from chain.tx import TxSender
from tests.prompts.conftest import PROMPT_TEXT


def public_key_of(account: LocalAccount) -> bytes:
    return PrivateKey(bytes(account.key)).public_key.to_bytes()


# ================================================================ content


@pytest.mark.parametrize("algorithm", ["AES-256-GCM", "ChaCha20-Poly1305"])
def test_content_round_trip_is_exact(algorithm: Any) -> None:
    key = new_content_key()
    sealed = seal_content(PROMPT_TEXT, key, algorithm=algorithm)
    assert sealed.content_hash == content_hash_of(PROMPT_TEXT)
    assert len(sealed.nonce) == 12 and len(sealed.ciphertext) == len(PROMPT_TEXT) + 16
    assert PROMPT_TEXT not in sealed.ciphertext
    opened = open_content(
        sealed.ciphertext, key, nonce=sealed.nonce, algorithm=algorithm, content_hash=sealed.content_hash
    )
    assert opened == PROMPT_TEXT


def test_every_seal_draws_a_fresh_key_and_nonce() -> None:
    keys = {new_content_key() for _ in range(50)}
    assert len(keys) == 50 and all(len(k) == KEY_BYTES for k in keys)
    key = new_content_key()
    a, b = seal_content(PROMPT_TEXT, key), seal_content(PROMPT_TEXT, key)
    assert a.nonce != b.nonce and a.ciphertext != b.ciphertext


def test_tampering_wrong_key_and_wrong_binding_are_all_refused() -> None:
    key = new_content_key()
    sealed = seal_content(PROMPT_TEXT, key)
    good = {"nonce": sealed.nonce, "algorithm": sealed.algorithm, "content_hash": sealed.content_hash}
    flipped = bytearray(sealed.ciphertext)
    flipped[3] ^= 0x01
    cases: list[tuple[bytes, bytes, dict[str, Any]]] = [
        (bytes(flipped), key, good),  # one bit of the ciphertext
        (sealed.ciphertext[:-1], key, good),  # a truncated tag
        (sealed.ciphertext, new_content_key(), good),  # another key
        (sealed.ciphertext, key, {**good, "nonce": os.urandom(12)}),  # another nonce
        # The same bytes presented as another prompt's content: the associated data differs.
        (sealed.ciphertext, key, {**good, "content_hash": content_hash_of(b"another prompt")}),
        (sealed.ciphertext, key, {**good, "algorithm": "ChaCha20-Poly1305"}),
    ]
    for ciphertext, k, kwargs in cases:
        with pytest.raises(DecryptionFailed) as info:
            open_content(ciphertext, k, **kwargs)
        assert info.value.what == "prompt content"
        assert isinstance(info.value, ValueError)


def test_unknown_cipher_is_named() -> None:
    with pytest.raises(UnsupportedCipher, match="'DES'"):
        open_content(b"x" * 32, new_content_key(), nonce=os.urandom(12), algorithm="DES", content_hash="0x")


# ================================================================ ECIES key wrapping


def test_wrapped_key_opens_only_with_the_buyer_key(dev_keys: list[LocalAccount]) -> None:
    buyer, other = dev_keys[4], dev_keys[5]
    key = new_content_key()
    wrapped = wrap_key(key, public_key_of(buyer))
    assert len(wrapped) == WRAPPED_KEY_BYTES
    assert key not in wrapped
    assert unwrap_key(wrapped, bytes(buyer.key)) == key
    with pytest.raises(DecryptionFailed, match="not encrypted to this account's public key"):
        unwrap_key(wrapped, bytes(other.key))


def test_every_wrap_is_fresh_bytes(dev_keys: list[LocalAccount]) -> None:
    """The contract refuses the same delivery bytes twice: each encryption must differ."""
    key, pub = new_content_key(), public_key_of(dev_keys[4])
    assert len({wrap_key(key, pub) for _ in range(20)}) == 20
    # The SEC1 forms of the key work too.
    pk = PrivateKey(bytes(dev_keys[4].key)).public_key
    assert unwrap_key(wrap_key(key, pk.to_compressed_bytes()), bytes(dev_keys[4].key)) == key


def test_a_tampered_wrapped_key_is_refused(dev_keys: list[LocalAccount]) -> None:
    buyer = dev_keys[4]
    wrapped = bytearray(wrap_key(new_content_key(), public_key_of(buyer)))
    for position in (1, 70, 90, len(wrapped) - 1):  # ephemeral key, nonce, tag, body
        bad = bytearray(wrapped)
        bad[position] ^= 0x80
        with pytest.raises(DecryptionFailed):
            unwrap_key(bytes(bad), bytes(buyer.key))


def test_a_wrapped_non_key_is_refused(dev_keys: list[LocalAccount]) -> None:
    import ecies

    from ascendnet.prompts.crypto import ECIES

    buyer = dev_keys[4]
    wrapped = ecies.encrypt(b"\x04" + public_key_of(buyer), b"sixteen bytes!!!", config=ECIES)
    with pytest.raises(DecryptionFailed, match="holds 16 bytes"):
        unwrap_key(wrapped, bytes(buyer.key))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_garbage_is_a_clean_decryption_failure(data: bytes) -> None:
    key = Account.from_key(b"\x11" * 32).key
    with pytest.raises(DecryptionFailed):
        unwrap_key(data, bytes(key))


# ================================================================ public-key recovery


def _fees(w3: Web3) -> int:
    return 2 * int(w3.eth.get_block("latest")["baseFeePerGas"]) + 10**9


def _send_raw(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> str:
    tx = {"nonce": w3.eth.get_transaction_count(account.address), "chainId": w3.eth.chain_id, **tx}
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    w3.eth.wait_for_transaction_receipt(tx_hash)
    return "0x" + bytes(tx_hash).hex()


def test_recovers_the_signer_of_a_real_eip1559_contract_call(
    w3: Web3, senders: list[TxSender], dev_keys: list[LocalAccount]
) -> None:
    """A typed (type 2) transaction with calldata, as buyLicense is sent."""
    sender = senders[7]
    token_abi = [
        {
            "type": "function",
            "name": "ping",
            "inputs": [{"name": "x", "type": "uint256"}],
            "outputs": [],
            "stateMutability": "nonpayable",
        }
    ]
    # Any address with no code accepts the call; the point is the calldata and the type.
    target = w3.eth.contract(address=Web3.to_checksum_address("0x" + "42" * 20), abi=token_abi)
    sent = sender.transact(target.functions.ping(7), value=0)
    tx: dict[str, Any] = dict(w3.eth.get_transaction(sent.tx_hash))  # type: ignore[arg-type]
    assert tx["type"] == 2 and len(bytes(tx["input"])) == 36
    signer = recover_signer(tx)
    assert signer.address == dev_keys[7].address
    assert signer.public_key == public_key_of(dev_keys[7])
    assert buyer_public_key(w3, sent.tx_hash, dev_keys[7].address) == public_key_of(dev_keys[7])


@pytest.mark.parametrize("kind", ["legacy-eip155", "access-list"])
def test_recovers_the_signer_of_legacy_and_access_list_transactions(
    w3: Web3, dev_keys: list[LocalAccount], kind: str
) -> None:
    account = dev_keys[7]
    tx: dict[str, Any] = {"to": dev_keys[8].address, "value": 1, "gas": 60_000, "gasPrice": _fees(w3)}
    if kind == "access-list":
        tx |= {"type": 1, "accessList": [{"address": dev_keys[8].address, "storageKeys": ["0x" + "00" * 32]}]}
    tx_hash = _send_raw(w3, account, tx)
    fetched = dict(w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
    assert fetched["type"] == (1 if kind == "access-list" else 0)
    assert recover_signer(fetched).public_key == public_key_of(account)


def test_a_purchase_signed_by_someone_else_is_refused(w3: Web3, senders: list[TxSender]) -> None:
    sent = senders[7].send_value(senders[8].address, 1)
    with pytest.raises(BuyerKeyUnavailable) as info:
        buyer_public_key(w3, sent.tx_hash, senders[8].address)
    assert info.value.tx_hash == sent.tx_hash and info.value.buyer == senders[8].address
    assert "signed by " + senders[7].address in str(info.value)
    assert "refund" in str(info.value)


def test_an_unknown_transaction_is_refused(w3: Web3, senders: list[TxSender]) -> None:
    with pytest.raises(BuyerKeyUnavailable, match="does not know it"):
        buyer_public_key(w3, "0x" + "ab" * 32, senders[7].address)


def test_a_transaction_with_an_altered_field_never_yields_a_key(w3: Web3, senders: list[TxSender]) -> None:
    """Rebuilding the signing hash from wrong fields would recover some other key; the hash
    check refuses it instead of encrypting the content key to a stranger."""
    sent = senders[7].send_value(senders[8].address, 5)
    tx: dict[str, Any] = dict(w3.eth.get_transaction(sent.tx_hash))  # type: ignore[arg-type]
    for field, value in (("value", 6), ("nonce", int(tx["nonce"]) + 1), ("maxFeePerGas", 1)):
        with pytest.raises(BuyerKeyUnavailable):
            recover_signer({**tx, field: value})
    with pytest.raises(BuyerKeyUnavailable, match="transaction type 3 is not supported"):
        recover_signer({**tx, "type": 3})
