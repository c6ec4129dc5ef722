"""The prompt operations in process against a real anvil: mint, deliver (KeyDeliverer driven by
hand), decrypt, and every way a delivery can be bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_keys.datatypes import PrivateKey

from agent.delivery import DeliveryJournal, KeyDeliverer, Phase
from ascendnet.prompt_metadata import InvalidMetadata, content_hash_of, validate_metadata
from ascendnet.prompts.crypto import NONCE_BYTES, associated_data, new_content_key, unwrap_key, wrap_key
from ascendnet.prompts.errors import (
    DecryptionFailed,
    DeliveredContentMismatch,
    LicenceNotDelivered,
    NotLicenceBuyer,
    WrongKeyDelivered,
)
from ascendnet.prompts.market import NATIVE, PromptMarket, find_event, read_licence, read_prompt
from ascendnet.prompts.seller_keys import SellerKeyEntry, SellerKeyStore
from ascendnet.storage import LocalContentStore
from chain import events as ev
from chain.contracts import Protocol
from chain.errors import ContractReverted
from chain.tx import TxSender
from tests.prompts.conftest import PROMPT_TEXT, draft

PRICE = 10**16


@pytest.fixture()
def seller(
    protocol: Protocol, senders: list[TxSender], store: LocalContentStore, tmp_path: Path
) -> PromptMarket:
    keys = SellerKeyStore(tmp_path / "seller-keys.json", senders[3].account)
    return PromptMarket(protocol, senders[3], store, keys)


def buyer(protocol: Protocol, sender: TxSender, store: LocalContentStore) -> PromptMarket:
    return PromptMarket(protocol, sender, store)


@pytest.fixture()
def deliverer(protocol: Protocol, seller: PromptMarket, tmp_path: Path) -> KeyDeliverer:
    assert seller.seller_keys is not None
    return KeyDeliverer(
        protocol=protocol,
        sender=seller.sender,
        keys=seller.seller_keys,
        journal=DeliveryJournal(tmp_path / "deliveries.db"),
        confirmations=0,
    )


def test_mint_stores_only_ciphertext_and_a_valid_document(
    seller: PromptMarket, store: LocalContentStore, protocol: Protocol
) -> None:
    minted = seller.mint(PROMPT_TEXT, draft(), royalty_bps=500, licence_price=PRICE)
    onchain = read_prompt(protocol.market, minted.token_id)
    assert onchain.content_hash == content_hash_of(PROMPT_TEXT) == minted.content_hash
    assert onchain.metadata_cid == minted.metadata_cid and onchain.royalty_bps == 500
    assert seller.licence_terms(minted.token_id) == (NATIVE, PRICE)

    meta = validate_metadata(store.get(minted.metadata_cid))
    meta.require_content_hash(onchain.content_hash)
    assert meta.ciphertext_cid == minted.ciphertext_cid and meta.cipher.algorithm == "AES-256-GCM"
    ciphertext = store.get(minted.ciphertext_cid)
    assert PROMPT_TEXT not in ciphertext and b"You are a poet" not in ciphertext
    for stored in store.root.rglob("*"):  # nothing the store wrote holds the plaintext
        assert not stored.is_file() or b"You are a poet" not in stored.read_bytes()

    assert seller.seller_keys is not None
    kept = seller.seller_keys.entry(minted.metadata_cid)
    assert kept is not None and kept.token_id == minted.token_id
    assert kept.content_hash == minted.content_hash


def test_a_draft_carrying_mint_fields_is_refused(seller: PromptMarket) -> None:
    with pytest.raises(InvalidMetadata) as info:
        seller.mint(PROMPT_TEXT, {**draft(), "content_hash": "0x" + "11" * 32})
    assert info.value.field == "content_hash" and "filled in by `prompt mint`" in str(info.value)
    with pytest.raises(InvalidMetadata) as info:
        seller.mint(PROMPT_TEXT, {**draft(), "title": ""})
    assert info.value.field == "title"


def test_delivery_then_decrypt_gives_the_exact_text(
    protocol: Protocol, seller: PromptMarket, deliverer: KeyDeliverer, senders: list[TxSender],
    store: LocalContentStore,
) -> None:  # fmt: skip
    minted = seller.mint(PROMPT_TEXT, draft(), licence_price=PRICE)
    alice, bob = buyer(protocol, senders[4], store), buyer(protocol, senders[5], store)
    a = alice.buy_licence(minted.token_id)
    b = bob.buy_licence(minted.token_id, expected_price=PRICE)
    with pytest.raises(LicenceNotDelivered, match="after that, `ascendnet prompt refund"):
        alice.decrypt(a.licence_id)

    deliverer.step()
    for lic_id in (a.licence_id, b.licence_id):
        rec = deliverer.journal.get(lic_id)
        assert rec is not None and rec.phase is Phase.DELIVERED and rec.deliver_tx
        assert read_licence(protocol.market, lic_id).state == "Delivered"

    assert alice.decrypt(a.licence_id).plaintext == PROMPT_TEXT
    assert bob.decrypt(b.licence_id).plaintext == PROMPT_TEXT
    # Each buyer got their own encryption of the key, which the other cannot open.
    (ka,) = find_event(protocol, ev.KeyDelivered, a.licence_id)
    (kb,) = find_event(protocol, ev.KeyDelivered, b.licence_id)
    assert isinstance(ka, ev.KeyDelivered) and isinstance(kb, ev.KeyDelivered)
    assert ka.encrypted_key != kb.encrypted_key
    with pytest.raises(DecryptionFailed):
        unwrap_key(kb.encrypted_key, bytes(senders[4].account.key))
    with pytest.raises(NotLicenceBuyer):
        alice.decrypt(b.licence_id)

    # Ratings: once per licence, by its buyer, 1 to 5.
    alice.rate(a.licence_id, 5, "bafkreireview")
    with pytest.raises(ContractReverted) as info:
        alice.rate(a.licence_id, 4)
    assert info.value.error == "AlreadyRated"
    with pytest.raises(ContractReverted) as info:
        bob.rate(b.licence_id, 6)
    assert info.value.error == "InvalidScore"
    # A second pass delivers nothing more.
    deliverer.step()
    assert len(find_event(protocol, ev.KeyDelivered, a.licence_id)) == 1


def test_a_key_encrypted_to_the_wrong_key_is_the_buyers_evidence(
    protocol: Protocol, seller: PromptMarket, senders: list[TxSender], store: LocalContentStore
) -> None:
    minted = seller.mint(PROMPT_TEXT, draft(), licence_price=PRICE)
    alice = buyer(protocol, senders[4], store)
    lic = alice.buy_licence(minted.token_id)
    assert seller.seller_keys is not None
    key = seller.seller_keys.content_key(minted.metadata_cid)
    assert key is not None
    stranger = PrivateKey(b"\x07" * 32).public_key.to_bytes()
    sent = seller.sender.transact(
        protocol.market.functions.deliverKey(lic.licence_id, wrap_key(key, stranger))
    )
    with pytest.raises(WrongKeyDelivered) as info:
        alice.decrypt(lic.licence_id)
    err = info.value
    assert (err.licence_id, err.token_id, err.tx_hash) == (lic.licence_id, minted.token_id, sent.tx_hash)
    assert f"licence {lic.licence_id} (prompt {minted.token_id})" in str(err)
    assert "does not decrypt with " + senders[4].address in str(err) and sent.tx_hash in str(err)


def test_a_wrong_content_key_encrypted_to_the_buyer_is_detected(
    protocol: Protocol, seller: PromptMarket, senders: list[TxSender], store: LocalContentStore
) -> None:
    minted = seller.mint(PROMPT_TEXT, draft(), licence_price=PRICE)
    alice = buyer(protocol, senders[4], store)
    lic = alice.buy_licence(minted.token_id)
    alice_pub = PrivateKey(bytes(senders[4].account.key)).public_key.to_bytes()
    seller.sender.transact(
        protocol.market.functions.deliverKey(lic.licence_id, wrap_key(new_content_key(), alice_pub))
    )
    with pytest.raises(WrongKeyDelivered, match="does not decrypt the prompt's ciphertext"):
        alice.decrypt(lic.licence_id)


def test_content_that_does_not_match_the_onchain_hash_is_detected(
    protocol: Protocol, senders: list[TxSender], store: LocalContentStore, tmp_path: Path
) -> None:
    """A dishonest seller seals other text under the announced hash: the AEAD authenticates
    (the seller holds the key), so only the final sha256 check can catch it."""
    seller = senders[3]
    announced = content_hash_of(PROMPT_TEXT)
    key = new_content_key()
    nonce = b"\x01" * NONCE_BYTES
    ciphertext = AESGCM(key).encrypt(nonce, b"something else entirely", associated_data(announced))
    doc = {
        **draft("Bait and switch"),
        "schema_version": "ascendnet.prompt/v1",
        "ciphertext_cid": store.put(ciphertext),
        "content_hash": announced,
        "cipher": {"algorithm": "AES-256-GCM", "nonce": "0x" + nonce.hex()},
        "created_at": "2025-06-01T12:00:00Z",
    }
    metadata_cid = store.put(validate_metadata(doc).canonical_json())
    m = protocol.market
    seller.transact(m.functions.mint(metadata_cid, bytes.fromhex(announced[2:]), 0))
    token_id = int(m.functions.promptCount().call())
    seller.transact(m.functions.setLicenseTerms(token_id, NATIVE, PRICE))
    alice = buyer(protocol, senders[4], store)
    lic = alice.buy_licence(token_id)
    alice_pub = PrivateKey(bytes(senders[4].account.key)).public_key.to_bytes()
    sent = seller.transact(m.functions.deliverKey(lic.licence_id, wrap_key(key, alice_pub)))
    with pytest.raises(DeliveredContentMismatch) as info:
        alice.decrypt(lic.licence_id)
    assert info.value.expected == announced
    assert info.value.actual == content_hash_of(b"something else entirely")
    assert info.value.tx_hash == sent.tx_hash and f"licence {lic.licence_id}" in str(info.value)


def test_a_delivery_replayed_for_another_licence_is_rejected_on_chain(
    protocol: Protocol, seller: PromptMarket, deliverer: KeyDeliverer, senders: list[TxSender],
    store: LocalContentStore,
) -> None:  # fmt: skip
    minted = seller.mint(PROMPT_TEXT, draft(), licence_price=PRICE)
    alice = buyer(protocol, senders[4], store)
    first = alice.buy_licence(minted.token_id)
    deliverer.step()
    (delivered,) = find_event(protocol, ev.KeyDelivered, first.licence_id)
    assert isinstance(delivered, ev.KeyDelivered)
    # Alice buys again, and the seller tries to pass off the old ciphertext as the new delivery.
    second = alice.buy_licence(minted.token_id)
    with pytest.raises(ContractReverted) as info:
        seller.sender.transact(
            protocol.market.functions.deliverKey(second.licence_id, delivered.encrypted_key)
        )
    assert info.value.error == "DeliveryReplayed"
    assert read_licence(protocol.market, second.licence_id).state == "Pending"


def test_refusals_name_the_custom_error(
    protocol: Protocol, seller: PromptMarket, senders: list[TxSender], store: LocalContentStore
) -> None:
    minted = seller.mint(PROMPT_TEXT, draft())  # no licence terms
    alice = buyer(protocol, senders[4], store)
    with pytest.raises(ContractReverted) as info:
        alice.buy_licence(minted.token_id)
    assert info.value.error == "LicenseNotOffered"
    seller.set_licence_terms(minted.token_id, PRICE)
    with pytest.raises(ContractReverted) as info:
        alice.buy_licence(minted.token_id, expected_price=PRICE - 1)
    assert info.value.error == "PriceMismatch"
    with pytest.raises(ContractReverted) as info:
        seller.buy_licence(minted.token_id)
    assert info.value.error == "SellerCannotBuy"
    lic = alice.buy_licence(minted.token_id)
    with pytest.raises(ContractReverted) as info:
        alice.refund(lic.licence_id)
    assert info.value.error == "DeliveryDeadlineNotReached"
    with pytest.raises(ContractReverted) as info:
        alice.rate(lic.licence_id, 5)
    assert info.value.error == "WrongLicenseState"


def test_a_prompt_whose_key_is_elsewhere_is_skipped_not_failed(
    protocol: Protocol, seller: PromptMarket, deliverer: KeyDeliverer, senders: list[TxSender],
    store: LocalContentStore, tmp_path: Path,
) -> None:  # fmt: skip
    # Minted by the same account from another machine: its key is in another store.
    elsewhere = PromptMarket(
        protocol, seller.sender, store, SellerKeyStore(tmp_path / "other-keys.json", senders[3].account)
    )
    minted = elsewhere.mint(PROMPT_TEXT, draft(), licence_price=PRICE)
    lic = buyer(protocol, senders[4], store).buy_licence(minted.token_id)
    deliverer.step()
    rec = deliverer.journal.get(lic.licence_id)
    assert (
        rec is not None and rec.phase is Phase.SKIPPED and "not in the seller key store" in (rec.reason or "")
    )
    assert read_licence(protocol.market, lic.licence_id).state == "Pending"


def test_the_seller_key_store_entry_survives_a_mint_that_never_happened(seller: PromptMarket) -> None:
    """The key is recorded before the mint transaction: a crash (here: a refused mint) leaves an
    entry without a token, never a token without a key."""
    with pytest.raises(ContractReverted) as info:
        seller.mint(PROMPT_TEXT, draft(), royalty_bps=9_999)
    assert info.value.error == "RoyaltyTooHigh"
    assert seller.seller_keys is not None
    orphans = [e for e in seller.seller_keys.entries() if e.token_id is None]
    assert orphans and isinstance(orphans[-1], SellerKeyEntry)
    assert json.loads(seller.seller_keys.path.read_text())["format"] == "ascendnet.seller-keys/v1"
