"""Deployment manifests: the one place that records where the contracts live on a chain."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from chain import artifacts
from chain.errors import ManifestError, ManifestExists

DEFAULT_DIR = Path("deployments")


class Deployment(BaseModel):
    """Where the AscendNet contracts are deployed on one chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int
    #: Contract name -> checksummed address. Always ComputeRental and PromptMarketplace;
    #: TestToken on local dev chains.
    contracts: dict[str, str]
    deploy_block: int
    abi_hash: str
    deployer: str
    deployed_at: str
    tx_hashes: dict[str, str] = {}
    params: dict[str, Any] = {}

    @field_validator("contracts")
    @classmethod
    def _has_protocol(cls, v: dict[str, str]) -> dict[str, str]:
        missing = [c for c in artifacts.PROTOCOL_CONTRACTS if c not in v]
        if missing:
            raise ValueError(f"missing contract addresses: {', '.join(missing)}")
        return v

    def address(self, contract: str) -> str:
        try:
            return self.contracts[contract]
        except KeyError as exc:
            raise ManifestError(f"Deployment on chain {self.chain_id} has no {contract}") from exc

    @property
    def abi_matches(self) -> bool:
        """Whether the shipped ABIs are the ones this deployment was made with."""
        return self.abi_hash == artifacts.protocol_abi_hash()


def default_path(chain_id: int, directory: Path = DEFAULT_DIR) -> Path:
    return directory / f"{chain_id}.json"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read(path: Path) -> Deployment:
    try:
        raw = path.read_text()
    except FileNotFoundError as exc:
        raise ManifestError(
            f"No deployment manifest at {path}. Deploy first with `ascendnet deploy`, "
            "or point --manifest / ASCENDNET_MANIFEST at an existing one."
        ) from exc
    try:
        return Deployment.model_validate_json(raw)
    except ValidationError as exc:
        raise ManifestError(f"Deployment manifest {path} is malformed: {exc}") from exc


def write(deployment: Deployment, path: Path, *, overwrite: bool = False) -> Path:
    """Write atomically. Refuses to replace an existing manifest unless `overwrite`."""
    if path.exists() and not overwrite:
        raise ManifestExists(str(path), deployment.chain_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(deployment.model_dump(), indent=2) + "\n")
    os.replace(tmp, path)
    return path
