"""The IPFS backend: a Kubo node through its RPC API (``ipfshttpclient``).

Writes use ``/api/v0/add`` with explicit import flags, and the CID the node answers is checked
against the CID computed locally for the same bytes, so the two backends always agree. Reads do
not trust the node: they fetch the file's blocks one by one (``/api/v0/block/get``) and check each
against its CID before reassembling the file (`ascendnet.storage.unixfs.read_file`).

NOTE: ipfshttpclient 0.7.0, the last release, refuses every daemon from 0.8.0 on in its
`connect()` (``VERSION_MAXIMUM = "0.8.0"``), that is every Kubo since 2021. Its documentation
says to instantiate `ipfshttpclient.Client` directly to skip that check, which is what this
backend does; `version()` still asks the node for its version and reports unreachable nodes.
The endpoints used here (version, add, block/get, block/stat) have been stable across those
releases. The unit tests drive this adapter against a fake RPC server (tests/storage), since no
Kubo binary is available offline.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipfshttpclient
from ipfshttpclient import exceptions as ipfs_errors

from ascendnet.log import get_logger
from ascendnet.storage.base import ContentStore, check_sha256
from ascendnet.storage.cid import Cid
from ascendnet.storage.errors import ContentNotFound, StorageError, StoreUnavailable
from ascendnet.storage.unixfs import DEFAULT_MAX_LINKS, FileImporter, ImportOptions, compute_cid, read_file

# NOTE: ipfshttpclient passes `strict=` to urllib3, which warns about it on every new connection.
warnings.filterwarnings(
    "ignore", message=r"The 'strict' parameter is no longer needed", category=FutureWarning
)

log = get_logger(__name__)

#: Kubo's default RPC address.
DEFAULT_API = "/ip4/127.0.0.1/tcp/5001/http"
_HINT = "Is the Kubo daemon running (`ipfs daemon`) and is its RPC address right? Or use the local backend."


class ImportMismatch(StorageError):
    """The node built a different CID than the local computation for the same bytes and flags:
    its import settings (e.g. ``Import.UnixFSFileMaxLinks``) differ from this store's."""

    def __init__(self, *, node_cid: str, local_cid: str, flags: str) -> None:
        self.node_cid = node_cid
        self.local_cid = local_cid
        self.flags = flags
        super().__init__(
            f"the Kubo node stored the content as {node_cid}, but `ipfs add {flags}` gives {local_cid}. "
            "Align the node's Import settings with the store's options, or use the local backend."
        )


class KuboContentStore(ContentStore):
    """Content on a Kubo node reached at the multiaddr `api`, added with `options`."""

    name = "kubo"

    def __init__(
        self,
        api: str = DEFAULT_API,
        *,
        options: ImportOptions | None = None,
        timeout: float = 60.0,
        client: Any = None,
    ) -> None:
        self.api = api
        self.options = options or ImportOptions()
        self.timeout = timeout
        try:
            self._client = client or ipfshttpclient.Client(api, session=True, timeout=timeout)
        except ipfs_errors.AddressError as exc:
            raise StoreUnavailable(f"kubo at {api}", f"not a usable multiaddr ({exc})") from None

    def __repr__(self) -> str:
        return f"KuboContentStore({self.api!r}, {self.options.describe()!r})"

    @contextlib.contextmanager
    def _rpc(self, cid: str | None = None) -> Iterator[None]:
        """Map ipfshttpclient's errors onto the store's."""
        where = f"the Kubo node at {self.api}"
        try:
            yield
        except ipfs_errors.TimeoutError as exc:
            if cid is not None:
                raise ContentNotFound(cid, where, f"not retrievable within {self.timeout:g} s") from None
            raise StoreUnavailable(f"kubo at {self.api}", f"timed out ({exc})", _HINT) from None
        except (ipfs_errors.ConnectionError, ipfs_errors.ProtocolError) as exc:
            raise StoreUnavailable(f"kubo at {self.api}", str(exc), _HINT) from None
        except ipfs_errors.ErrorResponse as exc:
            message = str(exc)
            if cid is not None and "not found" in message.lower():
                raise ContentNotFound(cid, where, message) from None
            raise StorageError(f"{where} refused the request: {message}") from None
        except ipfs_errors.Error as exc:
            raise StoreUnavailable(f"kubo at {self.api}", str(exc), _HINT) from None

    def version(self) -> str:
        """The node's version, e.g. ``"0.32.1"``. Raises StoreUnavailable if it does not answer."""
        with self._rpc():
            info = self._client.version()
        try:
            return str(info["Version"])
        except (TypeError, KeyError):
            raise StoreUnavailable(f"kubo at {self.api}", f"/version answered {info!r}", _HINT) from None

    def _add_opts(self) -> dict[str, str]:
        opts = {
            "cid-version": str(self.options.cid_version),
            "raw-leaves": "true" if self.options.leaves_are_raw else "false",
            "chunker": f"size-{self.options.chunk_size}",
            "pin": "true",
        }
        if self.options.max_links != DEFAULT_MAX_LINKS:
            opts["max-file-links"] = str(self.options.max_links)
        return opts

    def _check_node_cid(self, node_cid: str, local: Cid) -> str:
        if node_cid != str(local):
            raise ImportMismatch(node_cid=node_cid, local_cid=str(local), flags=self.options.describe())
        return node_cid

    def put(self, data: bytes) -> str:
        with self._rpc():
            node_cid = self._client.add_bytes(data, opts=self._add_opts())
        cid = self._check_node_cid(str(node_cid), compute_cid(data, self.options))
        log.debug("storage.put", store=self.name, cid=cid, size=len(data))
        return cid

    def put_file(self, path: str | os.PathLike[str]) -> str:
        importer = FileImporter(self.options)
        with open(path, "rb") as src:
            while piece := src.read(1 << 20):
                importer.update(piece)
        local = importer.finish()
        extra = {k: v for k, v in self._add_opts().items() if k == "max-file-links"}
        with self._rpc():
            answer = self._client.add(
                Path(path),
                cid_version=self.options.cid_version,
                raw_leaves=self.options.leaves_are_raw,
                chunker=f"size-{self.options.chunk_size}",
                pin=True,
                opts=extra,
            )
        return self._check_node_cid(str(answer["Hash"]), local)

    def get(self, cid: str, *, sha256: bytes | None = None, max_bytes: int | None = None) -> bytes:
        root = Cid.parse(cid)

        def block(c: Cid) -> bytes:
            with self._rpc(cid):
                return bytes(self._client.block.get(str(c)))

        data = read_file(root, block, max_bytes=max_bytes)
        check_sha256(cid, data, sha256)
        return data

    def has(self, cid: str) -> bool:
        Cid.parse(cid)
        try:
            # offline: answer from the node's own blockstore, never from the network.
            with self._rpc(cid):
                self._client.block.stat(cid, offline=True)
        except ContentNotFound:
            return False
        return True

    def close(self) -> None:
        self._client.close()
