"""Deterministic output packing: the same tree always gives the same tar bytes, hence the same
on-chain resultHash, and nothing unsafe gets into it. Pure Python, no docker."""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import OutputTooLarge, UnsafeOutput
from agent.packing import Entry, EntryKind, entries_from_tar, pack, pack_directory

# The canonical tar of this tree must never change: its sha256 is what providers post on-chain,
# and a verifier re-packing the same files with another agent version must get the same hash.
GOLDEN_TREE = [
    Entry.file("result.json", b'{"answer": 42}\n'),
    Entry.file("bin/run.sh", b"#!/bin/sh\necho hi\n", executable=True),
    Entry.symlink("latest", "result.json"),
    Entry.dir("empty"),
]
GOLDEN_SHA256 = "29d8cf180831607d5961404901c323e58b5e98e4928e82525a8c1b676936fe71"


def _write_tree(root: Path, order: list[int], mtime: int, umask: int) -> None:
    """The same content, created in a given order, with given mtimes and umask."""

    def put(rel: str, data: bytes) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)

    def link(rel: str, target: str) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / rel)

    steps = [
        lambda: (root / "a/b").mkdir(parents=True, exist_ok=True),
        lambda: (root / "z").mkdir(exist_ok=True),
        lambda: (root / "empty").mkdir(exist_ok=True),
        lambda: put("top.txt", b"top\n"),
        lambda: put("a/b/deep.bin", bytes(range(256)) * 9),
        lambda: put("z/tool", b"#!/bin/sh\n"),
        lambda: link("z/link", "tool"),
    ]
    old = os.umask(umask)
    try:
        for i in order:
            steps[i]()
    finally:
        os.umask(old)
    (root / "z/tool").chmod(0o700 if umask else 0o755)  # any execute bit packs as 0755
    for path in [*root.rglob("*"), root]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)


