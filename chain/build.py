"""Compiles the contracts with ape (solcjs through our shim) and refreshes the shipped
artifacts and the generated event classes. Only developers changing Solidity need this."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ascendnet.errors import ToolchainMissing
from ascendnet.toolchain import REPO_ROOT, SOLC_VERSION, solcx_binary_path
from chain import artifacts, codegen

SRC_DIR = REPO_ROOT / "contracts" / "src"
OZ_PACKAGE_JSON = REPO_ROOT / "node_modules" / "@openzeppelin" / "contracts" / "package.json"
APE_MANIFEST = REPO_ROOT / ".build" / "__local__.json"


def ape_compile(force: bool = True) -> Path:
    """Run `ape compile` offline and return the path of its project manifest."""
    shim = solcx_binary_path() / f"solc-v{SOLC_VERSION}"
    if not shim.exists():
        raise ToolchainMissing(f"solc shim ({shim})", "make setup")
    if not OZ_PACKAGE_JSON.exists():
        raise ToolchainMissing("@openzeppelin/contracts", "make setup")
    ape = Path(sys.executable).with_name("ape")
    env = {**os.environ, "SOLCX_BINARY_PATH": str(solcx_binary_path())}
    cmd = [str(ape), "compile"] + (["--force"] if force else [])
    subprocess.run(cmd, cwd=REPO_ROOT, env=env, check=True)
    return APE_MANIFEST


def build() -> list[Path]:
    manifest = ape_compile()
    written = artifacts.export(manifest, SRC_DIR, OZ_PACKAGE_JSON)
    written.append(codegen.write_events_module())
    return written


if __name__ == "__main__":
    for p in build():
        print(f"wrote {p.relative_to(REPO_ROOT)}")
