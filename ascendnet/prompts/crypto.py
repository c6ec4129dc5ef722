"""The cryptography of a prompt: content encryption, key delivery, and the buyer's public key.

1. **Content.** The plaintext is encrypted once, under a fresh random 256-bit content key and a
   fresh random 96-bit nonce, with an AEAD (AES-256-GCM by default, ChaCha20-Poly1305 accepted),
   through `cryptography`. The associated data binds the ciphertext to the schema version and the
   content hash the metadata document announces (`associated_data`), so a ciphertext cannot be
   passed off as another prompt's.
2. **Delivery.** The content key is encrypted to one buyer by ECIES over secp256k1 (`eciespy`,
   its default parameters: an uncompressed ephemeral key, HKDF-SHA256, AES-256-GCM with a 16-byte
   nonce), so it is readable on-chain by everyone and decryptable by the buyer alone. ECIES is
   randomised: every delivery is fresh bytes, which the contract's replay guard requires.
3. **The buyer's public key** is recovered from the signature of their `buyLicense` transaction:
   the signing hash is rebuilt from the transaction's fields, the public key recovered from
   (yParity, r, s), and the rebuild is proven exact by re-encoding the signed transaction and
   comparing its hash with the transaction hash. No key registration is needed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import ecies
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from ecies.config import Config as EciesConfig
from eth_account._utils.legacy_transactions import (
    encode_transaction,
    serializable_unsigned_transaction_from_dict,
)
from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError as EthValidationError
from web3 import Web3
from web3.exceptions import TransactionNotFound

from ascendnet.prompt_metadata import SCHEMA_VERSION
from ascendnet.prompts.errors import (
    BuyerKeyUnavailable,
    DecryptionFailed,
    PurchaseNotFound,
    UnsupportedCipher,
)

Algorithm = Literal["AES-256-GCM", "ChaCha20-Poly1305"]
DEFAULT_ALGORITHM: Algorithm = "AES-256-GCM"
KEY_BYTES = 32
NONCE_BYTES = 12
#: ECIES parameters, pinned here rather than read from eciespy's mutable global default, so
#: a delivery made today decrypts with any eciespy/eciesjs using the same (default) settings.
ECIES = EciesConfig(
    elliptic_curve="secp256k1",
    is_ephemeral_key_compressed=False,
    is_hkdf_key_compressed=False,
    symmetric_algorithm="aes-256-gcm",
    symmetric_nonce_length=16,
)
#: 65-byte ephemeral key + 16-byte nonce + 16-byte tag + the 32-byte content key.
WRAPPED_KEY_BYTES = 65 + 16 + 16 + KEY_BYTES

__all__ = [
    "DEFAULT_ALGORITHM",
    "ECIES",
    "KEY_BYTES",
    "NONCE_BYTES",
    "WRAPPED_KEY_BYTES",
    "Algorithm",
    "RecoveredSigner",
    "SealedContent",
    "associated_data",
    "buyer_public_key",
    "new_content_key",
    "open_content",
    "recover_signer",
    "seal_content",
    "unwrap_key",
    "wrap_key",
]


# ================================================================ content


@dataclass(frozen=True)
class SealedContent:
    """One prompt's encrypted content and what a reader needs besides the key."""

    ciphertext: bytes
    nonce: bytes
    algorithm: Algorithm
    #: 0x-prefixed sha256 of the plaintext: the metadata's `content_hash` and the on-chain one.
    content_hash: str


def new_content_key() -> bytes:
    """A fresh random 256-bit content key (one per prompt)."""
    return os.urandom(KEY_BYTES)


def associated_data(content_hash: str) -> bytes:
    """The AEAD associated data of a prompt's ciphertext: the schema version and the content hash
    (0x-prefixed lowercase hex), so the ciphertext authenticates only as that prompt's content."""
    return f"{SCHEMA_VERSION}|{content_hash.lower()}".encode()


