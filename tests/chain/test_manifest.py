from __future__ import annotations

import json
from pathlib import Path

import pytest

from chain import artifacts, manifest
from chain.errors import ManifestError, ManifestExists
from chain.manifest import Deployment


def _deployment(chain_id: int = 31337) -> Deployment:
    return Deployment(
        chain_id=chain_id,
        contracts={"ComputeRental": "0x" + "11" * 20, "PromptMarketplace": "0x" + "22" * 20},
        deploy_block=3,
        abi_hash=artifacts.protocol_abi_hash(),
        deployer="0x" + "33" * 20,
        deployed_at=manifest.now_iso(),
    )


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    path = manifest.write(_deployment(), tmp_path / "31337.json")
    loaded = manifest.read(path)
    assert loaded == _deployment().model_copy(update={"deployed_at": loaded.deployed_at})
    assert loaded.abi_matches


def test_refuses_to_overwrite_unless_told(tmp_path: Path) -> None:
    path = manifest.write(_deployment(), tmp_path / "31337.json")
    with pytest.raises(ManifestExists, match="--overwrite"):
        manifest.write(_deployment(), path)
    manifest.write(_deployment(), path, overwrite=True)


def test_malformed_manifest_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    doc = _deployment().model_dump()
    del doc["contracts"]["PromptMarketplace"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match="PromptMarketplace"):
        manifest.read(path)
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="malformed"):
        manifest.read(path)


def test_missing_manifest_says_how_to_deploy(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="ascendnet deploy"):
        manifest.read(tmp_path / "nope.json")
