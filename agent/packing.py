"""Deterministic output packing: the canonical tar whose sha256 is a job's on-chain `resultHash`.

The same file tree always packs to the same bytes, whatever the mtimes, owners, umask or
directory listing order were when it was written. The format ("AscendNet canonical tar, v1") is
written here by hand rather than by `tarfile`, so that it cannot drift with the Python version:

- entries sorted by the UTF-8 bytes of their path (a parent always precedes its children, since a
  prefix sorts first); every parent directory is present; no "." root entry;
- USTAR headers, `mtime` 0, `uid`/`gid` 0, empty `uname`/`gname`, devmajor/devminor 0;
- modes normalised: directories 0755, files 0644 or 0755 when any execute bit was set, symlinks 0777;
- a PAX extended header (name ``././@PaxHeader``, records sorted by key) only where USTAR cannot
  hold a value: a path or link target that is not ASCII or longer than 100 bytes, or a size of
  8 GiB or more; the USTAR prefix field is never used;
- two zero blocks at the end and no padding to a record size.

Only regular files, directories and symlinks that stay inside the tree are accepted. Symlinks are
stored as they are and never followed; an absolute target, or one that climbs out of the tree, is
refused, as are device files, FIFOs and sockets, paths with ``..``, and names that are not UTF-8.
Refusing (rather than silently dropping) keeps the hash an honest picture of what the job wrote.
Hard links in an input tar become regular files with the same content.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO

from agent.errors import OutputTooLarge, UnsafeOutput

BLOCK = 512
MAX_PATH_BYTES = 4096
_USTAR_NAME = 100
_MAX_USTAR_SIZE = 8**11 - 1
_PAX_NAME = b"././@PaxHeader"


class EntryKind(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"


@dataclass(frozen=True)
class Entry:
    """One member of an output tree. `path` is relative, "/"-separated, without a trailing "/"."""

    path: str
    kind: EntryKind
    data: bytes = b""
    executable: bool = False
    link_target: str = ""

    @classmethod
    def file(cls, path: str, data: bytes, *, executable: bool = False) -> Entry:
        return cls(path, EntryKind.FILE, data=data, executable=executable)

    @classmethod
    def dir(cls, path: str) -> Entry:
        return cls(path, EntryKind.DIR)

    @classmethod
    def symlink(cls, path: str, target: str) -> Entry:
        return cls(path, EntryKind.SYMLINK, link_target=target)


@dataclass(frozen=True)
class PackedOutput:
    """A canonical tar and its sha256. `digest` (32 bytes) is what goes on-chain as `resultHash`."""

    tar: bytes
    entries: int
    digest: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", hashlib.sha256(self.tar).digest())

    @property
    def size(self) -> int:
        return len(self.tar)

    @property
    def hexdigest(self) -> str:
        return self.digest.hex()

    @property
    def result_hash(self) -> str:
        """The digest as a 0x-prefixed bytes32, as passed to `submitResult`."""
        return "0x" + self.digest.hex()


def validate_path(path: str) -> str:
    """Return `path` if it is a safe relative path inside a tree; raise `UnsafeOutput` otherwise."""
    if not path:
        raise UnsafeOutput(path, "the path is empty")
    if "\x00" in path:
        raise UnsafeOutput(path, "the path contains a NUL byte")
    if path.startswith("/"):
        raise UnsafeOutput(path, "the path is absolute")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeOutput(path, "the name is not valid UTF-8") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise UnsafeOutput(path[:64] + "...", f"the path is longer than {MAX_PATH_BYTES} bytes")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise UnsafeOutput(path, "the path has an empty, '.' or '..' component")
    return path


def _check_link_target(path: str, target: str) -> None:
    if not target or "\x00" in target:
        raise UnsafeOutput(path, "the symlink target is empty or contains a NUL byte")
    if target.startswith("/"):
        raise UnsafeOutput(path, f"the symlink points to an absolute path ({target!r})")
    try:
        target.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeOutput(path, "the symlink target is not valid UTF-8") from None
    depth = len(path.split("/")) - 1  # components of the link's own directory
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise UnsafeOutput(path, f"the symlink points outside the output tree ({target!r})")
        elif part not in ("", "."):
            depth += 1


def _normalise(entries: Iterable[Entry]) -> list[Entry]:
    """Validate, reject duplicates and conflicts, add missing parent directories, sort."""
    by_path: dict[str, Entry] = {}
    for entry in entries:
        validate_path(entry.path)
        if entry.kind is EntryKind.SYMLINK:
            _check_link_target(entry.path, entry.link_target)
        if entry.path in by_path:
            if entry.kind is EntryKind.DIR and by_path[entry.path].kind is EntryKind.DIR:
                continue
            raise UnsafeOutput(entry.path, "the path appears twice")
        by_path[entry.path] = entry
    for path in list(by_path):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            existing = by_path.get(parent)
            if existing is None:
                by_path[parent] = Entry.dir(parent)
            elif existing.kind is not EntryKind.DIR:
                raise UnsafeOutput(path, f"its parent {parent!r} is not a directory")
    return sorted(by_path.values(), key=lambda e: e.path.encode("utf-8"))


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\x00" % (width - 1, value)


def _header(name: bytes, mode: int, size: int, typeflag: bytes, linkname: bytes) -> bytes:
    header = bytearray(BLOCK)
    header[0:100] = name[:100].ljust(100, b"\x00")
    header[100:108] = _octal(mode, 8)
    header[108:116] = _octal(0, 8)  # uid
    header[116:124] = _octal(0, 8)  # gid
    header[124:136] = _octal(size, 12)
    header[136:148] = _octal(0, 12)  # mtime
    header[148:156] = b" " * 8  # checksum placeholder
    header[156:157] = typeflag
    header[157:257] = linkname[:100].ljust(100, b"\x00")
    header[257:263] = b"ustar\x00"
    header[263:265] = b"00"
    # uname[32] and gname[32] stay empty (NUL)
    header[329:337] = _octal(0, 8)  # devmajor
    header[337:345] = _octal(0, 8)  # devminor
    # prefix[155] stays empty: long paths always go to a PAX record instead
    header[148:156] = b"%06o\x00 " % sum(header)
    return bytes(header)


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode("ascii") + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode("ascii") + body


def _padding(size: int) -> bytes:
    return b"\x00" * (-size % BLOCK)


def _fits_ustar(value: bytes) -> bool:
    return len(value) <= _USTAR_NAME and value.isascii()


def _encode(entry: Entry) -> Iterator[bytes]:
    name = entry.path.encode("utf-8") + (b"/" if entry.kind is EntryKind.DIR else b"")
    link = entry.link_target.encode("utf-8")
    if entry.kind is EntryKind.DIR:
        mode, typeflag, size = 0o755, b"5", 0
    elif entry.kind is EntryKind.SYMLINK:
        mode, typeflag, size = 0o777, b"2", 0
    else:
        mode, typeflag, size = (0o755 if entry.executable else 0o644), b"0", len(entry.data)
    records: list[bytes] = []
    if not _fits_ustar(link):
        records.append(_pax_record("linkpath", link))
    if not _fits_ustar(name):
        records.append(_pax_record("path", name))
    if size > _MAX_USTAR_SIZE:
        records.append(_pax_record("size", str(size).encode("ascii")))
    if records:
        pax = b"".join(records)  # keys are appended in sorted order: linkpath, path, size
        yield _header(_PAX_NAME, 0o644, len(pax), b"x", b"")
        yield pax + _padding(len(pax))
    yield _header(name, mode, size if size <= _MAX_USTAR_SIZE else 0, typeflag, link)
    if size:
        yield entry.data + _padding(size)


def pack(entries: Iterable[Entry]) -> PackedOutput:
    """Pack a tree into the canonical tar. Raises `UnsafeOutput` for anything outside the format."""
    ordered = _normalise(entries)
    out = io.BytesIO()
    for entry in ordered:
        for chunk in _encode(entry):
            out.write(chunk)
    out.write(b"\x00" * (2 * BLOCK))
    return PackedOutput(tar=out.getvalue(), entries=len(ordered))


def entries_from_directory(root: Path) -> list[Entry]:
    """Read a host directory as entries, never following symlinks."""
    result: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            full = base / name
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                result.append(Entry.symlink(rel, os.readlink(full)))
            elif stat.S_ISDIR(st.st_mode):
                result.append(Entry.dir(rel))
            elif stat.S_ISREG(st.st_mode):
                result.append(Entry.file(rel, full.read_bytes(), executable=bool(st.st_mode & 0o111)))
            else:
                raise UnsafeOutput(rel, "only regular files, directories and symlinks are allowed")
    return result


def pack_directory(root: Path) -> PackedOutput:
    """Pack a host directory (its contents, not the directory itself)."""
    return pack(entries_from_directory(root))


class _BoundedReader(io.RawIOBase):
    """A read-only stream over byte chunks that refuses to deliver more than `limit` bytes."""

    def __init__(self, chunks: Iterable[bytes], limit: int) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self._limit = limit
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        self.consumed += n
        if self.consumed > self._limit:
            raise OutputTooLarge(size=self.consumed, limit=self._limit)
        return n


def entries_from_tar(
    chunks: Iterable[bytes], *, root: str | None = None, max_bytes: int | None = None
) -> list[Entry]:
    """Read an untrusted tar stream given as byte chunks (as `get_archive` yields them).

    `root` names a leading directory to strip (``get_archive("/outputs")`` puts everything under
    ``outputs/``). More than `max_bytes` of tar raises `OutputTooLarge` before the rest is read.
    """
    reader = io.BufferedReader(_BoundedReader(chunks, max_bytes if max_bytes is not None else 1 << 62))
    try:
        return _read_members(reader, root)
    except tarfile.TarError as exc:
        raise UnsafeOutput("<archive>", f"the tar stream is malformed ({exc})") from exc


def _read_members(reader: IO[bytes], root: str | None) -> list[Entry]:
    result: list[Entry] = []
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=reader, mode="r|", encoding="utf-8", errors="surrogateescape") as archive:
        for member in archive:
            name = member.name
            if root is not None:
                if name == root:
                    if not member.isdir():
                        raise UnsafeOutput(name, "the output root is not a directory")
                    continue
                if not name.startswith(root + "/"):
                    raise UnsafeOutput(name, f"the entry lies outside {root!r}")
                name = name[len(root) + 1 :]
            name = name.removeprefix("./").rstrip("/")
            if not name or name == ".":
                continue
            validate_path(name)
            if member.isdir():
                result.append(Entry.dir(name))
            elif member.issym():
                result.append(Entry.symlink(name, member.linkname))
            elif member.islnk():
                target = member.linkname
                if root is not None:
                    target = target.removeprefix(root + "/")
                if target not in files:
                    raise UnsafeOutput(
                        name, f"the hard link points to {target!r}, which is not a file in the tree"
                    )
                result.append(Entry.file(name, files[target], executable=bool(member.mode & 0o111)))
            elif member.isreg():
                extracted = archive.extractfile(member)
                data = extracted.read() if extracted is not None else b""
                files[name] = data
                result.append(Entry.file(name, data, executable=bool(member.mode & 0o111)))
            else:
                raise UnsafeOutput(name, "only regular files, directories and symlinks are allowed")
    return result