def _aead(algorithm: str, key: bytes) -> AESGCM | ChaCha20Poly1305:
    if len(key) != KEY_BYTES:
        raise DecryptionFailed("prompt content", f"a content key is {KEY_BYTES} bytes, not {len(key)}")
    if algorithm == "AES-256-GCM":
        return AESGCM(key)
    if algorithm == "ChaCha20-Poly1305":
        return ChaCha20Poly1305(key)
    raise UnsupportedCipher(algorithm)


def seal_content(plaintext: bytes, key: bytes, *, algorithm: Algorithm = DEFAULT_ALGORITHM) -> SealedContent:
    """Encrypt `plaintext` under `key` with a fresh random nonce. The ciphertext carries the
    16-byte tag at its end, as `cryptography` returns it."""
    content_hash = "0x" + hashlib.sha256(plaintext).hexdigest()
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = _aead(algorithm, key).encrypt(nonce, plaintext, associated_data(content_hash))
    return SealedContent(ciphertext=ciphertext, nonce=nonce, algorithm=algorithm, content_hash=content_hash)


def open_content(ciphertext: bytes, key: bytes, *, nonce: bytes, algorithm: str, content_hash: str) -> bytes:
    """Decrypt and authenticate a prompt's ciphertext. Raises DecryptionFailed when the key is
    wrong, the bytes were altered, or they were sealed for another content hash.

    NOTE: authentication proves only that the holder of `key` sealed these bytes for
    `content_hash`; the caller must still check that the plaintext hashes to it.
    """
    if len(nonce) != NONCE_BYTES:
        raise DecryptionFailed("prompt content", f"the nonce is {len(nonce)} bytes, not {NONCE_BYTES}")
    try:
        return _aead(algorithm, key).decrypt(nonce, ciphertext, associated_data(content_hash))
    except InvalidTag:
        raise DecryptionFailed(
            "prompt content", "the key is wrong, or the ciphertext was altered or belongs to another prompt"
        ) from None


# ================================================================ key delivery (ECIES)


def _uncompressed(public_key: bytes) -> bytes:
    if len(public_key) == 64:  # Ethereum's form: x || y
        return b"\x04" + public_key
    if len(public_key) in (33, 65):
        return public_key
    raise ValueError(f"a secp256k1 public key is 33, 64 or 65 bytes, not {len(public_key)}")


def wrap_key(content_key: bytes, public_key: bytes) -> bytes:
    """The content key encrypted to `public_key` (64-byte Ethereum form, or SEC1 33/65 bytes)."""
    if len(content_key) != KEY_BYTES:
        raise ValueError(f"a content key is {KEY_BYTES} bytes, not {len(content_key)}")
    return ecies.encrypt(_uncompressed(public_key), content_key, config=ECIES)


def unwrap_key(wrapped: bytes, private_key: bytes) -> bytes:
    """The content key inside `wrapped`, decrypted with `private_key`. Raises DecryptionFailed
    when it was encrypted to another key, altered, or does not hold a 32-byte key."""
    try:
        key = ecies.decrypt(bytes(private_key), bytes(wrapped), config=ECIES)
    except (ValueError, TypeError, IndexError) as exc:
        raise DecryptionFailed(
            "delivered key",
            f"it was not encrypted to this account's public key, or it was altered ({type(exc).__name__})",
        ) from None
    if len(key) != KEY_BYTES:
        raise DecryptionFailed(
            "delivered key", f"it holds {len(key)} bytes, not a {KEY_BYTES}-byte content key"
        )
    return key


# ================================================================ the buyer's public key


@dataclass(frozen=True)
class RecoveredSigner:
    address: str
    #: The uncompressed public key without its 0x04 prefix (64 bytes), as Ethereum writes it.
    public_key: bytes


def _int(value: Any) -> int:
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(value, "big")
    if isinstance(value, str):
        return int(value, 16)
    return int(value)


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def _access_list(tx: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "address": to_checksum_address(entry["address"]),
            "storageKeys": ["0x" + _bytes(k).hex() for k in entry.get("storageKeys", [])],
        }
        for entry in tx.get("accessList") or []
    ]


