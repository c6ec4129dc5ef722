"""Errors of the content store. `StorageError` is the root; leaves carry structured fields."""

from __future__ import annotations

from typing import Literal

from ascendnet.errors import AscendNetError


class StorageError(AscendNetError):
    """Anything that went wrong storing or fetching content."""


class InvalidCid(StorageError, ValueError):
    """A string is not a CID this store understands."""

    def __init__(self, cid: str, reason: str) -> None:
        self.cid = cid
        self.reason = reason
        super().__init__(
            f"{cid!r} is not a usable CID: {reason}. Expected a CIDv0 ('Qm...') or a CIDv1 in "
            "lowercase base32 ('b...'), as `ipfs add` prints them."
        )


class ContentNotFound(StorageError, LookupError):
    """The store does not hold the content, or could not retrieve it in time."""

    def __init__(self, cid: str, where: str, detail: str = "") -> None:
        self.cid = cid
        self.where = where
        self.detail = detail
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"content {cid} is not in {where}{extra}. Check the CID, or put the content "
            "(or pin it on the IPFS node) first."
        )


class ContentMismatch(StorageError, ValueError):
    """Bytes read back do not match what they were addressed or anchored by.

    `kind` is ``"cid"`` when the bytes do not hash to their CID (corruption, a lying node) and
    ``"sha256"`` when they do, but differ from the expected sha256 (for example the on-chain
    hash). `expected` and `actual` are the two CIDs (for a file read block by block, those of the
    first bad block) or the two 0x-prefixed sha256 digests.
    """

    def __init__(self, cid: str, *, kind: Literal["cid", "sha256"], expected: str, actual: str) -> None:
        self.cid = cid
        self.kind = kind
        self.expected = expected
        self.actual = actual
        if kind == "cid" and expected != cid:
            what = f"block {expected} of {cid} does not hash to its CID (it hashes to {actual})"
            hint = "the source is lying or corrupt; fetch the content from elsewhere"
        elif kind == "cid":
            what = f"content fetched for {cid} does not hash to that CID (it hashes to {actual})"
            hint = "the stored copy is corrupt or the source is lying; fetch it from elsewhere"
        else:
            what = f"content {cid} has sha256 {actual}, but {expected} was expected"
            hint = "the CID and the expected (on-chain) hash name different content; refuse it"
        super().__init__(f"{what}: {hint}.")


class ContentTooLarge(StorageError, ValueError):
    """Content is larger than the caller allows (checked before reading it all)."""

    def __init__(self, cid: str, *, limit: int, size: int | None = None) -> None:
        self.cid = cid
        self.limit = limit
        self.size = size
        got = f"{size} bytes" if size is not None else "more"
        super().__init__(f"content {cid} is {got}, over the {limit}-byte limit; it was not read.")


class StoreUnavailable(StorageError, ConnectionError):
    """The backend (e.g. a Kubo node) cannot be reached or answered nonsense."""

    def __init__(self, backend: str, reason: str, hint: str = "") -> None:
        self.backend = backend
        self.reason = reason
        tail = f" {hint}" if hint else ""
        super().__init__(f"content store {backend} is unavailable: {reason}.{tail}")
