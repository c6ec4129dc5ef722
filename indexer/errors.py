"""The indexer's errors: one root, structured leaves whose messages say what to do next."""

from __future__ import annotations

from ascendnet.errors import AscendNetError


class IndexerError(AscendNetError):
    """Base class for every error the indexer raises on purpose."""


class ReorgTooDeep(IndexerError):
    """A reorg reaches below the finality limit: the indexer stops rather than diverge silently."""

    def __init__(self, block: int, depth: int, limit: int) -> None:
        self.block = block
        self.depth = depth
        self.limit = limit
        super().__init__(
            f"Reorg at block {block} is {depth} blocks deep, deeper than the finality limit of {limit} "
            "blocks. The node's history no longer matches blocks the indexer treated as final. Check the "
            "RPC node (is it on the right chain, fully synced?), then re-index from scratch into a fresh "
            "database (`ascendnet indexer run` with a new ASCENDNET_DATABASE_URL)."
        )


class StoreMismatch(IndexerError, ValueError):
    """An event store or database belongs to a different chain than the one requested."""

    def __init__(self, expected_chain_id: int, found_chain_id: int) -> None:
        self.expected_chain_id = expected_chain_id
        self.found_chain_id = found_chain_id
        super().__init__(
            f"This database indexes chain {found_chain_id}, not chain {expected_chain_id}. "
            "Point ASCENDNET_DATABASE_URL at a database for this chain, or use a fresh one."
        )


class UnknownBlock(IndexerError, LookupError):
    """An event names a block that the store has no ref for (append blocks with their logs)."""

    def __init__(self, block_number: int, block_hash: str) -> None:
        self.block_number = block_number
        self.block_hash = block_hash
        super().__init__(
            f"Event in block {block_number} ({block_hash}) does not belong to the block it was appended "
            "with. Append each block together with exactly its own logs."
        )


class DigestMismatch(IndexerError):
    """Two sets of read models differ (raised by `verify` when asked to fail hard)."""

    def __init__(self, block: int, left: str, right: str) -> None:
        self.block = block
        self.left = left
        self.right = right
        super().__init__(
            f"Read models differ first at block {block} (digest {left[:16]}… vs {right[:16]}…). "
            "Run `ascendnet indexer rebuild` to recreate the read models from the event store."
        )


class BlockConflict(IndexerError, ValueError):
    """A block handed to the store contradicts the canonical chain it holds."""

    def __init__(self, number: int, block_hash: str, stored_hash: str, reason: str) -> None:
        self.number = number
        self.block_hash = block_hash
        self.stored_hash = stored_hash
        self.reason = reason
        super().__init__(
            f"Block {number} ({block_hash}) does not fit the stored chain: {reason} ({stored_hash}). "
            "A reorg happened: find the common ancestor and call EventStore.orphan_after() before "
            "appending the new blocks."
        )


class UnsupportedDriver(IndexerError, ValueError):
    """The database URL names a driver the indexer does not write through."""

    def __init__(self, dialect: str, driver: str) -> None:
        self.dialect, self.driver = dialect, driver
        super().__init__(
            f"the indexer writes through sqlite3 (sqlite:///...) or psycopg2 "
            f"(postgresql+psycopg2://...), not {dialect}+{driver}; change ASCENDNET_DATABASE_URL"
        )
