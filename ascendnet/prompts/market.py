"""The prompt operations against PromptMarketplace, shared by `ascendnet prompt` and the agent.

Every transaction goes through `chain.tx.TxSender`, which simulates it first: a call that would
revert raises ContractReverted naming the custom error, and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from ascendnet.prompt_metadata import (
    MAX_DOCUMENT_BYTES,
    SCHEMA_VERSION,
    InvalidMetadata,
    PromptMetadata,
    content_hash_of,
    validate_metadata,
)
from ascendnet.prompts.crypto import (
    DEFAULT_ALGORITHM,
    Algorithm,
    new_content_key,
    open_content,
    seal_content,
    unwrap_key,
)
from ascendnet.prompts.errors import (
    DecryptionFailed,
    DeliveredContentMismatch,
    LicenceNotDelivered,
    LicenceNotFound,
    NotLicenceBuyer,
    PromptError,
    WrongKeyDelivered,
)
from ascendnet.prompts.seller_keys import SellerKeyEntry, SellerKeyStore
from ascendnet.storage import ContentStore
from chain import artifacts
from chain import events as ev
from chain.contracts import Protocol
from chain.decoder import LogDecoder, UnknownEvent
from chain.provenance import ChainEvent
from chain.revert import decode_revert
from chain.states import LICENSE_STATES
from chain.tx import SentTx, TxSender

NATIVE = "0x0000000000000000000000000000000000000000"
#: Metadata fields that `mint` fills in; a draft must not carry them.
MINT_FIELDS = ("schema_version", "ciphertext_cid", "content_hash", "cipher", "created_at")
#: Ciphertexts larger than this are refused on read (the metadata document caps itself).
MAX_CIPHERTEXT_BYTES = 16 * 1024 * 1024
MARKET = "PromptMarketplace"


@dataclass(frozen=True)
class OnChainPrompt:
    token_id: int
    creator: str
    royalty_bps: int
    #: 0x-prefixed sha256 of the plaintext.
    content_hash: str
    metadata_cid: str


@dataclass(frozen=True)
class OnChainLicence:
    licence_id: int
    token_id: int
    buyer: str
    seller: str
    asset: str
    price: int
    delivery_deadline: int
    state: str
    rated: bool


@dataclass(frozen=True)
class OnChainListing:
    """A prompt NFT's listing; an unlisted token has the zero seller and price."""

    token_id: int
    seller: str
    asset: str
    price: int

    @property
    def listed(self) -> bool:
        return self.seller != NATIVE


@dataclass(frozen=True)
class Minted:
    token_id: int
    metadata_cid: str
    ciphertext_cid: str
    content_hash: str
    mint_tx: str
    terms_tx: str | None
    metadata: PromptMetadata
    #: The block of the last transaction (the terms', else the mint's).
    block_number: int | None = None


@dataclass(frozen=True)
class Purchase:
    licence_id: int
    token_id: int
    seller: str
    asset: str
    price: int
    delivery_deadline: int
    tx_hash: str
    block_number: int | None = None


@dataclass(frozen=True)
class Decrypted:
    plaintext: bytes
    licence: OnChainLicence
    prompt: OnChainPrompt
    metadata: PromptMetadata
    #: The transaction whose KeyDelivered event carried the key.
    delivery_tx: str


# ================================================================ reading the chain


def _call(fn: Any) -> Any:
    try:
        return fn.call()
    except ContractLogicError as exc:
        data = exc.data if isinstance(exc.data, str) else None
        raise decode_revert(data, contract=MARKET, function=fn.fn_name) from exc


def read_prompt(market: Contract, token_id: int) -> OnChainPrompt:
    """The prompt's on-chain record; raises ContractReverted (PromptNotFound) for an unknown token."""
    creator, royalty_bps, content_hash, metadata_cid = _call(market.functions.getPrompt(token_id))
    return OnChainPrompt(
        token_id=token_id,
        creator=to_checksum_address(creator),
        royalty_bps=int(royalty_bps),
        content_hash="0x" + bytes(content_hash).hex(),
        metadata_cid=str(metadata_cid),
    )


