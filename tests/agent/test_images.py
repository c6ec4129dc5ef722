"""The locally built busybox image: reproducible rootfs, idempotent build, pinned by ID."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from agent.images import BUSYBOX_BINARY, LABEL_ROOTFS, busybox_rootfs, busybox_version, ensure_busybox_image
from ascendnet.errors import ToolchainMissing


def _need_busybox() -> None:
    if not BUSYBOX_BINARY.is_file():
        pytest.skip("busybox-static is not installed (make setup installs it)")


def _text(tar: bytes, name: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        member = archive.extractfile(name)
        assert member is not None
        return member.read().decode()


def test_rootfs_is_reproducible_and_has_applets() -> None:
    _need_busybox()
    first, second = busybox_rootfs(), busybox_rootfs()
    assert first.tar == second.tar
    with tarfile.open(fileobj=io.BytesIO(first.tar)) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert members["bin/busybox"].mode == 0o755
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
    assert "nobody:x:65534:65534" in _text(first.tar, "etc/passwd")


def test_missing_busybox_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ToolchainMissing, match="make setup"):
        busybox_version(tmp_path / "busybox")


def test_build_is_idempotent_and_pinned_by_id(docker_client: Any) -> None:
    _need_busybox()
    first = ensure_busybox_image(docker_client)
    again = ensure_busybox_image(docker_client)
    assert again.id == first.id and again.built is False
    assert first.id.startswith("sha256:") and first.tag == f"ascendnet/busybox:{busybox_version()}"
    image = docker_client.images.get(first.id)
    assert image.labels[LABEL_ROOTFS] == first.rootfs_sha256 == busybox_rootfs().hexdigest
    assert first.tag in image.tags
