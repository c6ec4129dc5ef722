"""The capability document: what a provider offers, published to the content store; its CID is
the provider's on-chain ``metadataCid``.

Built from a monitor snapshot (`CapabilityDocument.from_resources`). It holds only what is stable
(models, VRAM, core counts, totals), never loads or free memory, so re-publishing on an unchanged
machine gives the same bytes and therefore the same CID.
"""

from __future__ import annotations

import json
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.monitor import Resources
from ascendnet.storage.base import ContentStore

SCHEMA_VERSION: Final = "ascendnet.capability/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class GpuOffer(_Strict):
    model: str = Field(min_length=1, max_length=128, description="GPU model as NVML names it.")
    vram_mb: int = Field(ge=0, description="Total VRAM in MiB.")


class PricePolicy(_Strict):
    """Placeholder prices, quoted in `asset` base units (wei for native ETH). The bidding policy
    decides actual bids; these tell clients what to expect."""

    asset: str = Field(
        "native",
        pattern=r"^(native|0x[0-9a-fA-F]{40})$",
        description="'native' (ETH) or the address of an allowed ERC-20.",
    )
    gpu_hour: int | None = Field(None, ge=0, description="Price of one GPU for one hour.")
    cpu_hour: int | None = Field(None, ge=0, description="Price of one CPU core for one hour.")
    min_job_price: int = Field(0, ge=0, description="The lowest price this provider bids.")


class CapabilityDocument(_Strict):
    """A provider's capabilities (schema `ascendnet.capability/v1`)."""

    schema_version: Literal["ascendnet.capability/v1"] = SCHEMA_VERSION
    agent_version: str = Field(min_length=1, max_length=64)
    gpu_count: int = Field(ge=0)
    gpus: tuple[GpuOffer, ...] = ()
    driver_version: str | None = None
    cuda_version: str | None = None
    cpus: int = Field(ge=1, description="Logical CPU cores.")
    memory_mb: int = Field(ge=0, description="Total memory in MiB.")
    disk_mb: int = Field(ge=0, description="Total size of the agent's data disk in MiB.")
    price: PricePolicy = Field(default_factory=PricePolicy)
    endpoint: str | None = Field(
        None,
        max_length=2048,
        pattern=r"^https?://\S+$",
        description="Optional URL where the operator can be reached.",
    )

    @model_validator(mode="after")
    def _count_matches(self) -> CapabilityDocument:
        if self.gpu_count != len(self.gpus):
            raise ValueError(f"gpu_count is {self.gpu_count} but {len(self.gpus)} GPUs are listed")
        return self

    @classmethod
    def from_resources(
        cls, resources: Resources, *, price: PricePolicy | None = None, endpoint: str | None = None
    ) -> CapabilityDocument:
        gpus = tuple(
            GpuOffer(model=g.name, vram_mb=g.memory_total_mb)
            for g in sorted(resources.gpu.gpus, key=lambda g: g.index)
        )
        return cls(
            agent_version=resources.agent_version,
            gpu_count=len(gpus),
            gpus=gpus,
            driver_version=resources.gpu.driver_version if gpus else None,
            cuda_version=resources.gpu.cuda_version if gpus else None,
            cpus=resources.cpu.logical_cores,
            memory_mb=resources.memory.total_mb,
            disk_mb=resources.disk.total_mb,
            price=price or PricePolicy(),
            endpoint=endpoint,
        )

    def canonical_json(self) -> bytes:
        """Compact UTF-8 JSON with sorted keys: the bytes to publish."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    def publish(self, store: ContentStore) -> str:
        """Store the canonical JSON; return its CID (the provider's ``metadataCid``)."""
        return store.put(self.canonical_json())
