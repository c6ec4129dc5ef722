"""The root of every error AscendNet raises on purpose."""

from __future__ import annotations


class AscendNetError(Exception):
    """Base class for AscendNet errors. Messages say what went wrong and what to do next."""


class ConfigError(AscendNetError, ValueError):
    """A setting is missing, malformed or unsafe for the target network."""


class ToolchainMissing(AscendNetError, FileNotFoundError):
    """A toolchain binary (anvil, forge, node, solcjs) is not installed."""

    def __init__(self, tool: str, setup_step: str) -> None:
        self.tool = tool
        self.setup_step = setup_step
        super().__init__(f"{tool} is not installed. Run `{setup_step}` to install it (see README, Set-up).")
