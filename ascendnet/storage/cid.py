"""Content identifiers (CIDs): parsing, formatting and the CID of one block.

Only what IPFS (Kubo) prints for files is supported: sha2-256 multihashes, the dag-pb and raw
codecs, CIDv0 (base58btc, ``Qm...``) and CIDv1 in lowercase base32 (``b...``). The CID of a whole
file, built from many blocks, is computed in `ascendnet.storage.unixfs`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from ascendnet.storage.errors import InvalidCid

#: Multicodec codes (https://github.com/multiformats/multicodec/blob/master/table.csv).
DAG_PB = 0x70
RAW = 0x55
SHA2_256 = 0x12
_CODEC_NAMES = {DAG_PB: "dag-pb", RAW: "raw"}

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
#: Longer strings are refused before decoding: a sha2-256 CID is at most 59 characters.
_MAX_CID_CHARS = 128


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as multiformats and protobuf use it."""
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The varint at `pos`; returns (value, position after it). Raises ValueError if truncated."""
    value = shift = 0
    end = len(data)
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")
    raise ValueError("truncated varint")


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    chars = []
    while number:
        number, rem = divmod(number, 58)
        chars.append(_B58_ALPHABET[rem])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(chars))


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        try:
            number = number * 58 + _B58_INDEX[char]
        except KeyError:
            raise ValueError(f"{char!r} is not a base58btc character") from None
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


@dataclass(frozen=True, slots=True)
class Cid:
    """A parsed CID. `str(cid)` gives the form Kubo prints: CIDv0 in base58btc, CIDv1 in
    lowercase base32 with the ``b`` multibase prefix."""

    version: int
    codec: int
    digest: bytes  # the sha2-256 digest (32 bytes)

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise ValueError(f"unknown CID version {self.version}")
        if self.version == 0 and self.codec != DAG_PB:
            raise ValueError("a CIDv0 is always dag-pb")
        if len(self.digest) != 32:
            raise ValueError("a sha2-256 digest is 32 bytes")

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse a CID string. Raises InvalidCid saying what is wrong with it."""
        if not isinstance(text, str):
            raise InvalidCid(repr(text), f"expected a string, not {type(text).__name__}")
        if not text or len(text) > _MAX_CID_CHARS:
            raise InvalidCid(text, "empty or far too long")
        if text.startswith("Qm"):
            if len(text) != 46:
                raise InvalidCid(text, "a CIDv0 is 46 characters")
            try:
                raw = b58decode(text)
            except ValueError as exc:
                raise InvalidCid(text, str(exc)) from None
            return cls._from_multihash(text, 0, DAG_PB, raw)
        if text.startswith("b"):
            body = text[1:]
            if body != body.lower():
                raise InvalidCid(text, "base32 CIDs must be lowercase")
            try:
                raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
                version, pos = decode_varint(raw, 0)
                codec, pos = decode_varint(raw, pos)
            except (binascii.Error, ValueError) as exc:
                raise InvalidCid(text, f"it does not decode ({exc})") from None
            if version != 1:
                raise InvalidCid(text, f"its version is {version}, not 1")
            return cls._from_multihash(text, 1, codec, raw[pos:])
        raise InvalidCid(text, "unsupported multibase (only 'Qm...' and base32 'b...' are accepted)")

    @classmethod
    def _from_multihash(cls, text: str, version: int, codec: int, multihash: bytes) -> Cid:
        try:
            code, pos = decode_varint(multihash, 0)
            length, pos = decode_varint(multihash, pos)
        except ValueError as exc:
            raise InvalidCid(text, f"its multihash does not decode ({exc})") from None
        if code != SHA2_256:
            raise InvalidCid(text, f"hash function 0x{code:x} is not supported (only sha2-256)")
        if length != 32 or len(multihash) - pos != 32:
            raise InvalidCid(text, "its sha2-256 digest is not 32 bytes")
        if codec not in _CODEC_NAMES:
            raise InvalidCid(text, f"codec 0x{codec:x} is not supported (only dag-pb and raw)")
        return cls(version, codec, bytes(multihash[pos:]))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Cid:
        """Parse a binary CID (as held in a dag-pb link)."""
        if raw[:2] == bytes([SHA2_256, 32]):
            return cls._from_multihash(raw.hex(), 0, DAG_PB, raw)
        try:
            version, pos = decode_varint(raw, 0)
            codec, pos = decode_varint(raw, pos)
        except ValueError as exc:
            raise InvalidCid(raw.hex(), f"it does not decode ({exc})") from None
        if version != 1:
            raise InvalidCid(raw.hex(), f"its version is {version}, not 1")
        return cls._from_multihash(raw.hex(), 1, codec, raw[pos:])

    @classmethod
    def of_block(cls, block: bytes, *, codec: int, version: int) -> Cid:
        """The CID of one block of `codec` bytes."""
        return cls(version, codec, hashlib.sha256(block).digest())

    @property
    def multihash(self) -> bytes:
        return bytes([SHA2_256, 32]) + self.digest

    @property
    def codec_name(self) -> str:
        return _CODEC_NAMES[self.codec]

    def to_bytes(self) -> bytes:
        """The binary CID, as dag-pb links hold it."""
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    def to_v1(self) -> Cid:
        """The same content as a CIDv1 (a CIDv0 becomes a dag-pb CIDv1 with the same digest)."""
        return self if self.version == 1 else Cid(1, self.codec, self.digest)

    def matches(self, block: bytes) -> bool:
        """Whether `block` hashes to this CID's digest."""
        return hashlib.sha256(block).digest() == self.digest

    def __str__(self) -> str:
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + base64.b32encode(self.to_bytes()).decode().lower().rstrip("=")


def parse_cid(text: str) -> Cid:
    """`Cid.parse` as a function."""
    return Cid.parse(text)
