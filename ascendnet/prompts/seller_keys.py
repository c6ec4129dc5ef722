"""The seller's content keys, encrypted at rest.

`ascendnet prompt mint` records each prompt's content key here before the mint transaction (so a
crash after minting never loses a key), and the seller's agent reads it to deliver licences.

The file is JSON (mode 0600) and never holds a key in the clear. Each content key is encrypted
with AES-256-GCM under a key-encryption key derived by HKDF-SHA256 from the seller account's
private key (a random salt per file, the account address in the info string), with the entry's
metadata CID and content hash as associated data, so entries cannot be swapped or edited
unnoticed. Whoever can read the store therefore needs the account key as well, which the
encrypted keystore (and its password) already protects: the store is exactly as safe as the
keystore, and the agent that holds the unlocked account needs no second secret.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, ValidationError

from ascendnet.prompts.crypto import KEY_BYTES, NONCE_BYTES
from ascendnet.prompts.errors import SellerKeysCorrupt, SellerKeysWrongAccount
from ascendnet.storage.base import write_atomically

FORMAT = "ascendnet.seller-keys/v1"
#: Shared by `ascendnet prompt` and `ascendnet agent run`; ASCENDNET_SELLER_KEYS overrides both.
DEFAULT_PATH = Path(".data/seller-keys.json")


@dataclass(frozen=True)
class SellerKeyEntry:
    """What the store records about one prompt, besides its (encrypted) content key."""

    metadata_cid: str
    content_hash: str
    ciphertext_cid: str
    algorithm: str
    #: 0x-hex nonce of the content encryption (also in the metadata document).
    nonce: str
    created_at: str
    #: Filled in once the mint transaction is mined.
    chain_id: int | None = None
    market: str | None = None
    token_id: int | None = None


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metadata_cid: str
    content_hash: str
    ciphertext_cid: str
    algorithm: str
    nonce: str
    created_at: str
    chain_id: int | None = None
    market: str | None = None
    token_id: int | None = None
    key_nonce: str
    wrapped_key: str


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str
    account: str
    kdf: str = "HKDF-SHA256"
    salt: str
    entries: dict[str, _Entry] = {}


class SellerKeyStore:
    """The content keys of one seller account, in one encrypted JSON file."""

    def __init__(self, path: Path, account: LocalAccount) -> None:
        self.path = Path(path)
        self.account = account
        self._file: _File | None = None
        self._keks: dict[str, bytes] = {}
        self._stamp: tuple[int, int, int] | None = None
        self.refresh()

    # ---------------------------------------------------------------- reading

    @property
    def owner(self) -> str:
        return str(self.account.address)

    def exists(self) -> bool:
        return self.path.exists()

    def refresh(self) -> bool:
        """Re-read the file if another process (a `prompt mint`) changed it. Returns whether it did."""
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return False
        self._file = self._load() if stamp is not None else None
        self._stamp = stamp
        return True

    def entries(self) -> list[SellerKeyEntry]:
        if self._file is None:
            return []
        return [_public(e) for e in self._file.entries.values()]

    def entry(self, metadata_cid: str) -> SellerKeyEntry | None:
        e = self._file.entries.get(metadata_cid) if self._file else None
        return _public(e) if e else None

    def content_key(self, metadata_cid: str) -> bytes | None:
        """The decrypted content key of the prompt with this metadata CID, or None."""
        if self._file is None or metadata_cid not in self._file.entries:
            return None
        e = self._file.entries[metadata_cid]
        try:
            key = AESGCM(self._key(self._file)).decrypt(
                bytes.fromhex(e.key_nonce[2:]), bytes.fromhex(e.wrapped_key[2:]), self._ad(e)
            )
        except (InvalidTag, ValueError):
            raise SellerKeysCorrupt(
                str(self.path), f"the key of {metadata_cid} does not authenticate (edited or corrupted)"
            ) from None
        if len(key) != KEY_BYTES:
            raise SellerKeysCorrupt(str(self.path), f"the key of {metadata_cid} is not {KEY_BYTES} bytes")
        return key

    # ---------------------------------------------------------------- writing

    def create(self) -> None:
        """Create an empty store if none exists yet, so an agent started before the first mint
        already watches for licence purchases (`ascendnet dev` does this for its agent)."""
        with self._locked():
            pass

    def add(self, entry: SellerKeyEntry, content_key: bytes) -> None:
        """Record a prompt's content key (durably, before anything is minted with it)."""
        if len(content_key) != KEY_BYTES:
            raise ValueError(f"a content key is {KEY_BYTES} bytes, not {len(content_key)}")
        with self._locked() as doc:
            key_nonce = os.urandom(NONCE_BYTES)
            draft = _Entry(**asdict(entry), key_nonce="0x" + key_nonce.hex(), wrapped_key="0x")
            wrapped = AESGCM(self._key(doc)).encrypt(key_nonce, content_key, self._ad(draft))
            doc.entries[entry.metadata_cid] = draft.model_copy(update={"wrapped_key": "0x" + wrapped.hex()})

    def set_token(self, metadata_cid: str, *, chain_id: int, market: str, token_id: int) -> None:
        """Note which token was minted with an entry's metadata."""
        with self._locked() as doc:
            e = doc.entries.get(metadata_cid)
            if e is None:
                raise SellerKeysCorrupt(str(self.path), f"no entry for {metadata_cid}")
            doc.entries[metadata_cid] = e.model_copy(
                update={"chain_id": chain_id, "market": market, "token_id": token_id}
            )

    # ---------------------------------------------------------------- internals

    @contextmanager
    def _locked(self) -> Iterator[_File]:
        """Read-modify-write under an exclusive lock, so concurrent mints never lose an entry."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                doc = self._load() if self.path.exists() else self._new()
                yield doc
                body = json.dumps(doc.model_dump(), indent=2, sort_keys=True) + "\n"
                # NOTE: write_atomically goes through mkstemp, so the file is created 0600.
                write_atomically(self.path, body.encode())
                self._file, self._stamp = doc, self._current_stamp()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _new(self) -> _File:
        return _File(format=FORMAT, account=self.owner, salt="0x" + os.urandom(32).hex())

    def _load(self) -> _File:
        try:
            doc = _File.model_validate_json(self.path.read_bytes())
        except OSError as exc:
            raise SellerKeysCorrupt(str(self.path), str(exc)) from exc
        except ValidationError as exc:
            raise SellerKeysCorrupt(
                str(self.path), f"not a seller key store ({exc.error_count()} problems)"
            ) from None
        if doc.format != FORMAT or doc.kdf != "HKDF-SHA256":
            raise SellerKeysCorrupt(str(self.path), f"unknown format {doc.format!r} / kdf {doc.kdf!r}")
        if doc.account.lower() != self.owner.lower():
            raise SellerKeysWrongAccount(str(self.path), doc.account, self.owner)
        return doc

    def _key(self, doc: _File) -> bytes:
        """The key-encryption key of a file: HKDF-SHA256 of the account key with the file's salt."""
        if doc.salt not in self._keks:
            hkdf = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=bytes.fromhex(doc.salt[2:]),
                info=f"{FORMAT}|{self.owner.lower()}".encode(),
            )
            self._keks[doc.salt] = hkdf.derive(bytes(self.account.key))
        return self._keks[doc.salt]

    def _ad(self, e: _Entry) -> bytes:
        return f"{FORMAT}|{self.owner.lower()}|{e.metadata_cid}|{e.content_hash}".encode()

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)


def _public(e: _Entry) -> SellerKeyEntry:
    return SellerKeyEntry(**e.model_dump(exclude={"key_nonce", "wrapped_key"}))
