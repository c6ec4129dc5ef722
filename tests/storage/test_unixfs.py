"""The CIDs we compute equal the ones Kubo's `ipfs add` prints, for Kubo's own published vectors,
and the verified reader rebuilds files from their blocks and refuses tampered blocks.

Sources of the vectors (each was produced by a real Kubo in its test suite):

- [t0040] ipfs/kubo test/sharness/t0040-add-and-cat.sh ("zero length file has correct hash",
  the --raw-leaves zero length file, "Hello Worlds!", and add_directory's per-file CIDs);
- [add_test] ipfs/kubo test/cli/add_test.go (shortString "hello world" in CIDv0, CIDv1 and CIDv1
  without raw leaves; `IPFSAddDeterministic` files for the legacy-cid-v0 and test-cid-v1 profiles
  and for --max-file-links 1024); the same CIDs are in test/cli/cid_profiles_test.go
  (unixfs-v0-2015, Kubo's default profile);
- [readme] the go-ipfs README, "Some things to try": `echo "hello world" > hello; ipfs add hello`.

The deterministic files come from kubo test/cli/testutils `DeterministicRandomReader(size, seed)`:
the ChaCha20 keystream under key sha256(seed) and an all-zero nonce, sizes parsed by go-humanize
("44544KiB" = 44544 * 1024 bytes). Profiles (kubo config/profile.go): legacy-cid-v0 = CIDv0, no raw
leaves, 256 KiB chunks, 174 links (Kubo's defaults); test-cid-v1 = CIDv1, raw leaves, 1 MiB chunks,
174 links.
"""

from __future__ import annotations

import functools
import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from ascendnet.storage import ContentMismatch, ContentTooLarge, ImportOptions, compute_cid
from ascendnet.storage.cid import DAG_PB, RAW, Cid
from ascendnet.storage.errors import StorageError
from ascendnet.storage.unixfs import (
    FileImporter,
    PBLink,
    decode_pbnode,
    decode_unixfs,
    encode_pbnode,
    encode_unixfs_file,
    read_file,
)

KIB = 1024
MIB = 1024 * KIB
V0 = ImportOptions()  # plain `ipfs add`
V1 = ImportOptions(cid_version=1)  # `ipfs add --cid-version 1`
V1_PB_LEAVES = ImportOptions(cid_version=1, raw_leaves=False)  # `--cid-version=1 --raw-leaves=false`
TEST_CID_V1 = ImportOptions(cid_version=1, chunk_size=MIB)  # kubo's test-cid-v1 profile


@functools.cache
def deterministic(size: int, seed: str) -> bytes:
    """kubo test/cli/testutils.DeterministicRandomReader(size, seed)."""
    key = hashlib.sha256(seed.encode()).digest()
    # cryptography's ChaCha20 nonce is the 32-bit block counter then the 96-bit nonce: all zero.
    return Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor().update(bytes(size))


