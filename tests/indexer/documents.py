"""Prompt metadata documents for the suites that resolve them (indexer/metadata.py, /prompts)."""

from __future__ import annotations

from typing import Any

from ascendnet.prompt_metadata import content_hash_of, validate_metadata

CIPHERTEXT_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def document(title: str, description: str, plaintext: bytes, **changes: Any) -> bytes:
    """A valid `ascendnet.prompt/v1` document for `plaintext`, serialised as `prompt mint`
    stores it (`canonical_json`)."""
    doc = {
        "schema_version": "ascendnet.prompt/v1",
        "title": title,
        "description": description,
        "target_models": ["gpt-4o"],
        "licence": {"kind": "personal", "terms": "Personal use only."},
        "ciphertext_cid": CIPHERTEXT_CID,
        "content_hash": content_hash_of(plaintext),
        "cipher": {"algorithm": "AES-256-GCM", "nonce": "0x" + "ab" * 12},
        "language": "en",
        "created_at": "2026-12-01T12:00:00Z",
    }
    return validate_metadata({**doc, **changes}).canonical_json()