def _unsigned_fields(tx: Mapping[str, Any]) -> tuple[dict[str, Any], int, int]:
    """The unsigned transaction dict, the y parity for recovery and the `v` for re-encoding."""
    tx_type = _int(tx.get("type", 0))
    to = tx.get("to")
    common: dict[str, Any] = {
        "nonce": _int(tx["nonce"]),
        "gas": _int(tx["gas"]),
        "to": to_checksum_address(to) if to else b"",
        "value": _int(tx["value"]),
        "data": _bytes(tx.get("input", tx.get("data", b""))),
    }
    if tx_type == 2:
        parity = _int(tx["yParity"] if "yParity" in tx else tx["v"])
        fields = {
            **common,
            "type": 2,
            "chainId": _int(tx["chainId"]),
            "maxPriorityFeePerGas": _int(tx["maxPriorityFeePerGas"]),
            "maxFeePerGas": _int(tx["maxFeePerGas"]),
            "accessList": _access_list(tx),
        }
        return fields, parity, parity
    if tx_type == 1:
        parity = _int(tx["yParity"] if "yParity" in tx else tx["v"])
        fields = {
            **common,
            "type": 1,
            "chainId": _int(tx["chainId"]),
            "gasPrice": _int(tx["gasPrice"]),
            "accessList": _access_list(tx),
        }
        return fields, parity, parity
    if tx_type == 0:
        v = _int(tx["v"])
        fields = {**common, "gasPrice": _int(tx["gasPrice"])}
        if v in (27, 28):  # pre-EIP-155: no chain id in the signing hash
            return fields, v - 27, v
        chain_id = (v - 35) // 2
        return {**fields, "chainId": chain_id}, v - 35 - 2 * chain_id, v
    raise ValueError(f"transaction type {tx_type} is not supported (only 0, 1 and 2)")


def recover_signer(tx: Mapping[str, Any]) -> RecoveredSigner:
    """The public key that signed `tx` (a transaction as `eth_getTransactionByHash` returns it).

    The signing hash is rebuilt from the fields; the signed transaction is then re-encoded and
    its hash compared with `tx["hash"]`, so a field rebuilt wrongly can never yield a wrong key.
    Raises BuyerKeyUnavailable naming the transaction.
    """
    tx_hash = "0x" + _bytes(tx.get("hash", b"")).hex()
    sender = str(tx.get("from", "?"))
    try:
        fields, parity, v = _unsigned_fields(tx)
        unsigned = serializable_unsigned_transaction_from_dict(fields)
        r, s = _int(tx["r"]), _int(tx["s"])
        encoded = encode_transaction(unsigned, (v, r, s))
        public_key = Signature(vrs=(parity, r, s)).recover_public_key_from_msg_hash(unsigned.hash())
    except (KeyError, ValueError, TypeError, BadSignature, EthValidationError) as exc:
        raise BuyerKeyUnavailable(tx_hash, sender, f"its signature cannot be read ({exc})") from None
    if "hash" in tx and keccak(encoded) != _bytes(tx["hash"]):
        raise BuyerKeyUnavailable(
            tx_hash, sender, "the transaction rebuilt from its fields does not hash to its hash"
        )
    address = public_key.to_checksum_address()
    if "from" in tx and to_checksum_address(str(tx["from"])) != address:
        raise BuyerKeyUnavailable(tx_hash, sender, f"its signature recovers to {address}, not its sender")
    return RecoveredSigner(address=address, public_key=public_key.to_bytes())


def buyer_public_key(w3: Web3, tx_hash: str, buyer: str) -> bytes:
    """The 64-byte public key of `buyer`, recovered from the purchase transaction `tx_hash`.

    Raises BuyerKeyUnavailable when the transaction is gone or was not signed by `buyer` (a
    purchase made through a contract wallet, whose `msg.sender` signs nothing).
    """
    try:
        tx = w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    except TransactionNotFound:
        # NOTE: only a definite "not found" is final; connection errors propagate, to be retried.
        raise PurchaseNotFound(tx_hash, buyer) from None
    signer = recover_signer(dict(tx))
    if signer.address != to_checksum_address(buyer):
        raise BuyerKeyUnavailable(
            tx_hash, buyer, f"it was signed by {signer.address}, not the buyer (a contract wallet?)"
        )
    return signer.public_key
