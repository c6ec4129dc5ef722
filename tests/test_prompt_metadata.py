"""The prompt metadata document: valid documents round-trip, malformed ones fail naming the
wrong field, and the published JSON Schema and example cannot go stale."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ascendnet.errors import AscendNetError
from ascendnet.prompt_metadata import (
    DOCUMENT,
    MAX_DOCUMENT_BYTES,
    InvalidMetadata,
    PromptMetadata,
    content_hash_of,
    json_schema,
    validate_metadata,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
PLAINTEXT = b"Write a cold email about {{product}}. Tone: {{tone}}."

# Real CIDs as Kubo prints them: CIDv0 (dag-pb), CIDv1 dag-pb and CIDv1 raw leaves.
CID_V0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
CID_V1_DAG_PB = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
CID_V1_RAW = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def example() -> dict[str, Any]:
    return {
        "schema_version": "ascendnet.prompt/v1",
        "title": "Cold email writer",
        "description": "Writes a two-paragraph cold email.\nWorks best with a concrete product.",
        "target_models": ["gpt-4o", "claude-3-5-sonnet"],
        "template_variables": [
            {"name": "product", "description": "What you sell.", "required": True},
            {"name": "tone", "description": "Voice of the email.", "required": False, "default": "friendly"},
        ],
        "sample_outputs": [
            {"model": "gpt-4o", "variables": {"product": "GPU hours"}, "output": "Hi Sam, ..."},
        ],
        "licence": {"kind": "commercial", "terms": "Outputs may be used commercially.", "terms_cid": CID_V0},
        "ciphertext_cid": CID_V1_RAW,
        "content_hash": content_hash_of(PLAINTEXT),
        "cipher": {"algorithm": "AES-256-GCM", "nonce": "0x" + "ab" * 12},
        "tags": ["email", "sales"],
        "language": "en",
        "created_at": "2025-06-01T12:00:00Z",
    }


# ---------------------------------------------------------------------------- valid documents


def test_valid_example_round_trips() -> None:
    meta = validate_metadata(example())

    assert meta.title == "Cold email writer"
    assert meta.template_variables[1].default == "friendly"
    assert meta.content_hash == content_hash_of(PLAINTEXT)
    # dict -> model -> canonical JSON -> model is lossless, and the JSON is the input plus defaults.
    assert validate_metadata(meta.canonical_json()) == meta
    assert validate_metadata(meta.canonical_json().decode()) == meta
    dumped = json.loads(meta.canonical_json())
    assert dumped["template_variables"][0] == {**example()["template_variables"][0], "default": None}
    assert {k: v for k, v in dumped.items() if k != "template_variables"} == {
        **{k: v for k, v in example().items() if k != "template_variables"},
        "licence": {**example()["licence"], "allows_redistribution": False, "allows_derivatives": False},
    }


def test_canonical_json_is_deterministic() -> None:
    reordered = dict(reversed(list(example().items())))
    assert validate_metadata(reordered).canonical_json() == validate_metadata(example()).canonical_json()


def test_minimal_document_uses_defaults() -> None:
    doc = example()
    for optional in ("template_variables", "sample_outputs", "tags"):
        del doc[optional]
    doc["licence"] = {"kind": "personal", "terms_cid": CID_V1_DAG_PB}
    meta = validate_metadata(doc)
    assert meta.tags == [] and meta.template_variables == [] and meta.sample_outputs == []
    assert meta.licence.terms is None and meta.licence.allows_redistribution is False


@pytest.mark.parametrize("cid", [CID_V0, CID_V1_DAG_PB, CID_V1_RAW])
def test_kubo_cids_are_accepted(cid: str) -> None:
    doc = example()
    doc["ciphertext_cid"] = cid
    assert validate_metadata(doc).ciphertext_cid == cid


def test_chacha20_poly1305_is_accepted() -> None:
    doc = example()
    doc["cipher"]["algorithm"] = "ChaCha20-Poly1305"
    assert validate_metadata(doc).cipher.algorithm == "ChaCha20-Poly1305"


# ---------------------------------------------------------------------------- malformed documents

Mutation = Callable[[dict[str, Any]], None]


def _key(part: str) -> str | int:
    return int(part) if part.isdigit() else part


def _set(path: str, value: Any) -> Mutation:
    """Set the value at a dotted path such as ``template_variables.0.required``."""

    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for p in parents:
            target = target[_key(p)]
        target[_key(last)] = value

    return mutate


MALFORMED: list[tuple[str, Mutation, str]] = [
    ("missing title", lambda doc: doc.pop("title"), "title"),
    ("too-long title", _set("title", "x" * 121), "title"),
    ("multi-line title", _set("title", "Cold\nemail"), "title"),
    ("bad content hash", _set("content_hash", "0x1234"), "content_hash"),
    ("uppercase content hash", _set("content_hash", content_hash_of(PLAINTEXT).upper()), "content_hash"),
    ("zero content hash", _set("content_hash", "0x" + "0" * 64), "content_hash"),
    ("bad CID", _set("ciphertext_cid", "Qm-not-a-cid"), "ciphertext_cid"),
    ("uppercase CIDv1", _set("ciphertext_cid", CID_V1_RAW.upper()), "ciphertext_cid"),
    ("CIDv1 with a cut digest", _set("ciphertext_cid", CID_V1_RAW[:-8]), "ciphertext_cid"),
    ("CIDv0 that is no sha2-256 multihash", _set("ciphertext_cid", "Qm" + "1" * 44), "ciphertext_cid"),
    ("bad licence CID", _set("licence.terms_cid", "ipfs://" + CID_V0), "licence.terms_cid"),
    ("unknown extra field", _set("price", 100), "price"),
    ("unknown nested field", _set("cipher.key", "0x00"), "cipher.key"),
    (
        "wrong type in template variable",
        _set("template_variables.0.required", "yes"),
        "template_variables[0].required",
    ),
    ("number as template default", _set("template_variables.1.default", 3), "template_variables[1].default"),
    ("bad variable name", _set("template_variables.0.name", "1st"), "template_variables[0].name"),
    (
        "required variable with a default",
        _set("template_variables.0.default", "GPUs"),
        "template_variables[0].default",
    ),
    ("duplicate variable", _set("template_variables.1.name", "product"), "template_variables[1].name"),
    ("no licence text nor CID", _set("licence", {"kind": "commercial"}), "licence.terms"),
    ("too-long licence terms", _set("licence.terms", "x" * 10_001), "licence.terms"),
    ("unknown licence kind", _set("licence.kind", "exclusive"), "licence.kind"),
    ("unknown cipher", _set("cipher.algorithm", "AES-128-CBC"), "cipher.algorithm"),
    ("short nonce", _set("cipher.nonce", "0xabcd"), "cipher.nonce"),
    ("no target model", _set("target_models", []), "target_models"),
    ("duplicate target model", _set("target_models", ["gpt-4o", "gpt-4o"]), "target_models[1]"),
    ("sample from another model", _set("sample_outputs.0.model", "llama-3"), "sample_outputs[0].model"),
    (
        "sample with undeclared variable",
        _set("sample_outputs.0.variables.colour", "red"),
        "sample_outputs[0].variables.colour",
    ),
    (
        "sample missing a required variable",
        _set("sample_outputs.0.variables", {}),
        "sample_outputs[0].variables",
    ),
    ("capitalised tag", _set("tags", ["Email"]), "tags[0]"),
    ("duplicate tag", _set("tags", ["email", "email"]), "tags[1]"),
    ("bad language", _set("language", "English"), "language"),
    ("naive timestamp", _set("created_at", "2025-06-01T12:00:00"), "created_at"),
    ("unix timestamp", _set("created_at", 1748779200), "created_at"),
    ("other schema version", _set("schema_version", "ascendnet.prompt/v2"), "schema_version"),
]


@pytest.mark.parametrize(("mutate", "field"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_document_names_the_wrong_field(mutate: Mutation, field: str) -> None:
    doc = copy.deepcopy(example())
    mutate(doc)

    with pytest.raises(InvalidMetadata) as info:
        validate_metadata(doc)

    assert info.value.field == field
    assert f"metadata field `{field}`:" in str(info.value)
    # Every problem found is a problem with that field only: the mutation broke nothing else.
    assert {f for f, _ in info.value.problems} == {field}


def test_every_wrong_field_is_reported() -> None:
    doc = example()
    del doc["title"]
    doc["cipher"]["nonce"] = "nonce"
    with pytest.raises(InvalidMetadata) as info:
        validate_metadata(doc)
    assert [f for f, _ in info.value.problems] == ["title", "cipher.nonce"]
    assert "`title`" in str(info.value) and "`cipher.nonce`" in str(info.value)


def test_invalid_metadata_is_an_ascendnet_value_error() -> None:
    with pytest.raises(InvalidMetadata) as info:
        validate_metadata({})
    assert isinstance(info.value, AscendNetError) and isinstance(info.value, ValueError)
    assert info.value.field == "schema_version"  # the first missing field, in document order


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (b"{not json", "Invalid JSON"),
        ("[1, 2]", "object"),
        (b"\xff\xfe", "Invalid JSON"),
        ({"created_at": object()}, "not JSON-serialisable"),
        ({"title": float("nan")}, "not JSON-serialisable"),
        (b" " * (MAX_DOCUMENT_BYTES + 1), "limit"),
    ],
    ids=["not-json", "not-an-object", "not-utf8", "python-object", "nan", "too-large"],
)
def test_unreadable_document_is_blamed_as_a_whole(doc: Any, reason: str) -> None:
    with pytest.raises(InvalidMetadata) as info:
        validate_metadata(doc)
    assert info.value.field == DOCUMENT
    assert str(info.value).startswith("metadata document: ")
    assert reason in str(info.value)


# ---------------------------------------------------------------------------- on-chain link


def test_content_hash_must_match_the_chain() -> None:
    meta = validate_metadata(example())
    onchain = bytes.fromhex(content_hash_of(PLAINTEXT)[2:])

    meta.require_content_hash(onchain)
    meta.require_content_hash("0x" + onchain.hex().upper())
    with pytest.raises(InvalidMetadata) as info:
        meta.require_content_hash(bytes(31) + b"\x01")
    assert info.value.field == "content_hash"


# ---------------------------------------------------------------------------- the docs


def test_schema_file_is_the_generated_schema() -> None:
    on_disk = json.loads((DOCS / "prompt_metadata.schema.json").read_text())
    assert on_disk == json_schema(), (
        "docs/prompt_metadata.schema.json is stale: regenerate it with "
        "`python -m ascendnet.prompt_metadata > docs/prompt_metadata.schema.json`"
    )


def test_schema_describes_the_model() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(PromptMetadata.model_fields)
    assert schema["properties"]["title"]["maxLength"] == 120


def test_documented_example_is_valid() -> None:
    text = (DOCS / "PROMPT_SCHEMA.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "docs/PROMPT_SCHEMA.md has no ```json example"
    meta = validate_metadata(blocks[0])
    assert meta.schema_version == "ascendnet.prompt/v1"