def read_licence(market: Contract, licence_id: int) -> OnChainLicence:
    """The licence's on-chain record; `state` is "None" for an unknown licence."""
    token_id, buyer, seller, asset, price, deadline, state, rated = _call(
        market.functions.getLicense(licence_id)
    )
    return OnChainLicence(
        licence_id=licence_id,
        token_id=int(token_id),
        buyer=to_checksum_address(buyer),
        seller=to_checksum_address(seller),
        asset=to_checksum_address(asset),
        price=int(price),
        delivery_deadline=int(deadline),
        state=LICENSE_STATES[int(state)],
        rated=bool(rated),
    )


def find_event(protocol: Protocol, event: type[ChainEvent], licence_id: int) -> list[ChainEvent]:
    """The PromptMarketplace `event`s (first indexed argument = `licence_id`), oldest first."""
    d = protocol.deployment
    decoder = LogDecoder({MARKET: protocol.market.address}, d.chain_id)
    logs = protocol.w3.eth.get_logs(
        {
            "fromBlock": d.deploy_block,
            "toBlock": "latest",
            "address": protocol.market.address,
            "topics": [
                "0x" + keccak(text=event.SIGNATURE).hex(),
                "0x" + licence_id.to_bytes(32, "big").hex(),
            ],
        }
    )
    return sorted(decoder.decode_all(logs), key=lambda e: (e.block_number, e.log_index))


def _events_in(protocol: Protocol, receipt: TxReceipt) -> list[ChainEvent]:
    decoder = LogDecoder({MARKET: protocol.market.address}, protocol.deployment.chain_id)
    found: list[ChainEvent] = []
    for log in receipt["logs"]:
        try:
            found.append(decoder.decode(log))
        except UnknownEvent:
            continue  # an ERC-20's Transfer, for example
    return found


# ================================================================ the operations


