"""Shared pieces of the prompt tests: a metadata draft, a prompt text, fast keystores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from ascendnet.storage import LocalContentStore

PASSWORD = "prompt test password"
#: Not ASCII, several lines, a template variable: the round trip must be byte-exact.
PROMPT_TEXT = (
    "You are a poet. Write a haiku about {{topic}}.\n"
    "Keep 5-7-5 syllables; end without punctuation. Ünïcödé stays intact: 俳句 ✓\n"
).encode()


def draft(title: str = "Haiku writer") -> dict[str, Any]:
    """A metadata draft without the fields `mint` fills in."""
    return {
        "title": title,
        "description": "Writes one haiku about any topic.",
        "target_models": ["gpt-4o", "llama-3.1-70b-instruct"],
        "template_variables": [{"name": "topic", "description": "What the haiku is about."}],
        "licence": {"kind": "personal", "terms": "Personal use only. Do not resell the prompt."},
        "tags": ["poetry", "haiku"],
        "language": "en",
    }


def write_keystore(path: Path, private_key: bytes, password: str = PASSWORD) -> Path:
    """An encrypted keystore with cheap scrypt parameters, so tests unlock it quickly."""
    path.write_text(json.dumps(Account.encrypt(private_key, password, kdf="scrypt", iterations=2**10)))
    return path


@pytest.fixture()
def store(tmp_path: Path) -> LocalContentStore:
    return LocalContentStore(tmp_path / "content")


def calls_by(w3: Web3, contract: Contract, sender: str, from_block: int) -> dict[tuple[str, int], int]:
    """(function name, licence id) -> number of transactions `sender` sent to `contract`."""
    counts: dict[tuple[str, int], int] = {}
    for n in range(from_block, w3.eth.block_number + 1):
        txs: list[Any] = list(w3.eth.get_block(n, full_transactions=True)["transactions"])
        for tx in txs:
            if tx["from"] != sender or tx["to"] != contract.address:
                continue
            fn, args = contract.decode_function_input(tx["input"])
            key = (fn.fn_name, int(args.get("licenseId", -1)))
            counts[key] = counts.get(key, 0) + 1
    return counts
