"""Choosing and opening a content store from settings.

`StorageConfig` is a plain pydantic model so that each deployable's settings can nest it (for
example ``ASCENDNET_STORAGE__BACKEND=kubo`` with a ``__`` nested delimiter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ascendnet.storage.base import ContentStore
from ascendnet.storage.unixfs import ImportOptions


class StorageConfig(BaseModel):
    """Which content store to use and how it computes CIDs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["local", "kubo"] = Field(
        "local", description="local: a directory under the data dir (default); kubo: an IPFS node."
    )
    kubo_api: str = Field(
        "/ip4/127.0.0.1/tcp/5001/http", description="Multiaddr of the Kubo RPC API (kubo backend)."
    )
    kubo_timeout_seconds: float = Field(60.0, gt=0, description="Per-request timeout towards Kubo.")
    cid_version: Literal[0, 1] = Field(
        0, description="0: CIDv0 as plain `ipfs add`; 1: as `ipfs add --cid-version 1` (raw leaves)."
    )

    def import_options(self) -> ImportOptions:
        return ImportOptions(cid_version=self.cid_version)


def open_store(config: StorageConfig, data_dir: Path) -> ContentStore:
    """The content store `config` names; the local one lives in ``<data_dir>/content``."""
    if config.backend == "kubo":
        from ascendnet.storage.kubo import KuboContentStore

        return KuboContentStore(
            config.kubo_api, options=config.import_options(), timeout=config.kubo_timeout_seconds
        )
    from ascendnet.storage.local import LocalContentStore

    return LocalContentStore(Path(data_dir) / "content", config.import_options())