class PromptMarket:
    """Prompt operations for one account: `sender` signs, `store` holds content and metadata,
    `seller_keys` (needed to mint) keeps the content keys."""

    def __init__(
        self,
        protocol: Protocol,
        sender: TxSender,
        store: ContentStore,
        seller_keys: SellerKeyStore | None = None,
    ) -> None:
        self.protocol = protocol
        self.market = protocol.market
        self.w3: Web3 = protocol.w3
        self.sender = sender
        self.store = store
        self.seller_keys = seller_keys

    @property
    def me(self) -> str:
        return self.sender.address

    # ---------------------------------------------------------------- seller

    def mint(
        self,
        plaintext: bytes,
        draft: Mapping[str, Any],
        *,
        royalty_bps: int = 0,
        licence_price: int | None = None,
        asset: str = NATIVE,
        algorithm: Algorithm = DEFAULT_ALGORITHM,
    ) -> Minted:
        """Encrypt `plaintext` under a fresh content key, store the ciphertext and the metadata
        document (`draft` plus the fields mint fills in, validated), record the key in the seller
        key store, then mint; with `licence_price`, also offer licences at that price."""
        if self.seller_keys is None:
            raise PromptError("minting needs a seller key store to keep the content key in")
        if not plaintext:
            raise PromptError("the prompt text is empty")
        given = [f for f in MINT_FIELDS if f in draft]
        if given:
            raise InvalidMetadata(
                [(f, "filled in by `prompt mint`; remove it from the draft") for f in given]
            )
        key = new_content_key()
        sealed = seal_content(plaintext, key, algorithm=algorithm)
        ciphertext_cid = self.store.put(sealed.ciphertext)
        created_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        doc = {
            **draft,
            "schema_version": SCHEMA_VERSION,
            "ciphertext_cid": ciphertext_cid,
            "content_hash": sealed.content_hash,
            "cipher": {"algorithm": sealed.algorithm, "nonce": "0x" + sealed.nonce.hex()},
            "created_at": created_at,
        }
        metadata = validate_metadata(doc)
        metadata_cid = self.store.put(metadata.canonical_json())
        # NOTE: the key is durable before the mint transaction exists, so no crash can leave a
        # minted prompt whose key is lost.
        self.seller_keys.add(
            SellerKeyEntry(
                metadata_cid=metadata_cid,
                content_hash=sealed.content_hash,
                ciphertext_cid=ciphertext_cid,
                algorithm=sealed.algorithm,
                nonce="0x" + sealed.nonce.hex(),
                created_at=created_at,
            ),
            key,
        )
        sent = self.sender.transact(
            self.market.functions.mint(metadata_cid, bytes.fromhex(sealed.content_hash[2:]), royalty_bps)
        )
        (minted,) = [e for e in _events_in(self.protocol, sent.receipt) if isinstance(e, ev.PromptMinted)]
        token_id = minted.token_id
        self.seller_keys.set_token(
            metadata_cid,
            chain_id=self.protocol.deployment.chain_id,
            market=self.market.address,
            token_id=token_id,
        )
        terms_tx, block = None, sent.block_number
        if licence_price:
            terms = self.set_licence_terms(token_id, licence_price, asset)
            terms_tx, block = terms.tx_hash, terms.block_number
        return Minted(
            token_id=token_id,
            metadata_cid=metadata_cid,
            ciphertext_cid=ciphertext_cid,
            content_hash=sealed.content_hash,
            mint_tx=sent.tx_hash,
            terms_tx=terms_tx,
            metadata=metadata,
            block_number=block,
        )

    def set_licence_terms(self, token_id: int, price: int, asset: str = NATIVE) -> SentTx:
        """Offer licences at `price` in `asset` (a price of 0 stops offering)."""
        return self.sender.transact(
            self.market.functions.setLicenseTerms(token_id, to_checksum_address(asset), price)
        )

    def list_for_sale(self, token_id: int, price: int, asset: str = NATIVE) -> SentTx:
        """List the prompt NFT for sale at `price` in `asset` (replacing any listing of it)."""
        return self.sender.transact(self.market.functions.list(token_id, to_checksum_address(asset), price))

    def cancel_listing(self, token_id: int) -> SentTx:
        return self.sender.transact(self.market.functions.cancelListing(token_id))

    # ---------------------------------------------------------------- buyer

    def listing(self, token_id: int) -> OnChainListing:
        seller, asset, price = _call(self.market.functions.getListing(token_id))
        return OnChainListing(token_id, to_checksum_address(seller), to_checksum_address(asset), int(price))

    def owner_of(self, token_id: int) -> str:
        return to_checksum_address(_call(self.market.functions.ownerOf(token_id)))

    def buy(self, token_id: int, max_price: int | None = None) -> SentTx:
        """Buy the listed prompt NFT at its listed price, or refuse when that is above
        `max_price`. An ERC-20 price is approved first. An unlisted token is sent to the
        contract's check, which refuses it (NotListed) before anything is sent."""
        listing = self.listing(token_id)
        if listing.listed and max_price is not None and listing.price > max_price:
            raise PromptError(
                f"prompt {token_id} is listed at {listing.price}, above your --max-price {max_price}; "
                "nothing was sent"
            )
        if listing.listed and listing.asset != NATIVE and listing.seller != self.me:
            self._approve(listing.asset, listing.price)
        value = listing.price if listing.asset == NATIVE else 0
        return self.sender.transact(self.market.functions.buy(token_id, listing.price), value=value)

    def _approve(self, asset: str, amount: int) -> None:
        token = self.w3.eth.contract(
            address=Web3.to_checksum_address(asset), abi=artifacts.load("TestToken").abi
        )
        self.sender.transact(token.functions.approve(self.market.address, amount))

    def licence_terms(self, token_id: int) -> tuple[str, int]:
        asset, price = _call(self.market.functions.getLicenseTerms(token_id))
        return to_checksum_address(asset), int(price)

    def buy_licence(self, token_id: int, expected_price: int | None = None) -> Purchase:
        """Buy a licence at the current terms, or refuse (PriceMismatch) when they differ from
        `expected_price`. An ERC-20 price is approved first."""
        asset, price = self.licence_terms(token_id)
        expected = price if expected_price is None else expected_price
        if asset != NATIVE:
            self._approve(asset, expected)
        value = expected if asset == NATIVE else 0
        sent = self.sender.transact(self.market.functions.buyLicense(token_id, expected), value=value)
        (bought,) = [e for e in _events_in(self.protocol, sent.receipt) if isinstance(e, ev.LicensePurchased)]
        return Purchase(
            licence_id=bought.license_id,
            token_id=bought.token_id,
            seller=bought.seller,
            asset=bought.asset,
            price=bought.price,
            delivery_deadline=bought.delivery_deadline,
            tx_hash=sent.tx_hash,
            block_number=sent.block_number,
        )

    def licence(self, licence_id: int) -> OnChainLicence:
        lic = read_licence(self.market, licence_id)
        if lic.state == "None":
            raise LicenceNotFound(licence_id)
        return lic

    def decrypt(self, licence_id: int) -> Decrypted:
        """The prompt text of a delivered licence, decrypted with this account's key and checked
        against the prompt's on-chain contentHash. A bad delivery raises a BadDelivery naming the
        licence and the delivering transaction."""
        lic = self.licence(licence_id)
        if lic.buyer != self.me:
            raise NotLicenceBuyer(licence_id, lic.buyer, self.me)
        if lic.state != "Delivered":
            raise LicenceNotDelivered(licence_id, lic.state, lic.delivery_deadline)
        delivered = [
            e
            for e in find_event(self.protocol, ev.KeyDelivered, licence_id)
            if isinstance(e, ev.KeyDelivered)
        ]
        if not delivered:
            raise PromptError(f"licence {licence_id} is Delivered but no KeyDelivered event was found for it")
        delivery = delivered[-1]
        prompt = read_prompt(self.market, lic.token_id)

        def bad(reason: str) -> WrongKeyDelivered:
            return WrongKeyDelivered(licence_id, lic.token_id, delivery.tx_hash, reason)

        try:
            key = unwrap_key(delivery.encrypted_key, bytes(self.sender.account.key))
        except DecryptionFailed as exc:
            raise bad(f"the delivered key does not decrypt with {self.me}'s key: {exc.reason}") from None
        metadata = validate_metadata(self.store.get(prompt.metadata_cid, max_bytes=MAX_DOCUMENT_BYTES))
        metadata.require_content_hash(prompt.content_hash)
        ciphertext = self.store.get(metadata.ciphertext_cid, max_bytes=MAX_CIPHERTEXT_BYTES)
        try:
            plaintext = open_content(
                ciphertext,
                key,
                nonce=bytes.fromhex(metadata.cipher.nonce[2:]),
                algorithm=metadata.cipher.algorithm,
                content_hash=prompt.content_hash,
            )
        except DecryptionFailed:
            raise bad("the delivered content key does not decrypt the prompt's ciphertext") from None
        actual = content_hash_of(plaintext)
        if actual != prompt.content_hash:
            raise DeliveredContentMismatch(
                licence_id, lic.token_id, delivery.tx_hash, expected=prompt.content_hash, actual=actual
            )
        return Decrypted(plaintext, lic, prompt, metadata, delivery.tx_hash)

    def refund(self, licence_id: int) -> SentTx:
        """Refund an undelivered licence after its deadline (anyone may): the whole price is
        credited to the buyer, with no fee."""
        return self.sender.transact(self.market.functions.refundLicense(licence_id))

    def rate(self, licence_id: int, score: int, review_cid: str = "") -> SentTx:
        return self.sender.transact(self.market.functions.rate(licence_id, score, review_cid))

    def owed(self, asset: str = NATIVE, account: str | None = None) -> int:
        return int(_call(self.market.functions.owed(account or self.me, to_checksum_address(asset))))
