"""The content store: bytes addressed by the CID IPFS (Kubo) gives them, verified on every read.

Two backends implement `ContentStore`:

- `LocalContentStore`, the embedded default: a content-addressed directory under the data dir;
- `KuboContentStore`: an IPFS node through its RPC API.

Both return, for the same bytes, the CID that ``ipfs add`` prints (`compute_cid`), and both refuse
bytes that do not hash to the CID asked for or to the expected (on-chain) sha256.
"""

from ascendnet.storage.base import ContentStore
from ascendnet.storage.cid import Cid
from ascendnet.storage.config import StorageConfig, open_store
from ascendnet.storage.errors import (
    ContentMismatch,
    ContentNotFound,
    ContentTooLarge,
    InvalidCid,
    StorageError,
    StoreUnavailable,
)
from ascendnet.storage.local import LocalContentStore
from ascendnet.storage.unixfs import ImportOptions, compute_cid

__all__ = [
    "Cid",
    "ContentMismatch",
    "ContentNotFound",
    "ContentStore",
    "ContentTooLarge",
    "ImportOptions",
    "InvalidCid",
    "LocalContentStore",
    "StorageConfig",
    "StorageError",
    "StoreUnavailable",
    "compute_cid",
    "open_store",
]