SMALL_VECTORS = [
    # (content, options, CID, source)
    (b"", V0, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", "t0040 zero length file"),
    (b"", V1, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "t0040 zero length, raw leaves"),
    (b"hello world\n", V0, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", "readme"),
    (b"hello world", V0, "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD", "add_test shortStringCidV0"),
    (b"hello world", V1, "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e", "add_test CidV1"),
    (
        b"hello world",
        V1_PB_LEAVES,
        "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa",
        "add_test CidV1NoRawLeaves",
    ),
    (b"Hello Worlds!\n", V0, "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH", "t0040 hello.txt"),
    (b"Hello Venus!\n", V0, "QmU5kp3BH3B8tnWUU2Pikdb2maksBNkb92FHRr56hyghh4", "t0040 venus.txt"),
    (
        b"Hello Mars!\n",
        V1,
        "bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4",
        "t0040 mars.txt v1",
    ),
    (
        b"Hello Venus!\n",
        V1_PB_LEAVES,
        "bafybeicvkvhs2fr75ynebtdjqpgm4g2fc63abqbmysupwpmcjl4gx7mzrm",
        "t0040 venus.txt --cid-version=1 --raw-leaves=false",
    ),
]


@pytest.mark.parametrize(
    ("content", "options", "expected", "source"), SMALL_VECTORS, ids=[v[3] for v in SMALL_VECTORS]
)
def test_single_block_files_match_kubo(
    content: bytes, options: ImportOptions, expected: str, source: str
) -> None:
    assert str(compute_cid(content, options)) == expected


def test_174_chunks_fit_one_node() -> None:
    """[add_test] legacy-cid-v0, "under UnixFSFileMaxLinks=174": 44544 KiB = 174 chunks of 256 KiB."""
    data = deterministic(44800 * KIB, "v0-seed")[: 44544 * KIB]
    blocks: dict[Cid, bytes] = {}
    root = FileImporter(V0, on_block=blocks.__setitem__)
    root.update(data)
    cid = root.finish()
    assert str(cid) == "QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2"
    assert len(decode_pbnode(blocks[cid]).links) == 174


def test_175_chunks_make_a_second_level() -> None:
    """[add_test] legacy-cid-v0, "above UnixFSFileMaxLinks=174": one more chunk, root with 2 links."""
    data = deterministic(44800 * KIB, "v0-seed")
    blocks: dict[Cid, bytes] = {}
    importer = FileImporter(V0, on_block=blocks.__setitem__)
    importer.update(data)
    cid = importer.finish()
    assert str(cid) == "QmepeWtdmS1hHXx1oZXsPUv6bMrfRRKfZcoPPU4eEfjnbf"
    root = decode_pbnode(blocks[cid])
    assert len(root.links) == 2
    assert decode_unixfs(root.data or b"").blocksizes == (174 * 256 * KIB, 256 * KIB)


def test_cidv1_raw_leaf_trees_match_kubo() -> None:
    """[add_test] test-cid-v1 profile: 174 MiB (one level of 174 raw leaves) and 175 MiB (two levels)."""
    data = deterministic(175 * MIB, "v1-seed")
    assert str(compute_cid(memoryview(data)[: 174 * MIB], TEST_CID_V1)) == (
        "bafybeigwduxcf2aawppv3isnfeshnimkyplvw3hthxjhr2bdeje4tdaicu"
    )
    assert (
        str(compute_cid(data, TEST_CID_V1)) == "bafybeidhd7lo2n2v7lta5yamob3xwhbxcczmmtmhquwhjesi35jntf7mpu"
    )


def test_max_links_is_honoured() -> None:
    """[add_test] legacy-cid-v0 with --max-file-links 1024: 256 MiB in one node of 1024 links."""
    data = deterministic(262144 * KIB, "hello world")
    assert (
        str(compute_cid(data, ImportOptions(max_links=1024)))
        == "QmbBftNHWmjSWKLC49dMVrfnY8pjrJYntiAXirFJ7oJrNk"
    )


def test_how_the_bytes_arrive_does_not_change_the_cid() -> None:
    data = deterministic(44800 * KIB, "v0-seed")[: 3 * 256 * KIB + 12345]
    expected = compute_cid(data)
    sizes = [1, 7, 262143, 262145, 100_000, 3, 500_000]
    pieces, pos = [], 0
    for size in sizes * 10:
        pieces.append(data[pos : pos + size])
        pos += size
    pieces.append(data[pos:])
    assert compute_cid(iter(pieces)) == expected
    assert compute_cid([data[: 256 * KIB], data[256 * KIB :]]) == expected


def test_encoding_is_go_merkledag_byte_for_byte() -> None:
    # The empty file's block (t0040's QmbFMke...): PBNode{Data: UnixFS{Type: File, filesize: 0}}.
    assert encode_pbnode((), encode_unixfs_file(None, 0)) == bytes.fromhex("0a0408021800")
    link = PBLink(bytes.fromhex("1220" + "ab" * 32), "", 300)
    encoded = encode_pbnode([link], encode_unixfs_file(None, 5, [5]))
    # Links come before Data, and the empty Name is written (12 00).
    assert (
        encoded.hex()
        == "12" + "29" + "0a22" + "1220" + "ab" * 32 + "1200" + "18ac02" + "0a06" + "080218052005"
    )
    node = decode_pbnode(encoded)
    assert node.links == (link,)
    assert decode_unixfs(node.data or b"").blocksizes == (5,)
    # The importer's fast leaf path writes exactly the generic encoding.
    blocks: dict[Cid, bytes] = {}
    importer = FileImporter(V0, on_block=blocks.__setitem__)
    importer.update(b"hello world\n")
    cid = importer.finish()
    assert blocks[cid] == encode_pbnode((), encode_unixfs_file(b"hello world\n", 12))


# ---------------------------------------------------------------------------- verified reader


def _blocks_of(data: bytes, options: ImportOptions) -> tuple[Cid, dict[Cid, bytes]]:
    blocks: dict[Cid, bytes] = {}
    importer = FileImporter(options, on_block=blocks.__setitem__)
    importer.update(data)
    return importer.finish(), blocks


@pytest.mark.parametrize(
    "options", [V0, V1, ImportOptions(chunk_size=1000, max_links=3)], ids=["v0", "v1", "deep"]
)
def test_reader_rebuilds_the_file_from_its_blocks(options: ImportOptions) -> None:
    data = deterministic(700_000, "reader")
    root, blocks = _blocks_of(data, options)
    assert read_file(root, blocks.__getitem__) == data


def test_reader_refuses_a_tampered_leaf() -> None:
    data = deterministic(700_000, "reader")
    root, blocks = _blocks_of(data, V1)
    leaf = next(c for c in blocks if c.codec == RAW)
    blocks[leaf] = b"\0" + blocks[leaf][1:]
    with pytest.raises(ContentMismatch) as info:
        read_file(root, blocks.__getitem__)
    assert info.value.cid == str(root)
    assert info.value.expected == str(leaf)
    assert str(leaf) in str(info.value)


def test_reader_stops_at_max_bytes() -> None:
    data = deterministic(700_000, "reader")
    root, blocks = _blocks_of(data, V0)
    with pytest.raises(ContentTooLarge):
        read_file(root, blocks.__getitem__, max_bytes=300_000)


def test_reader_refuses_a_directory() -> None:
    directory = encode_pbnode((), bytes.fromhex("0801"))  # UnixFS Type: Directory
    cid = Cid.of_block(directory, codec=DAG_PB, version=0)
    assert str(cid) == "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"  # the well-known empty directory
    with pytest.raises(StorageError, match="directory, not a file"):
        read_file(cid, {cid: directory}.__getitem__)


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        ImportOptions(chunk_size=2 * MIB)
    with pytest.raises(ValueError, match="max_links"):
        ImportOptions(max_links=1)
    assert (
        ImportOptions(cid_version=1).describe() == "--cid-version=1 --raw-leaves=true --chunker=size-262144"
    )
