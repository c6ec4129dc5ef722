"""A whole licence sale through ape on anvil: mint, set licence terms, buy (escrowed), deliver
the encrypted key (seller paid minus 3%), rate; plus the refund path and an NFT sale."""

import hashlib

import ape
import pytest

from tests.ape.conftest import PARAMS

NATIVE = "0x0000000000000000000000000000000000000000"
CONTENT_HASH = hashlib.sha256(b"You are a helpful assistant that ...").digest()
LICENSE_PRICE = 2 * 10**17


@pytest.fixture(scope="module")
def creator(accounts):
    return accounts[3]


@pytest.fixture(scope="module")
def buyer(accounts):
    return accounts[4]


@pytest.fixture(scope="module")
def token_id(market, creator):
    tx = market.mint("bafkrei-metadata", CONTENT_HASH, 500, sender=creator)
    (minted,) = tx.decode_logs(market.PromptMinted)
    market.setLicenseTerms(minted.tokenId, NATIVE, LICENSE_PRICE, sender=creator)
    return minted.tokenId


def test_whole_license_sale(market, creator, buyer, token_id, treasury):
    assert market.tokenURI(token_id) == "ipfs://bafkrei-metadata"
    tx = market.buyLicense(token_id, LICENSE_PRICE, sender=buyer, value=LICENSE_PRICE)
    (bought,) = tx.decode_logs(market.LicensePurchased)
    assert bought.seller == creator.address
    assert market.totalEscrowed(NATIVE) >= LICENSE_PRICE

    encrypted_key = b"\x04" + b"k" * 96
    tx = market.deliverKey(bought.licenseId, encrypted_key, sender=creator)
    (delivered,) = tx.decode_logs(market.KeyDelivered)
    fee = -(-LICENSE_PRICE * 300 // 10_000)
    assert delivered.encryptedKey == encrypted_key
    assert delivered.fee == fee
    assert market.owed(creator, NATIVE) == LICENSE_PRICE - fee

    # The same ciphertext can never be replayed for another licence.
    tx = market.buyLicense(token_id, LICENSE_PRICE, sender=buyer, value=LICENSE_PRICE)
    (second,) = tx.decode_logs(market.LicensePurchased)
    with ape.reverts(market.DeliveryReplayed):
        market.deliverKey(second.licenseId, encrypted_key, sender=creator)

    market.rate(bought.licenseId, 5, "bafkrei-review", sender=buyer)
    with ape.reverts(market.AlreadyRated):
        market.rate(bought.licenseId, 4, "bafkrei-review", sender=buyer)
    assert market.balance == market.totalEscrowed(NATIVE) + market.totalOwed(NATIVE)


def test_undelivered_license_is_refunded_in_full(market, creator, buyer, token_id, chain, accounts):
    tx = market.buyLicense(token_id, LICENSE_PRICE, sender=buyer, value=LICENSE_PRICE)
    (bought,) = tx.decode_logs(market.LicensePurchased)
    with ape.reverts(market.DeliveryDeadlineNotReached):
        market.refundLicense(bought.licenseId, sender=buyer)
    owed_before = market.owed(buyer, NATIVE)
    chain.pending_timestamp += PARAMS.delivery_window + 1
    market.refundLicense(bought.licenseId, sender=accounts[8])
    assert market.owed(buyer, NATIVE) == owed_before + LICENSE_PRICE  # no fee on refunds
    with ape.reverts(market.WrongLicenseState):
        market.deliverKey(bought.licenseId, b"late", sender=creator)


def test_nft_sale_pays_royalty_to_creator(market, creator, buyer, token_id, accounts):
    market.list(token_id, NATIVE, 10**18, sender=creator)
    tx = market.buy(token_id, 10**18, sender=buyer, value=10**18)
    (sold,) = tx.decode_logs(market.PromptSold)
    assert market.ownerOf(token_id) == buyer.address
    assert sold.royalty == 10**18 * 500 // 10_000
    assert sold.sellerProceeds + sold.royalty + sold.fee == 10**18
    # Resale by the buyer: the creator still gets the royalty.
    market.list(token_id, NATIVE, 10**18, sender=buyer)
    owed_before = market.owed(creator, NATIVE)
    market.buy(token_id, 10**18, sender=accounts[5], value=10**18)
    assert market.owed(creator, NATIVE) == owed_before + sold.royalty
