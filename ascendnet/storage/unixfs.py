"""UnixFS files, as `ipfs add` (Kubo) builds them: the CID of a file, and a verified reader.

`compute_cid` chunks the bytes and builds the same DAG as Kubo's importer (boxo
``ipld/unixfs/importer/balanced``), so it yields the CID `ipfs add` prints for the same bytes:

- default (``ImportOptions()``): CIDv0, dag-pb leaves holding UnixFS ``File`` nodes, fixed-size
  chunks of 262144 bytes, a balanced tree of at most 174 links per node;
- ``ImportOptions(cid_version=1)``: as ``ipfs add --cid-version 1``: CIDv1 in base32 and raw
  leaves (a one-chunk file is then a single raw block, ``bafkrei...``).

The encoding is the legacy go-merkledag one: each dag-pb node is written links first (Hash, Name
always present, even empty, then Tsize), then its Data; UnixFS fields in field order, with
``filesize`` always set and one unpacked ``blocksizes`` entry per child. A leaf's link size
(Tsize) is its block length; an inner node's is its block length plus its children's.

`read_file` goes the other way: it walks a file's DAG block by block and checks every block
against the CID that names it, so content is verified whatever chunker built it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from ascendnet.storage.cid import DAG_PB, RAW, Cid, decode_varint, encode_varint
from ascendnet.storage.errors import ContentMismatch, ContentTooLarge, StorageError

#: Kubo's defaults (boxo chunker.DefaultBlockSize and helpers.DefaultLinksPerBlock).
DEFAULT_CHUNK_SIZE = 262_144
DEFAULT_MAX_LINKS = 174
#: Kubo refuses blocks over 1 MiB (boxo helpers.BlockSizeLimit), so chunks are at most that.
MAX_CHUNK_SIZE = 1_048_576
#: A file DAG with more blocks than this is refused while reading (a guard against DAGs whose
#: nodes link the same child over and over).
MAX_BLOCKS = 1 << 20

# UnixFS Data.Type values (unixfs.proto).
_T_RAW, _T_DIRECTORY, _T_FILE = 0, 1, 2
_TYPE_NAMES = {0: "raw", 1: "directory", 2: "file", 3: "metadata", 4: "symlink", 5: "HAMT shard"}


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How a file is cut into a DAG; each option is the `ipfs add` flag of the same name.

    `raw_leaves=None` means Kubo's default: raw leaves for CIDv1, dag-pb leaves for CIDv0.
    """

    cid_version: Literal[0, 1] = 0
    raw_leaves: bool | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    max_links: int = DEFAULT_MAX_LINKS

    def __post_init__(self) -> None:
        if self.cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be 1..{MAX_CHUNK_SIZE} bytes (Kubo's block size limit)")
        if self.max_links < 2:
            raise ValueError("max_links must be at least 2")

    @property
    def leaves_are_raw(self) -> bool:
        return self.cid_version == 1 if self.raw_leaves is None else self.raw_leaves

    def describe(self) -> str:
        """The equivalent `ipfs add` flags."""
        flags = [f"--cid-version={self.cid_version}", f"--raw-leaves={str(self.leaves_are_raw).lower()}"]
        flags.append(f"--chunker=size-{self.chunk_size}")
        if self.max_links != DEFAULT_MAX_LINKS:
            flags.append(f"--max-file-links={self.max_links}")
        return " ".join(flags)


# ---------------------------------------------------------------------------- protobuf codec


def _field(number: int, wire_type: int) -> bytes:
    return encode_varint(number << 3 | wire_type)


def _bytes_field(number: int, value: bytes | memoryview) -> bytes:
    return _field(number, 2) + encode_varint(len(value)) + bytes(value)


def encode_unixfs_file(
    data: bytes | memoryview | None, filesize: int, blocksizes: Iterable[int] = ()
) -> bytes:
    """A UnixFS ``Data`` message of type File."""
    out = bytearray(_field(1, 0) + encode_varint(_T_FILE))
    if data is not None:
        out += _bytes_field(2, data)
    out += _field(3, 0) + encode_varint(filesize)
    for size in blocksizes:
        out += _field(4, 0) + encode_varint(size)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class PBLink:
    hash: bytes  # binary CID
    name: str
    tsize: int


def encode_pbnode(links: Iterable[PBLink], data: bytes | None) -> bytes:
    """A dag-pb ``PBNode``: links first, then data (go-merkledag's byte order)."""
    out = bytearray()
    for link in links:
        body = _bytes_field(1, link.hash) + _bytes_field(2, link.name.encode()) + _field(3, 0)
        body += encode_varint(link.tsize)
        out += _bytes_field(2, body)
    if data is not None:
        out += _bytes_field(1, data)
    return bytes(out)


def _fields(message: bytes | memoryview) -> Iterable[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of each field; values are ints or byte views."""
    view = memoryview(message)
    pos = 0
    while pos < len(view):
        key, pos = decode_varint(view, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = decode_varint(view, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = decode_varint(view, pos)
            if pos + length > len(view):
                raise ValueError("length-delimited field runs past the end")
            yield number, wire, view[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


@dataclass(frozen=True, slots=True)
class PBNode:
    links: tuple[PBLink, ...]
    data: bytes | None


def decode_pbnode(block: bytes) -> PBNode:
    links: list[PBLink] = []
    data: bytes | None = None
    for number, wire, value in _fields(block):
        if number == 2 and isinstance(value, memoryview):
            link_hash, name, tsize = b"", "", 0
            for n, _w, v in _fields(value):
                if n == 1 and isinstance(v, memoryview):
                    link_hash = bytes(v)
                elif n == 2 and isinstance(v, memoryview):
                    name = bytes(v).decode("utf-8", "replace")
                elif n == 3 and isinstance(v, int):
                    tsize = v
            links.append(PBLink(link_hash, name, tsize))
        elif number == 1 and isinstance(value, memoryview):
            data = bytes(value)
        else:
            raise ValueError(f"unexpected dag-pb field {number} (wire type {wire})")
    return PBNode(tuple(links), data)


@dataclass(frozen=True, slots=True)
class UnixFSData:
    type: int
    data: bytes
    filesize: int | None
    blocksizes: tuple[int, ...]


def decode_unixfs(message: bytes) -> UnixFSData:
    kind: int | None = None
    data = b""
    filesize: int | None = None
    blocksizes: list[int] = []
    for number, _wire, value in _fields(message):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, memoryview):
            data = bytes(value)
        elif number == 3 and isinstance(value, int):
            filesize = value
        elif number == 4 and isinstance(value, int):
            blocksizes.append(value)
        elif number == 4 and isinstance(value, memoryview):  # packed, as some writers emit it
            pos = 0
            while pos < len(value):
                size, pos = decode_varint(value, pos)
                blocksizes.append(size)
    if kind is None:
        raise ValueError("UnixFS Data has no Type")
    return UnixFSData(kind, data, filesize, tuple(blocksizes))


# ---------------------------------------------------------------------------- importer

BlockSink = Callable[[Cid, bytes], None]


@dataclass(slots=True)
class _Link:
    cid: Cid
    tsize: int  # cumulative size of the block and everything below it
    filesize: int  # file bytes below it


@dataclass(slots=True)
class FileImporter:
    """Streaming equivalent of `ipfs add` for one file: `update()` with the bytes in any
    pieces, then `finish()` for the root CID. Memory stays at one chunk plus one pending link
    list per tree level. `on_block` receives every block built (leaves first, root last)."""

    options: ImportOptions = field(default_factory=ImportOptions)
    on_block: BlockSink | None = None
    size: int = field(default=0, init=False)
    _buffer: bytearray = field(default_factory=bytearray, init=False)
    # NOTE: levels[i] holds the finished nodes of height i not yet linked from a parent. A
    # level is folded into one parent as soon as it holds max_links nodes; bottom-up folding
    # of full groups gives exactly the tree boxo's balanced layout builds top-down.
    _levels: list[list[_Link]] = field(default_factory=lambda: [[]], init=False)
    _finished: Cid | None = field(default=None, init=False)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._finished is not None:
            raise RuntimeError("FileImporter.update after finish")
        view = memoryview(data).cast("B")
        self.size += len(view)
        chunk = self.options.chunk_size
        if self._buffer:
            take = chunk - len(self._buffer)
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) == chunk:
                self._leaf(bytes(self._buffer))
                self._buffer.clear()
        while len(view) >= chunk:
            self._leaf(view[:chunk])
            view = view[chunk:]
        self._buffer += view

    def finish(self) -> Cid:
        if self._finished is not None:
            return self._finished
        if self._buffer:
            self._leaf(bytes(self._buffer))
            self._buffer.clear()
        if not self._levels[0] and len(self._levels) == 1:
            self._finished = self._empty()
            return self._finished
        level = 0
        while True:
            links = self._levels[level]
            if level == len(self._levels) - 1 and len(links) == 1:
                self._finished = links[0].cid
                return self._finished
            if links:
                self._fold(level)
            level += 1

    def _emit(self, cid: Cid, block: bytes) -> None:
        if self.on_block is not None:
            self.on_block(cid, block)

    def _empty(self) -> Cid:
        # An empty file is one leaf without data (boxo: NewLeafNode(nil, TFile)).
        if self.options.leaves_are_raw:
            block = b""
            cid = Cid.of_block(block, codec=RAW, version=1)
        else:
            block = encode_pbnode((), encode_unixfs_file(None, 0))
            cid = Cid.of_block(block, codec=DAG_PB, version=self.options.cid_version)
        self._emit(cid, block)
        return cid

    def _leaf(self, chunk: bytes | memoryview) -> None:
        size = len(chunk)
        if self.options.leaves_are_raw:
            # NOTE: raw leaves are always CIDv1, even under CIDv0 roots (`--raw-leaves` alone).
            cid = Cid(1, RAW, hashlib.sha256(chunk).digest())
            block_size = size
            if self.on_block is not None:
                self._emit(cid, bytes(chunk))
        else:
            # The leaf block is PBNode{Data: UnixFS{Type: File, Data: chunk, filesize}}, that is
            # encode_pbnode((), encode_unixfs_file(chunk, size)); hashed in pieces so the chunk
            # is never copied (it is joined only when someone wants the block).
            inner = b"\x08\x02\x12" + encode_varint(size)
            tail = b"\x18" + encode_varint(size)
            head = b"\x0a" + encode_varint(len(inner) + size + len(tail)) + inner
            digest = hashlib.sha256(head)
            digest.update(chunk)
            digest.update(tail)
            cid = Cid(self.options.cid_version, DAG_PB, digest.digest())
            block_size = len(head) + size + len(tail)
            if self.on_block is not None:
                self._emit(cid, b"".join((head, chunk, tail)))
        self._push(0, _Link(cid, block_size, size))

    def _push(self, level: int, link: _Link) -> None:
        if level == len(self._levels):
            self._levels.append([])
        self._levels[level].append(link)
        if len(self._levels[level]) == self.options.max_links:
            self._fold(level)

    def _fold(self, level: int) -> None:
        children = self._levels[level]
        self._levels[level] = []
        filesize = sum(c.filesize for c in children)
        data = encode_unixfs_file(None, filesize, (c.filesize for c in children))
        block = encode_pbnode((PBLink(c.cid.to_bytes(), "", c.tsize) for c in children), data)
        cid = Cid(self.options.cid_version, DAG_PB, hashlib.sha256(block).digest())
        self._emit(cid, block)
        self._push(level + 1, _Link(cid, len(block) + sum(c.tsize for c in children), filesize))


def compute_cid(
    data: bytes | bytearray | memoryview | Iterable[bytes], options: ImportOptions | None = None
) -> Cid:
    """The CID `ipfs add` gives these bytes (or this stream of byte pieces) under `options`."""
    importer = FileImporter(options or ImportOptions())
    if isinstance(data, (bytes, bytearray, memoryview)):
        importer.update(data)
    else:
        for piece in data:
            importer.update(piece)
    return importer.finish()


def candidate_options(cid: Cid, preferred: ImportOptions | None = None) -> list[ImportOptions]:
    """The import settings under which `cid` may have been built from a file's bytes, most
    likely first: `preferred` (the store's own), then Kubo's defaults for the CID's version."""
    found: list[ImportOptions] = []
    if preferred is not None and preferred.cid_version == cid.version:
        found.append(preferred)
    if cid.version == 0:
        found += [ImportOptions(0), ImportOptions(0, raw_leaves=True)]
    elif cid.codec == RAW:
        found.append(ImportOptions(1))  # one raw block: any chunk size gives the same CID
    else:
        found += [ImportOptions(1), ImportOptions(1, raw_leaves=False)]
    return list(dict.fromkeys(found))


def bytes_match_cid(cid: Cid, data: bytes, preferred: ImportOptions | None = None) -> Cid | None:
    """None if `data` is the file `cid` names under one of its candidate import settings;
    otherwise the CID the data has under the first candidate (for the error message)."""
    if cid.codec == RAW:
        return None if cid.matches(data) else Cid.of_block(data, codec=RAW, version=1)
    first: Cid | None = None
    for options in candidate_options(cid, preferred):
        got = compute_cid(data, options)
        if got == cid:
            return None
        first = first or got
    return first


# ---------------------------------------------------------------------------- reader


def read_file(root: Cid, get_block: Callable[[Cid], bytes], *, max_bytes: int | None = None) -> bytes:
    """The bytes of the UnixFS file `root`, fetching blocks with `get_block` and checking each
    one against its CID. Raises ContentMismatch naming the first bad block, ContentTooLarge
    past `max_bytes`, StorageError if the DAG is not a UnixFS file."""
    out = bytearray()
    stack = [root]
    seen = 0
    while stack:
        cid = stack.pop()
        seen += 1
        if seen > MAX_BLOCKS:
            raise StorageError(f"{root} links more than {MAX_BLOCKS} blocks; refusing to read it")
        block = get_block(cid)
        if not cid.matches(block):
            actual = Cid(cid.version, cid.codec, hashlib.sha256(block).digest())
            raise ContentMismatch(str(root), kind="cid", expected=str(cid), actual=str(actual))
        if cid.codec == RAW:
            data = block
        else:
            try:
                node = decode_pbnode(block)
                unixfs = decode_unixfs(node.data or b"")
            except ValueError as exc:
                raise StorageError(f"{root}: block {cid} is not a UnixFS node ({exc})") from None
            if unixfs.type not in (_T_FILE, _T_RAW):
                kind = _TYPE_NAMES.get(unixfs.type, str(unixfs.type))
                raise StorageError(f"{root} is a UnixFS {kind}, not a file")
            data = unixfs.data
            children = []
            for link in node.links:
                try:
                    children.append(Cid.from_bytes(link.hash))
                except StorageError as exc:
                    raise StorageError(f"{root}: block {cid} has a bad link ({exc})") from None
            stack.extend(reversed(children))
        if max_bytes is not None and len(out) + len(data) > max_bytes:
            raise ContentTooLarge(str(root), limit=max_bytes)
        out += data
    return bytes(out)
