"""CID parsing and formatting: the strings Kubo prints round-trip, everything else is refused
with a reason."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ascendnet.storage.cid import DAG_PB, RAW, Cid, decode_varint, encode_varint
from ascendnet.storage.errors import InvalidCid

HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
EMPTY_RAW = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"  # raw block of b""


@pytest.mark.parametrize(
    "text",
    [
        HELLO_V0,
        EMPTY_RAW,
        "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa",
    ],
)
def test_kubo_cids_round_trip(text: str) -> None:
    cid = Cid.parse(text)
    assert str(cid) == text
    assert Cid.from_bytes(cid.to_bytes()) == cid


def test_raw_cid_digest_is_the_sha256_of_the_bytes() -> None:
    cid = Cid.parse(EMPTY_RAW)
    assert (cid.version, cid.codec, cid.codec_name) == (1, RAW, "raw")
    assert cid.digest == hashlib.sha256(b"").digest()
    assert cid.matches(b"") and not cid.matches(b"x")


def test_cidv0_upgrades_to_the_same_content_as_cidv1() -> None:
    # The empty file's node: QmbFMke... as CIDv0 (kubo t0040), bafybeif7z... as CIDv1 dag-pb
    # (js-ipfs-unixfs importer test "always yield empty node"; ipld/js-unixfs file tests).
    v1 = Cid.parse("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH").to_v1()
    assert (v1.version, v1.codec) == (1, DAG_PB)
    assert str(v1) == "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y"
    assert Cid.parse(HELLO_V0).to_v1().digest == Cid.parse(HELLO_V0).digest


def _b32(raw: bytes) -> str:
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


SHA512_CID = _b32(encode_varint(1) + encode_varint(RAW) + bytes([0x13, 64]) + bytes(64))
DAG_JSON_CID = _b32(encode_varint(1) + encode_varint(0x0129) + bytes([0x12, 32]) + bytes(32))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("Qm" + "1" * 43, "46 characters"),
        ("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5O", "base58"),  # 'O' is not base58
        ("BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU", "multibase"),
        ("bAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU", "lowercase"),
        ("zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA", "multibase"),
        ("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvy", "32 bytes"),  # truncated digest
        (SHA512_CID, "hash function"),
        (DAG_JSON_CID, "codec"),
        ("Qm" + "x" * 200, "too long"),
    ],
)
def test_malformed_cids_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidCid) as info:
        Cid.parse(text)
    assert reason in str(info.value)
    assert info.value.cid == text


def test_varints() -> None:
    for value in (0, 1, 127, 128, 300, 2**32, 2**63 - 1):
        encoded = encode_varint(value)
        assert decode_varint(encoded, 0) == (value, len(encoded))
    assert encode_varint(300) == bytes([0xAC, 0x02])
    with pytest.raises(ValueError, match="truncated"):
        decode_varint(bytes([0x80]), 0)
