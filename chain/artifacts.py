"""Compiled contract artifacts shipped inside the package, so runtime code never needs a
compiler. `make contracts` compiles with ape (solcjs through our shim) and calls `export`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from chain.errors import ArtifactError

ABI_DIR = Path(__file__).resolve().parent / "abi"
#: The contracts the protocol deploys, plus the dev-only test token.
CONTRACTS = ("ComputeRental", "PromptMarketplace", "TestToken")
PROTOCOL_CONTRACTS = ("ComputeRental", "PromptMarketplace")


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    compiler: str
    sources_sha256: str


def sources_digest(src_dir: Path, oz_package_json: Path | None = None) -> str:
    """sha256 over every Solidity source (path and bytes) plus the OpenZeppelin version."""
    h = hashlib.sha256()
    # NOTE: hidden folders are skipped: ape-solidity copies dependencies into
    # contracts/src/.cache while it compiles.
    sources = (
        p
        for p in src_dir.rglob("*.sol")
        if not any(part.startswith(".") for part in p.relative_to(src_dir).parts)
    )
    for path in sorted(sources):
        h.update(path.relative_to(src_dir).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    if oz_package_json is not None and oz_package_json.exists():
        h.update(json.loads(oz_package_json.read_text())["version"].encode())
    return h.hexdigest()


def abi_hash(abis: dict[str, list[dict[str, Any]]]) -> str:
    """A stable hash of a set of ABIs, recorded in deployment manifests."""
    canonical = json.dumps(abis, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@cache
def load(name: str) -> Artifact:
    path = ABI_DIR / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"No shipped artifact for {name} at {path}. Run `make contracts`.") from exc
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        compiler=data["compiler"],
        sources_sha256=data["sourcesSha256"],
    )


def protocol_abi_hash() -> str:
    return abi_hash({n: load(n).abi for n in PROTOCOL_CONTRACTS})


def export(ape_manifest: Path, src_dir: Path, oz_package_json: Path, out_dir: Path = ABI_DIR) -> list[Path]:
    """Write chain/abi/<Contract>.json from ape's compiled project manifest."""
    manifest = json.loads(ape_manifest.read_text())
    compilers = manifest.get("compilers") or [{}]
    compiler = f"{compilers[0].get('name', 'solidity')} {compilers[0].get('version', '?')}"
    digest = sources_digest(src_dir, oz_package_json)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACTS:
        ct = manifest["contractTypes"].get(name)
        if ct is None:
            raise ArtifactError(f"{name} missing from {ape_manifest}; did `ape compile` succeed?")
        doc = {
            "contractName": name,
            "abi": ct["abi"],
            "bytecode": ct["deploymentBytecode"]["bytecode"],
            "compiler": compiler,
            "sourcesSha256": digest,
        }
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        written.append(path)
    load.cache_clear()
    return written
