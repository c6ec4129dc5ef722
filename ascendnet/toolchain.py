"""Finds the offline toolchain: the npm-installed anvil, forge and solcjs shim."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ascendnet.errors import ToolchainMissing

#: The repository root when running from a checkout (editable install).
REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"
SOLC_VERSION = "0.8.28"


def find_tool(name: str) -> str:
    """Path of `name` from the project's node_modules, else from PATH.

    Raises ToolchainMissing naming the set-up step that installs it.
    """
    local = NODE_BIN / name
    if local.exists() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise ToolchainMissing(name, "make setup")


def solcx_binary_path() -> Path:
    """The folder ape-solidity (py-solc-x) searches for `solc-v<version>`: our solcjs shim."""
    return REPO_ROOT / ".solcx"
