"""Decodes revert data into ContractReverted naming the custom error and its arguments."""

from __future__ import annotations

from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chain import artifacts
from chain.codegen import canonical_type
from chain.errors import ContractReverted

_PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x22: "bad storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised function",
}


@cache
def _error_table() -> dict[bytes, tuple[str, list[dict[str, Any]]]]:
    table: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
    for name in artifacts.CONTRACTS:
        for entry in artifacts.load(name).abi:
            if entry.get("type") != "error":
                continue
            sig = f"{entry['name']}({','.join(canonical_type(i) for i in entry['inputs'])})"
            table[keccak(text=sig)[:4]] = (entry["name"], entry["inputs"])
    table[keccak(text="Error(string)")[:4]] = ("Error", [{"name": "message", "type": "string"}])
    table[keccak(text="Panic(uint256)")[:4]] = ("Panic", [{"name": "code", "type": "uint256"}])
    return table


def decode_revert(
    data: bytes | str | None,
    *,
    contract: str | None = None,
    function: str | None = None,
    tx_hash: str | None = None,
) -> ContractReverted:
    """Build the exception for revert `data` (raw bytes or 0x-hex)."""
    raw = _to_bytes(data)
    if len(raw) < 4:
        return ContractReverted(
            "UnknownRevert", {}, contract=contract, function=function, tx_hash=tx_hash, raw=raw
        )
    found = _error_table().get(raw[:4])
    if found is None:
        return ContractReverted(
            "UnknownRevert",
            {"selector": raw[:4]},
            contract=contract,
            function=function,
            tx_hash=tx_hash,
            raw=raw,
        )
    name, inputs = found
    try:
        values = abi_decode([canonical_type(i) for i in inputs], raw[4:])
    except Exception:  # malformed payload: keep the name, say we could not decode the rest
        return ContractReverted(
            name, {"undecodable": raw[4:]}, contract=contract, function=function, tx_hash=tx_hash, raw=raw
        )
    args: dict[str, Any] = {}
    for i, (inp, value) in enumerate(zip(inputs, values, strict=True)):
        key = inp.get("name") or f"arg{i}"
        args[key] = to_checksum_address(value) if inp["type"] == "address" else value
    if name == "Panic":
        args["reason"] = _PANIC_CODES.get(int(args["code"]), "unknown panic")
    return ContractReverted(name, args, contract=contract, function=function, tx_hash=tx_hash, raw=raw)


def _to_bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    s = data[2:] if data.startswith("0x") else data
    try:
        return bytes.fromhex(s)
    except ValueError:
        return b""
