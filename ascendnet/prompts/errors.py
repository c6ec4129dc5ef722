"""Errors of the prompt content layer. `PromptError` is the root; leaves carry fields.

The `BadDelivery` leaves are the buyer's evidence: each names the licence and the transaction
that delivered the key, so a refund request or a dispute can point at them.
"""

from __future__ import annotations

from ascendnet.errors import AscendNetError


class PromptError(AscendNetError):
    """Anything the prompt commands refuse or cannot do."""


# --- crypto (ascendnet/prompts/crypto.py) ---


class DecryptionFailed(PromptError, ValueError):
    """An AEAD or ECIES ciphertext did not authenticate: the wrong key, or tampered bytes."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"cannot decrypt the {what}: {reason}")


class UnsupportedCipher(PromptError, ValueError):
    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        super().__init__(
            f"cipher {algorithm!r} is not supported; use AES-256-GCM or ChaCha20-Poly1305 "
            "(see docs/PROMPT_SCHEMA.md)"
        )


class BuyerKeyUnavailable(PromptError):
    """The buyer's public key cannot be recovered from their purchase transaction (for example
    it was sent through a contract wallet, so its signer is not the buyer)."""

    def __init__(self, tx_hash: str, buyer: str, reason: str) -> None:
        self.tx_hash = tx_hash
        self.buyer = buyer
        self.reason = reason
        super().__init__(
            f"cannot recover the public key of buyer {buyer} from transaction {tx_hash}: {reason}. "
            "The key cannot be encrypted to them; after the delivery deadline anyone can refund the "
            "licence (`ascendnet prompt refund`)."
        )


class PurchaseNotFound(BuyerKeyUnavailable):
    """The node does not return the purchase transaction (yet: a lagging node, or a reorg)."""

    def __init__(self, tx_hash: str, buyer: str) -> None:
        super().__init__(tx_hash, buyer, "the node does not know it")


# --- the seller key store (ascendnet/prompts/seller_keys.py) ---


class SellerKeysError(PromptError):
    """The seller key store cannot be read, decrypted or written."""


class SellerKeysWrongAccount(SellerKeysError, PermissionError):
    def __init__(self, path: str, owner: str, account: str) -> None:
        self.path = path
        self.owner = owner
        self.account = account
        super().__init__(
            f"the seller key store {path} belongs to {owner}, not {account}. Sign with {owner}'s "
            "keystore, or point --seller-keys / ASCENDNET_SELLER_KEYS at this account's store."
        )


class SellerKeysCorrupt(SellerKeysError, ValueError):
    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"the seller key store {path} is unreadable: {reason}")


# --- the licence operations (ascendnet/prompts/market.py) ---


class LicenceNotFound(PromptError, LookupError):
    def __init__(self, licence_id: int) -> None:
        self.licence_id = licence_id
        super().__init__(f"licence {licence_id} does not exist on this deployment")


class NotLicenceBuyer(PromptError, PermissionError):
    def __init__(self, licence_id: int, buyer: str, account: str) -> None:
        self.licence_id = licence_id
        self.buyer = buyer
        self.account = account
        super().__init__(
            f"licence {licence_id} was bought by {buyer}, not {account}: only the buyer's key "
            "decrypts its content key. Pass the buyer's --keystore."
        )


class LicenceNotDelivered(PromptError):
    def __init__(self, licence_id: int, state: str, deadline: int) -> None:
        self.licence_id = licence_id
        self.state = state
        self.deadline = deadline
        hint = (
            f"the seller has until {deadline} (unix time) to deliver; after that, "
            f"`ascendnet prompt refund {licence_id}` returns the whole price"
            if state == "Pending"
            else "the payment was returned, so there is nothing to decrypt"
        )
        super().__init__(f"licence {licence_id} is {state}, not Delivered: {hint}")


class BadDelivery(PromptError, ValueError):
    """The key delivered for a licence does not give the prompt: the buyer's evidence."""

    def __init__(self, licence_id: int, token_id: int, tx_hash: str, reason: str) -> None:
        self.licence_id = licence_id
        self.token_id = token_id
        self.tx_hash = tx_hash
        self.reason = reason
        super().__init__(
            f"licence {licence_id} (prompt {token_id}): {reason}. The key was delivered in transaction "
            f"{tx_hash}; keep this as evidence for a dispute with the seller."
        )


class WrongKeyDelivered(BadDelivery):
    """The delivered bytes do not decrypt with the buyer's key, or the key they hold does not
    decrypt the prompt's ciphertext."""


class DeliveredContentMismatch(BadDelivery):
    """The delivered key decrypts the ciphertext, but to content whose sha256 is not the
    prompt's on-chain contentHash."""

    def __init__(self, licence_id: int, token_id: int, tx_hash: str, *, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            licence_id,
            token_id,
            tx_hash,
            f"the decrypted content has sha256 {actual}, but the prompt's on-chain contentHash is {expected}",
        )
