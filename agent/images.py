"""Local images, built without a registry: `ascendnet/busybox:<version>`.

The image is a `docker import` of a tiny root filesystem made from Debian's busybox-static
(`/bin/busybox`, installed by `make setup`): the binary, a symlink per applet, /etc/passwd and
/etc/group naming `nobody` (65534), and an empty /tmp. The rootfs is packed with the canonical tar of
agent/packing.py, so the same busybox binary always gives the same rootfs sha256; that hash is a
label on the image, and building again is a no-op while an image with the label exists.

The sandbox uses this image for the container that holds a job's /outputs (see agent/sandbox.py);
the tests and benchmarks run their jobs in it. Pin it by the returned ID: `docker import` stamps a
creation time, so the ID differs between hosts even when the rootfs hash is the same.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.packing import Entry, PackedOutput, pack
from ascendnet.errors import ToolchainMissing
from ascendnet.log import get_logger

log = get_logger("agent.images")

BUSYBOX_BINARY = Path("/bin/busybox")
BUSYBOX_REPOSITORY = "ascendnet/busybox"
LABEL_ROOTFS = "ascendnet.rootfs.sha256"
LABEL_IMAGE = "ascendnet.image"

_PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = b"root:x:0:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class LocalImage:
    """An image in the local engine. `id` ("sha256:...") is what to pin."""

    id: str
    tag: str
    rootfs_sha256: str
    built: bool  # False when an image with the same rootfs already existed


def _busybox(binary: Path, *args: str) -> str:
    if not binary.is_file():
        raise ToolchainMissing(f"busybox-static ({binary})", "make setup")
    return subprocess.run([str(binary), *args], check=True, capture_output=True, text=True).stdout


def busybox_version(binary: Path = BUSYBOX_BINARY) -> str:
    """The version of a busybox binary, e.g. "1.35.0"."""
    match = re.search(r"BusyBox v(\d+(?:\.\d+)+)", _busybox(binary, "--help"))
    if match is None:
        raise ToolchainMissing(f"busybox-static ({binary})", "make setup")
    return match.group(1)


def busybox_rootfs(binary: Path = BUSYBOX_BINARY) -> PackedOutput:
    """The canonical rootfs tar: /bin/busybox, /bin/<applet> -> busybox, /etc/{passwd,group}, /tmp."""
    applets = sorted(set(_busybox(binary, "--list").split()) - {"busybox"})
    entries = [
        Entry.file("bin/busybox", binary.read_bytes(), executable=True),
        *(Entry.symlink(f"bin/{name}", "busybox") for name in applets if "/" not in name),
        Entry.symlink("usr/bin/env", "../../bin/busybox"),
        Entry.file("etc/passwd", _PASSWD),
        Entry.file("etc/group", _GROUP),
        Entry.dir("tmp"),
    ]
    return pack(entries)


def ensure_busybox_image(client: Any, binary: Path = BUSYBOX_BINARY) -> LocalImage:
    """Build `ascendnet/busybox:<version>` unless an image of the same rootfs exists; return it."""
    version = busybox_version(binary)
    rootfs = busybox_rootfs(binary)
    tag = f"{BUSYBOX_REPOSITORY}:{version}"
    existing = sorted(
        client.images.list(filters={"label": f"{LABEL_ROOTFS}={rootfs.hexdigest}"}), key=lambda i: i.id
    )
    if existing:
        image = existing[0]
        if tag not in image.tags:
            image.tag(BUSYBOX_REPOSITORY, version)
        return LocalImage(id=image.id, tag=tag, rootfs_sha256=rootfs.hexdigest, built=False)
    client.api.import_image_from_data(
        rootfs.tar,
        repository=BUSYBOX_REPOSITORY,
        tag=version,
        changes=[
            "ENV PATH=/bin",
            'CMD ["/bin/sh"]',
            f"LABEL {LABEL_ROOTFS}={rootfs.hexdigest}",
            f"LABEL {LABEL_IMAGE}=busybox",
        ],
    )
    image = client.images.get(tag)
    log.info("image.built", tag=tag, image_id=image.id, rootfs_sha256=rootfs.hexdigest)
    return LocalImage(id=image.id, tag=tag, rootfs_sha256=rootfs.hexdigest, built=True)
