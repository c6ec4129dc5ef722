"""The embedded default backend: a content-addressed directory whose CIDs equal Kubo's.

Layout under the root (usually ``<data dir>/content``)::

    <root>/<d0d1>/<d2d3>/<CIDv1>    one file per stored content, named by its CIDv1
    <root>/.tmp/                    files being written; renamed into place when complete

``d0d1d2d3`` are the first hex digits of the CID's sha2-256 digest, so no directory grows past
65536 entries. A CIDv0 and its CIDv1 (same dag-pb digest) name the same file.

Writes go to ``.tmp`` first, are fsynced and then renamed (``os.replace``) into place, so a crash
or a full disk never leaves a partial file under a CID. Reads hash the bytes again and refuse them
if they do not produce the CID asked for; a corrupt file is moved aside to ``<name>.corrupt``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from ascendnet.log import get_logger
from ascendnet.storage.base import ContentStore, check_sha256, fsync_dir
from ascendnet.storage.cid import Cid
from ascendnet.storage.errors import ContentMismatch, ContentNotFound, ContentTooLarge
from ascendnet.storage.unixfs import FileImporter, ImportOptions, bytes_match_cid, compute_cid

log = get_logger(__name__)

#: Temporary files older than this are left over from a crashed writer and swept on open.
STALE_TEMP_SECONDS = 3600
_COPY_CHUNK = 1 << 20


class LocalContentStore(ContentStore):
    """Content-addressed files under `root`; CIDs computed as `ipfs add` would under `options`
    (default: Kubo's defaults, CIDv0)."""

    name = "local"

    def __init__(self, root: str | os.PathLike[str], options: ImportOptions | None = None) -> None:
        self.root = Path(root)
        self.options = options or ImportOptions()
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._sweep_stale_temp_files()

    def __repr__(self) -> str:
        return f"LocalContentStore({str(self.root)!r}, {self.options.describe()!r})"

    def path_for(self, cid: str | Cid) -> Path:
        """Where the content of `cid` lives (whether or not it is there)."""
        parsed = cid if isinstance(cid, Cid) else Cid.parse(cid)
        digest = parsed.digest.hex()
        return self.root / digest[:2] / digest[2:4] / str(parsed.to_v1())

    # ------------------------------------------------------------------------ writing

    def put(self, data: bytes) -> str:
        cid = compute_cid(data, self.options)
        target = self.path_for(cid)
        if not self._holds(target, len(data)):
            self._install(target, data)
            log.debug("storage.put", store=self.name, cid=str(cid), size=len(data))
        return str(cid)

    def put_file(self, path: str | os.PathLike[str]) -> str:
        # One pass over the source: hash it while copying it into .tmp, then rename into place.
        importer = FileImporter(self.options)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                while piece := src.read(_COPY_CHUNK):
                    importer.update(piece)
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            cid = importer.finish()
            target = self.path_for(cid)
            if self._holds(target, importer.size):
                Path(tmp).unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
                fsync_dir(target.parent)
                log.debug("storage.put", store=self.name, cid=str(cid), size=importer.size)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(cid)

    def _holds(self, target: Path, size: int) -> bool:
        try:
            return target.stat().st_size == size
        except FileNotFoundError:
            return False

    def _install(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(target.parent)

    # ------------------------------------------------------------------------ reading

    def get(self, cid: str, *, sha256: bytes | None = None, max_bytes: int | None = None) -> bytes:
        parsed = Cid.parse(cid)
        target = self.path_for(parsed)
        try:
            with open(target, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if max_bytes is not None and size > max_bytes:
                    raise ContentTooLarge(cid, limit=max_bytes, size=size)
                data = f.read()
        except FileNotFoundError:
            raise ContentNotFound(cid, f"the local store {self.root}") from None
        actual = bytes_match_cid(parsed, data, self.options)
        if actual is not None:
            self._quarantine(target, cid)
            raise ContentMismatch(cid, kind="cid", expected=cid, actual=str(actual))
        check_sha256(cid, data, sha256)
        return data

    def has(self, cid: str) -> bool:
        return self.path_for(cid).is_file()

    def _quarantine(self, target: Path, cid: str) -> None:
        aside = target.with_name(target.name + ".corrupt")
        try:
            os.replace(target, aside)
        except OSError:
            aside = target
        log.warning("storage.corrupt", store=self.name, cid=cid, moved_to=str(aside))

    def _sweep_stale_temp_files(self) -> None:
        cutoff = time.time() - STALE_TEMP_SECONDS
        for leftover in self._tmp.glob(".tmp-*.part"):
            try:
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
            except FileNotFoundError:
                pass