def test_same_tree_same_bytes_whatever_the_order_mtimes_and_umask(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _write_tree(first, [0, 1, 2, 3, 4, 5, 6], mtime=1_700_000_000, umask=0o022)
    _write_tree(second, [6, 5, 4, 3, 2, 1, 0], mtime=86_400, umask=0o077)
    a, b = pack_directory(first), pack_directory(second)
    assert a.tar == b.tar
    assert a.digest == b.digest and len(a.digest) == 32
    assert a.result_hash == "0x" + a.hexdigest


def test_different_content_different_hash(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"1")
    one = pack_directory(tmp_path)
    (tmp_path / "f").write_bytes(b"2")
    assert pack_directory(tmp_path).digest != one.digest


def test_headers_are_normalised_and_sorted() -> None:
    packed = pack(
        [
            Entry.file("b/2.txt", b"two"),
            Entry.file("a.sh", b"#!", executable=True),
            Entry.file("b/1.txt", b"one"),
            Entry.symlink("b/link", "1.txt"),
        ]
    )
    with tarfile.open(fileobj=io.BytesIO(packed.tar)) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == ["a.sh", "b", "b/1.txt", "b/2.txt", "b/link"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    modes = {m.name: (m.type, m.mode) for m in members}
    assert modes == {
        "a.sh": (tarfile.REGTYPE, 0o755),
        "b": (tarfile.DIRTYPE, 0o755),
        "b/1.txt": (tarfile.REGTYPE, 0o644),
        "b/2.txt": (tarfile.REGTYPE, 0o644),
        "b/link": (tarfile.SYMTYPE, 0o777),
    }
    assert packed.tar.endswith(b"\x00" * 1024) and len(packed.tar) % 512 == 0
    assert packed.entries == 5


def test_golden_hash_is_stable() -> None:
    assert pack(GOLDEN_TREE).hexdigest == GOLDEN_SHA256


def test_gnu_tar_reads_it(tmp_path: Path) -> None:
    if shutil.which("tar") is None:
        pytest.skip("no tar binary")
    packed = pack([*GOLDEN_TREE, Entry.file("n/" + "é" * 70 + "/x", b"long")])
    listing = subprocess.run(["tar", "-tvf", "-"], input=packed.tar, capture_output=True, check=True)
    assert b"latest -> result.json" in listing.stdout
    assert ("n/" + "é" * 70 + "/x").encode() in listing.stdout
    subprocess.run(["tar", "-xf", "-", "-C", str(tmp_path)], input=packed.tar, check=True)
    assert (tmp_path / "result.json").read_bytes() == b'{"answer": 42}\n'
    assert pack_directory(tmp_path).tar == packed.tar  # what GNU tar unpacks packs back identically


@pytest.mark.parametrize(
    "path", ["", "/abs", "a/../b", "..", "a//b", "./a", "a/.", "nul\x00byte", "bad-\udcff-utf8"]
)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafeOutput):
        pack([Entry.file(path, b"x")])


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside", "a/../../../x", "", "../../.."])
def test_escaping_symlinks_are_refused(target: str) -> None:
    with pytest.raises(UnsafeOutput, match="symlink"):
        pack([Entry.symlink("d/link", target)])


def test_symlinks_inside_are_stored_not_followed(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d/real").write_bytes(b"data")
    os.symlink("../d/real", tmp_path / "d/up-and-back")
    os.symlink("real", tmp_path / "d/same")
    os.symlink("nowhere", tmp_path / "dangling")  # harmless: it points inside the tree
    packed = pack_directory(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(packed.tar)) as archive:
        links = {m.name: m.linkname for m in archive.getmembers() if m.issym()}
    assert links == {"d/up-and-back": "../d/real", "d/same": "real", "dangling": "nowhere"}


def test_directory_with_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UnsafeOutput, match="only regular files"):
        pack_directory(tmp_path)


def test_conflicting_entries_are_refused() -> None:
    with pytest.raises(UnsafeOutput, match="twice"):
        pack([Entry.file("a", b"1"), Entry.file("a", b"2")])
    with pytest.raises(UnsafeOutput, match="not a directory"):
        pack([Entry.file("a", b"1"), Entry.file("a/b", b"2")])


def test_missing_parents_are_added() -> None:
    packed = pack([Entry.file("x/y/z", b"")])
    names = [e.path for e in entries_from_tar([packed.tar])]
    assert names == ["x", "x/y", "x/y/z"]
    assert packed.tar == pack([Entry.dir("x"), Entry.dir("x/y"), Entry.file("x/y/z", b"")]).tar


@pytest.mark.parametrize("length", [*range(95, 106), *range(985, 1010), 4000])
def test_long_names_round_trip_through_pax(length: int) -> None:
    name = ("d/" + "n" * length)[:length]
    packed = pack([Entry.file(name, b"x"), Entry.symlink("l", name)])
    with tarfile.open(fileobj=io.BytesIO(packed.tar)) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert name in members and members["l"].linkname == name
    assert pack(entries_from_tar([packed.tar])).tar == packed.tar


def _foreign_tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _info(
    name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "", mode: int = 0o600
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mode = kind, size, link, mode
    info.mtime, info.uid, info.uname = 1_234_567, 1000, "someone"
    return info


def test_foreign_tar_is_canonicalised_with_its_root_stripped() -> None:
    raw = _foreign_tar(
        [
            (_info("outputs", tarfile.DIRTYPE, mode=0o700), None),
            (_info("outputs/b.txt", size=2, mode=0o600), b"hi"),
            (_info("outputs/a.txt", tarfile.LNKTYPE, link="outputs/b.txt"), None),
            (_info("outputs/s", tarfile.SYMTYPE, link="b.txt"), None),
        ]
    )
    entries = entries_from_tar([raw[i : i + 333] for i in range(0, len(raw), 333)], root="outputs")
    assert (
        pack(entries).tar
        == pack([Entry.file("a.txt", b"hi"), Entry.file("b.txt", b"hi"), Entry.symlink("s", "b.txt")]).tar
    )


@pytest.mark.parametrize(
    "member",
    [
        _info("outputs/dev", tarfile.CHRTYPE),
        _info("outputs/fifo", tarfile.FIFOTYPE),
        _info("outputs/../escape", size=0),
        _info("elsewhere/x", size=0),
        _info("outputs/link", tarfile.SYMTYPE, link="/etc/shadow"),
        _info("outputs/hard", tarfile.LNKTYPE, link="/etc/shadow"),
    ],
    ids=["device", "fifo", "dotdot", "outside-root", "abs-symlink", "hardlink-outside"],
)
def test_unsafe_tar_members_are_refused(member: tarfile.TarInfo) -> None:
    raw = _foreign_tar([(_info("outputs", tarfile.DIRTYPE), None), (member, None)])
    with pytest.raises(UnsafeOutput):
        pack(entries_from_tar([raw], root="outputs"))


def test_reading_stops_at_max_bytes() -> None:
    raw = pack([Entry.file("big", b"\x00" * 100_000)]).tar
    with pytest.raises(OutputTooLarge) as info:
        entries_from_tar([raw[i : i + 4096] for i in range(0, len(raw), 4096)], max_bytes=50_000)
    assert info.value.limit == 50_000
    assert len(entries_from_tar([raw], max_bytes=len(raw))) == 1


def test_garbage_is_refused() -> None:
    with pytest.raises(UnsafeOutput, match="malformed"):
        entries_from_tar([b"this is not a tar archive" * 40])


_names = st.text(alphabet="abcXYZ019._-é", min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
_trees = st.dictionaries(
    st.lists(_names, min_size=1, max_size=3).map("/".join),
    st.tuples(st.binary(max_size=700), st.booleans()),
    max_size=12,
)


def _consistent(tree: dict[str, tuple[bytes, bool]]) -> list[Entry]:
    """Drop files that would be the parent of another file."""
    paths = sorted(tree)
    keep = [p for p in paths if not any(q.startswith(p + "/") for q in paths)]
    return [Entry.file(p, tree[p][0], executable=tree[p][1]) for p in keep]


@settings(max_examples=150, deadline=None)
@given(_trees, st.randoms(use_true_random=False))
def test_any_tree_packs_identically_in_any_order_and_round_trips(
    tree: dict[str, tuple[bytes, bool]], rnd: random.Random
) -> None:
    entries = _consistent(tree)
    shuffled = entries[:]
    rnd.shuffle(shuffled)
    packed = pack(entries)
    assert pack(shuffled).tar == packed.tar
    back = entries_from_tar([packed.tar])
    assert pack(back).tar == packed.tar
    files = {e.path: (e.data, e.executable) for e in back if e.kind is EntryKind.FILE}
    assert files == {e.path: (e.data, e.executable) for e in entries}
