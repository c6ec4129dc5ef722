"""The content store interface that every backend implements."""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

from ascendnet.storage.errors import ContentMismatch


class ContentStore(ABC):
    """Content-addressed bytes. `put` returns the CID `ipfs add` would give the same bytes; `get`
    returns bytes only after checking that they hash to the CID asked for, and, when the caller
    passes one, to an expected sha256 (such as a hash anchored on-chain).

    Stores are context managers; `close()` releases connections.
    """

    #: Short name for logs and errors ("local", "kubo").
    name: str = "store"

    @abstractmethod
    def put(self, data: bytes) -> str:
        """Store `data`; return its CID."""

    @abstractmethod
    def get(self, cid: str, *, sha256: bytes | None = None, max_bytes: int | None = None) -> bytes:
        """The verified bytes of `cid`.

        Raises InvalidCid, ContentNotFound, ContentTooLarge (over `max_bytes`, before reading it
        all) or ContentMismatch (the bytes do not hash to `cid`, or differ from `sha256`).
        """

    @abstractmethod
    def has(self, cid: str) -> bool:
        """Whether the store holds `cid` (locally, without fetching it from elsewhere)."""

    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Store the content of the file at `path`; return its CID."""
        return self.put(Path(path).read_bytes())

    def get_to_file(
        self,
        cid: str,
        path: str | os.PathLike[str],
        *,
        sha256: bytes | None = None,
        max_bytes: int | None = None,
    ) -> Path:
        """Verify `cid` like `get`, then write it to `path` atomically: a reader of `path`
        sees either nothing or the whole verified content, never a partial file."""
        data = self.get(cid, sha256=sha256, max_bytes=max_bytes)
        target = Path(path)
        write_atomically(target, data)
        return target

    def close(self) -> None:  # noqa: B027 - optional hook; most stores hold nothing open
        """Release what the store holds open. The default holds nothing."""

    def __enter__(self) -> ContentStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_sha256(cid: str, data: bytes, expected: bytes | None) -> None:
    """Raise ContentMismatch unless `data` has the sha256 `expected` (skipped when None)."""
    if expected is None:
        return
    if len(expected) != 32:
        raise ValueError(f"an expected sha256 is 32 bytes, not {len(expected)}")
    actual = hashlib.sha256(data).digest()
    if actual != expected:
        raise ContentMismatch(cid, kind="sha256", expected="0x" + expected.hex(), actual="0x" + actual.hex())


def write_atomically(target: Path, data: bytes) -> None:
    """Write `data` to `target` through a temporary file in the same directory, fsync it, then
    rename it over `target` (atomic on POSIX), so a crash never leaves a partial `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
