"""LocalContentStore: the shared contract, plus what only a directory on disk can get wrong
(partial writes, crashes, corruption at rest)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ascendnet.storage import ContentMismatch, ImportOptions, LocalContentStore, compute_cid
from ascendnet.storage.local import STALE_TEMP_SECONDS
from tests.storage.contract import HELLO, HELLO_V0, ContentStoreContract, payload


@pytest.fixture()
def store(tmp_path: Path) -> LocalContentStore:
    return LocalContentStore(tmp_path / "content")


@pytest.fixture()
def store_v1(tmp_path: Path) -> LocalContentStore:
    return LocalContentStore(tmp_path / "content-v1", ImportOptions(cid_version=1))


class TestLocalContentStore(ContentStoreContract):
    pass


def test_content_survives_reopening_the_store(tmp_path: Path) -> None:
    cid = LocalContentStore(tmp_path / "c").put(HELLO)
    assert LocalContentStore(tmp_path / "c").get(cid) == HELLO


def test_files_are_sharded_by_digest_and_named_by_cidv1(store: LocalContentStore) -> None:
    cid = store.put(HELLO)
    path = store.path_for(cid)
    assert path.read_bytes() == HELLO
    rel = path.relative_to(store.root).parts
    assert len(rel) == 3 and len(rel[0]) == 2 and len(rel[1]) == 2
    assert rel[2].startswith("bafybei")


def test_no_temporary_files_are_left_behind(store: LocalContentStore, tmp_path: Path) -> None:
    store.put(payload(500_000))
    source = tmp_path / "src.bin"
    source.write_bytes(payload(400_000, b"x"))
    store.put_file(source)
    assert list((store.root / ".tmp").iterdir()) == []


def test_a_crash_before_the_rename_leaves_no_content(
    store: LocalContentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put(HELLO)
    monkeypatch.undo()
    assert not store.has(HELLO_V0)
    assert list((store.root / ".tmp").iterdir()) == []
    # The next put writes it properly.
    assert store.put(HELLO) == HELLO_V0
    assert store.get(HELLO_V0) == HELLO


def test_stale_temporary_files_are_swept_on_open(tmp_path: Path) -> None:
    store = LocalContentStore(tmp_path / "c")
    stale = store.root / ".tmp" / ".tmp-crashed.part"
    fresh = store.root / ".tmp" / ".tmp-writing.part"
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"being written")
    old = time.time() - STALE_TEMP_SECONDS - 10
    os.utime(stale, (old, old))
    LocalContentStore(tmp_path / "c")
    assert not stale.exists()
    assert fresh.exists()


def test_corruption_at_rest_is_detected_and_moved_aside(store: LocalContentStore) -> None:
    cid = store.put(HELLO)
    path = store.path_for(cid)
    path.write_bytes(b"hello w0rld\n")  # same size, one byte flipped
    with pytest.raises(ContentMismatch) as info:
        store.get(cid)
    assert info.value.kind == "cid"
    assert info.value.expected == cid
    assert info.value.actual == str(compute_cid(b"hello w0rld\n"))
    assert not store.has(cid)
    assert path.with_name(path.name + ".corrupt").exists()
    # Putting the content again repairs the store.
    assert store.put(HELLO) == cid
    assert store.get(cid) == HELLO


def test_truncated_file_is_not_served(store: LocalContentStore) -> None:
    data = payload(300_000)
    cid = store.put(data)
    store.path_for(cid).write_bytes(data[:100_000])
    with pytest.raises(ContentMismatch):
        store.get(cid)


def test_a_store_with_non_default_chunks_verifies_its_own_cids(tmp_path: Path) -> None:
    options = ImportOptions(chunk_size=65_536, max_links=4)
    store = LocalContentStore(tmp_path / "c", options)
    data = payload(1_000_000)
    cid = store.put(data)
    assert cid == str(compute_cid(data, options))
    assert cid != str(compute_cid(data))
    assert store.get(cid) == data
