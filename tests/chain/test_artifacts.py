"""The shipped ABIs/bytecode and the generated event classes must match the Solidity sources."""

from __future__ import annotations

import json

from chain import artifacts, codegen
from chain.build import APE_MANIFEST, OZ_PACKAGE_JSON, SRC_DIR, ape_compile


def test_shipped_artifacts_record_the_current_sources() -> None:
    digest = artifacts.sources_digest(SRC_DIR, OZ_PACKAGE_JSON)
    for name in artifacts.CONTRACTS:
        assert artifacts.load(name).sources_sha256 == digest, (
            f"chain/abi/{name}.json is stale against contracts/src: run `make contracts`"
        )


def test_shipped_artifacts_equal_a_fresh_compile() -> None:
    ape_compile(force=True)
    compiled = json.loads(APE_MANIFEST.read_text())["contractTypes"]
    for name in artifacts.CONTRACTS:
        shipped = artifacts.load(name)
        assert compiled[name]["abi"] == shipped.abi, f"{name} ABI is stale: run `make contracts`"
        assert compiled[name]["deploymentBytecode"]["bytecode"] == shipped.bytecode, (
            f"{name} bytecode is stale"
        )


def test_generated_events_module_is_current() -> None:
    assert codegen.EVENTS_MODULE.read_text() == codegen.render(), (
        "chain/events.py is stale: run `make contracts`"
    )


def test_sources_digest_changes_with_any_source_byte(tmp_path) -> None:
    (tmp_path / "A.sol").write_text("contract A {}")
    first = artifacts.sources_digest(tmp_path)
    (tmp_path / "A.sol").write_text("contract A { }")
    assert artifacts.sources_digest(tmp_path) != first
