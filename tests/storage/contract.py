"""The behaviour every content store backend must have, written once and run against each
backend (test_local.py, test_kubo.py subclass it and provide the `store` fixtures)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ascendnet.errors import AscendNetError
from ascendnet.storage import (
    Cid,
    ContentMismatch,
    ContentNotFound,
    ContentStore,
    ContentTooLarge,
    ImportOptions,
    InvalidCid,
    compute_cid,
)

# `echo "hello world" | ipfs add` (the go-ipfs README's first example) and its CIDv1 form.
HELLO = b"hello world\n"
HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
# `ipfs add --cid-version 1` of "hello world" (kubo test/cli/add_test.go, shortStringCidV1).
HELLO_NO_NL_V1 = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
# A CID nobody stored in these tests: the empty directory.
ABSENT = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"


def payload(size: int, seed: bytes = b"payload") -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


class ContentStoreContract:
    """Subclasses provide fixtures `store` (CIDv0, Kubo defaults) and `store_v1` (CIDv1)."""

    def test_put_returns_the_cid_ipfs_add_prints(self, store: ContentStore) -> None:
        assert store.put(HELLO) == HELLO_V0

    def test_cidv1_store_returns_the_cid_of_ipfs_add_cid_version_1(self, store_v1: ContentStore) -> None:
        assert store_v1.put(b"hello world") == HELLO_NO_NL_V1
        assert store_v1.get(HELLO_NO_NL_V1) == b"hello world"

    def test_round_trip_of_a_multi_chunk_file(self, store: ContentStore) -> None:
        data = payload(700_000)  # three 256 KiB chunks
        cid = store.put(data)
        assert cid == str(compute_cid(data))
        assert store.get(cid) == data

    def test_put_twice_gives_the_same_cid(self, store: ContentStore) -> None:
        assert store.put(b"same bytes") == store.put(b"same bytes")

    def test_has_tells_stored_from_unknown(self, store: ContentStore) -> None:
        assert not store.has(HELLO_V0)
        store.put(HELLO)
        assert store.has(HELLO_V0)
        assert not store.has(ABSENT)

    def test_cidv0_and_its_cidv1_name_the_same_content(self, store: ContentStore) -> None:
        cid = store.put(HELLO)
        v1 = str(Cid.parse(cid).to_v1())
        assert v1.startswith("bafybei")
        assert store.get(v1) == HELLO

    def test_expected_sha256_is_checked(self, store: ContentStore) -> None:
        cid = store.put(HELLO)
        assert store.get(cid, sha256=hashlib.sha256(HELLO).digest()) == HELLO
        wrong = hashlib.sha256(b"something else").digest()
        with pytest.raises(ContentMismatch) as info:
            store.get(cid, sha256=wrong)
        err = info.value
        assert isinstance(err, AscendNetError)
        assert err.kind == "sha256"
        assert err.cid == cid
        assert err.expected == "0x" + wrong.hex()
        assert err.actual == "0x" + hashlib.sha256(HELLO).hexdigest()
        assert cid in str(err) and wrong.hex() in str(err) and hashlib.sha256(HELLO).hexdigest() in str(err)

    def test_unknown_cid_is_not_found(self, store: ContentStore) -> None:
        with pytest.raises(ContentNotFound) as info:
            store.get(ABSENT)
        assert info.value.cid == ABSENT

    def test_malformed_cid_is_refused(self, store: ContentStore) -> None:
        for bad in ("", "QmNotACid", "Qm" + "0" * 44, "zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA"):
            with pytest.raises(InvalidCid):
                store.get(bad)

    def test_max_bytes_refuses_larger_content(self, store: ContentStore) -> None:
        data = payload(300_000)
        cid = store.put(data)
        with pytest.raises(ContentTooLarge) as info:
            store.get(cid, max_bytes=1000)
        assert info.value.limit == 1000
        assert store.get(cid, max_bytes=len(data)) == data

    def test_put_file_gives_the_same_cid_as_put(self, store: ContentStore, tmp_path: Path) -> None:
        data = payload(600_000, b"file")
        source = tmp_path / "input.bin"
        source.write_bytes(data)
        cid = store.put_file(source)
        assert cid == str(compute_cid(data, ImportOptions()))
        assert store.get(cid) == data

    def test_get_to_file_writes_verified_content(self, store: ContentStore, tmp_path: Path) -> None:
        cid = store.put(HELLO)
        target = store.get_to_file(cid, tmp_path / "out" / "hello.txt", sha256=hashlib.sha256(HELLO).digest())
        assert target.read_bytes() == HELLO

    def test_get_to_file_writes_nothing_when_the_hash_differs(
        self, store: ContentStore, tmp_path: Path
    ) -> None:
        cid = store.put(HELLO)
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(ContentMismatch):
            store.get_to_file(cid, out / "hello.txt", sha256=b"\0" * 32)
        assert list(out.iterdir()) == []  # neither the file nor a temporary one
