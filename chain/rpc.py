"""The one RPC client constructor: every part of AscendNet gets its Web3 from here."""

from __future__ import annotations

from urllib.parse import urlparse

from web3 import Web3
from web3.providers import HTTPProvider

from chain.errors import RpcError

ANVIL_CHAIN_ID = 31337


def connect(rpc_url: str, *, timeout: float = 10.0) -> Web3:
    """A Web3 bound to `rpc_url`, checked to answer. Raises RpcError with the URL otherwise."""
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        w3.eth.chain_id  # noqa: B018 - a cheap liveness probe
    except Exception as exc:
        raise RpcError(
            f"Cannot reach an Ethereum JSON-RPC node at {rpc_url} ({exc.__class__.__name__}: {exc}). "
            "Is it running? For a local chain run `ascendnet chain up`."
        ) from exc
    return w3


def is_loopback(rpc_url: str) -> bool:
    host = urlparse(rpc_url).hostname or ""
    return host in {"127.0.0.1", "localhost", "::1"} or host.startswith("127.")


def is_local_dev_chain(w3: Web3, rpc_url: str) -> bool:
    """True for an anvil dev chain on this machine: the only place a plaintext dev key is allowed."""
    if w3.eth.chain_id != ANVIL_CHAIN_ID or not is_loopback(rpc_url):
        return False
    try:
        version = str(w3.client_version).lower()
    except Exception:
        return False
    return "anvil" in version
