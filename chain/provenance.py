"""The base of every decoded contract event: where on the chain it came from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainEvent:
    """A decoded log plus its provenance: `(chain_id, block_number, block_hash, tx_hash,
    log_index)` identifies it, and `contract`/`address` say which contract emitted it."""

    NAME: ClassVar[str] = ""
    SIGNATURE: ClassVar[str] = ""
    CONTRACTS: ClassVar[tuple[str, ...]] = ()

    contract: str
    address: str
    chain_id: int
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int

    @property
    def name(self) -> str:
        return self.NAME

    def args(self) -> dict[str, Any]:
        """The event's own fields (without provenance), JSON-ready: bytes become 0x-hex."""
        base = {f.name for f in dataclasses.fields(ChainEvent)}
        return {
            f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in base
        }

    def provenance(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "address": self.address,
            "chain_id": self.chain_id,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
