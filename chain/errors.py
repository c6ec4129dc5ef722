"""Errors of the chain layer. `ChainError` is the root; leaves carry structured fields."""

from __future__ import annotations

from typing import Any

from ascendnet.errors import AscendNetError


class ChainError(AscendNetError):
    """Anything that went wrong talking to the chain."""


class ArtifactError(ChainError, FileNotFoundError):
    """A shipped contract artifact is missing or stale."""


class ManifestError(ChainError, ValueError):
    """A deployment manifest is missing, malformed, or would be overwritten."""


class ManifestExists(ManifestError):
    def __init__(self, path: str, chain_id: int) -> None:
        self.path = path
        self.chain_id = chain_id
        super().__init__(
            f"A deployment manifest for chain {chain_id} already exists at {path}. "
            "Pass --overwrite to replace it (the old addresses will no longer be used)."
        )


class RpcError(ChainError, ConnectionError):
    """The RPC endpoint is unreachable or answered something unusable."""


class UnsafeKey(ChainError, PermissionError):
    """A plaintext/dev key was offered for a chain that is not a local dev chain."""


class ContractReverted(ChainError):
    """A call or transaction reverted. `error` is the custom error's name (or `Error` /
    `Panic`), `args` its decoded arguments by name."""

    def __init__(
        self,
        error: str,
        args: dict[str, Any],
        *,
        contract: str | None = None,
        function: str | None = None,
        tx_hash: str | None = None,
        raw: bytes = b"",
    ) -> None:
        self.error = error
        self.args_by_name = args
        self.contract = contract
        self.function = function
        self.tx_hash = tx_hash
        self.raw = raw
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in args.items())
        where = f"{contract}.{function}" if contract and function else (contract or function or "call")
        super().__init__(f"{where} reverted with {error}({rendered})")


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
