"""The prompt metadata document: what a prompt NFT's `metadataCid` points to.

The document is public JSON. It describes the prompt (title, target models, template variables,
public sample outputs, licence terms) and says where the encrypted prompt content lives
(`ciphertext_cid`), how it is encrypted (`cipher`) and which plaintext it must decrypt to
(`content_hash`, equal to the token's on-chain `contentHash`). docs/PROMPT_SCHEMA.md explains
every field; docs/prompt_metadata.schema.json is the JSON Schema, generated from this module:

    python -m ascendnet.prompt_metadata > docs/prompt_metadata.schema.json
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ascendnet.errors import AscendNetError
from ascendnet.validation import DOCUMENT, problems
from ascendnet.validation import FieldProblem as _Problem

SCHEMA_VERSION = "ascendnet.prompt/v1"
#: Documents larger than this are refused before parsing, whatever their fields hold.
MAX_DOCUMENT_BYTES = 128 * 1024

__all__ = [
    "DOCUMENT",
    "MAX_DOCUMENT_BYTES",
    "SCHEMA_VERSION",
    "Cipher",
    "InvalidMetadata",
    "Licence",
    "PromptMetadata",
    "SampleOutput",
    "TemplateVariable",
    "content_hash_of",
    "json_schema",
    "validate_metadata",
]


class InvalidMetadata(AscendNetError, ValueError):
    """A prompt metadata document does not follow the schema.

    `field` is the path of the first wrong field (e.g. ``licence.terms`` or
    ``template_variables[0].required``), `reason` what is wrong with it, and `problems` every
    ``(field, reason)`` found.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        if not problems:
            raise ValueError("InvalidMetadata needs at least one problem")
        self.problems = tuple(problems)
        self.field, self.reason = self.problems[0]
        rendered = "; ".join(
            f"metadata document: {r}" if f == DOCUMENT else f"metadata field `{f}`: {r}"
            for f, r in self.problems
        )
        super().__init__(f"{rendered} (see docs/PROMPT_SCHEMA.md)")


# ---------------------------------------------------------------------------- field types

_HEX32 = re.compile(r"0x[0-9a-f]{64}")
_NONCE = re.compile(r"0x[0-9a-f]{24}")
_CID_PATTERN = r"^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{38,120})$"
_CID = re.compile(_CID_PATTERN)
_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_SHA2_256 = 0x12


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 varint (multiformats) at `pos`; returns (value, next position)."""
    value = shift = 0
    for i in range(pos, min(pos + 9, len(data))):
        value |= (data[i] & 0x7F) << shift
        if not data[i] & 0x80:
            return value, i + 1
        shift += 7
    raise ValueError("truncated varint")


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _B58_ALPHABET.index(char)
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def _check_cid(value: str) -> str:
    """CIDv0 (``Qm...``, base58btc, a sha2-256 multihash) or CIDv1 in lowercase base32
    (``b...``), decoded far enough to check its version, codec and multihash length."""
    bad = (
        "not a CID: expected a CIDv0 ('Qm' and 44 base58 characters) or a CIDv1 in lowercase "
        "base32 ('b...', as `ipfs add --cid-version=1` prints)"
    )
    if not _CID.fullmatch(value):
        raise ValueError(bad)
    if value.startswith("Qm"):
        raw = _b58decode(value)
        if len(raw) != 34 or raw[0] != _SHA2_256 or raw[1] != 32:
            raise ValueError(f"{bad}; this CIDv0 does not decode to a sha2-256 multihash")
        return value
    body = value[1:].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
        version, pos = _read_varint(raw, 0)
        _codec, pos = _read_varint(raw, pos)
        _hash_code, pos = _read_varint(raw, pos)
        digest_len, pos = _read_varint(raw, pos)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{bad}; it does not decode ({exc})") from None
    if version != 1:
        raise ValueError(f"{bad}; the decoded CID version is {version}, not 1")
    if digest_len != len(raw) - pos or not 20 <= digest_len <= 64:
        raise ValueError(f"{bad}; its multihash length does not match its digest")
    return value


def _check_content_hash(value: str) -> str:
    if not _HEX32.fullmatch(value):
        raise ValueError("expected the sha256 of the plaintext as '0x' and 64 lowercase hex digits")
    if int(value, 16) == 0:
        raise ValueError("the zero hash is not a content hash (the contract refuses it too)")
    return value


def _check_nonce(value: str) -> str:
    if not _NONCE.fullmatch(value):
        raise ValueError("expected a 96-bit nonce as '0x' and 24 lowercase hex digits")
    return value


def _check_one_line(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("must be a single line without control characters")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return value


Cid = Annotated[
    str,
    AfterValidator(_check_cid),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _CID_PATTERN,
            "description": "CIDv0 ('Qm...', base58btc) or CIDv1 in lowercase base32 ('b...'). "
            "The validator also decodes it and checks the multihash length.",
        }
    ),
]
ContentHash = Annotated[
    str,
    AfterValidator(_check_content_hash),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^0x[0-9a-f]{64}$",
            "description": "sha256 of the plaintext prompt content, 0x-prefixed lowercase hex, not zero. "
            "Must equal the token's on-chain contentHash.",
        }
    ),
]
Nonce = Annotated[
    str,
    AfterValidator(_check_nonce),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^0x[0-9a-f]{24}$",
            "description": "The 96-bit nonce, 0x-prefixed lowercase hex.",
        }
    ),
]
OneLine = Annotated[str, AfterValidator(_check_one_line)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", min_length=1, max_length=64)]
ModelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$", min_length=1, max_length=100)]
Tag = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", min_length=1, max_length=32)]


def _unique(values: Sequence[Any], what: str, key: Callable[[Any], Any] = lambda v: v) -> None:
    seen: set[Any] = set()
    for i, v in enumerate(values):
        k = key(v)
        if k in seen:
            raise _Problem((i,), f"duplicate {what} {k!r}")
        seen.add(k)


# ---------------------------------------------------------------------------- the document


class _Strict(BaseModel):
    # NOTE: strict, so JSON "yes" is not a boolean and "3" not a number; documents are JSON,
    # and validate_metadata always parses them as JSON, so strings still become datetimes.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class TemplateVariable(_Strict):
    """A placeholder in the prompt text, written ``{{name}}``, that the buyer fills in."""

    name: Identifier = Field(
        description="Placeholder name: letters, digits and '_', not starting with a digit."
    )
    description: str = Field("", max_length=500, description="What to put in it.")
    required: bool = Field(True, description="Whether the prompt needs a value for it.")
    default: str | None = Field(
        None, max_length=2_000, description="Value used when none is given; only for optional variables."
    )

    @model_validator(mode="after")
    def _no_default_when_required(self) -> TemplateVariable:
        if self.required and self.default is not None:
            raise _Problem(("default",), "a required variable takes no default; set `required` to false")
        return self


class SampleOutput(_Strict):
    """A public example of what the prompt produced. It is not encrypted: anyone can read it."""

    model: ModelName = Field(description="Which model produced it; one of `target_models`.")
    variables: dict[Identifier, Annotated[str, Field(max_length=2_000)]] = Field(
        default_factory=dict, max_length=32, description="The template variable values used."
    )
    output: str = Field(min_length=1, max_length=4_000)


class Licence(_Strict):
    """What a licence bought on-chain (buyLicense) lets the buyer do with the prompt."""

    kind: Literal["personal", "commercial"] = Field(description="personal or commercial use.")
    terms: str | None = Field(None, min_length=1, max_length=10_000, description="The licence text.")
    terms_cid: Cid | None = Field(
        None, description="CID of the licence text, for terms too long to inline or shared by many prompts."
    )
    allows_redistribution: bool = Field(False, description="May the buyer pass the prompt on to others.")
    allows_derivatives: bool = Field(False, description="May the buyer publish modified versions.")

    @model_validator(mode="after")
    def _terms_given(self) -> Licence:
        if self.terms is None and self.terms_cid is None:
            raise _Problem(("terms",), "give the licence text here, or its CID in `licence.terms_cid`")
        return self


class Cipher(_Strict):
    """How the content at `ciphertext_cid` is encrypted. Both algorithms are AEADs with a
    256-bit key and a 96-bit nonce; the ciphertext carries the 16-byte tag at its end."""

    algorithm: Literal["AES-256-GCM", "ChaCha20-Poly1305"]
    nonce: Nonce


class PromptMetadata(_Strict):
    """The metadata document of one prompt NFT (schema `ascendnet.prompt/v1`)."""

    schema_version: Literal["ascendnet.prompt/v1"] = Field(description="Always 'ascendnet.prompt/v1'.")
    title: OneLine = Field(
        min_length=1, max_length=120, description="One line, no control characters or surrounding spaces."
    )
    description: str = Field(
        min_length=1, max_length=5_000, description="Public description; may span lines."
    )
    target_models: list[ModelName] = Field(
        min_length=1,
        max_length=16,
        json_schema_extra={"uniqueItems": True},
        description="Models it was written for, e.g. 'gpt-4o' or 'llama-3.1-70b-instruct'.",
    )
    template_variables: list[TemplateVariable] = Field(
        default_factory=list, max_length=32, description="Placeholders in the prompt; names are unique."
    )
    sample_outputs: list[SampleOutput] = Field(
        default_factory=list, max_length=8, description="Public examples of what the prompt produces."
    )
    licence: Licence
    ciphertext_cid: Cid = Field(description="Where the encrypted prompt content lives.")
    content_hash: ContentHash
    cipher: Cipher
    tags: list[Tag] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"uniqueItems": True},
        description="Lowercase, hyphenated keywords.",
    )
    language: str = Field(
        pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$",
        max_length=35,
        description="BCP 47 tag of the prompt's language, e.g. 'en' or 'pt-BR'.",
    )
    created_at: AwareDatetime = Field(description="RFC 3339 timestamp with a time zone.")

    @field_validator("target_models")
    @classmethod
    def _unique_models(cls, v: list[str]) -> list[str]:
        _unique(v, "model")
        return v

    @field_validator("template_variables")
    @classmethod
    def _unique_variables(cls, v: list[TemplateVariable]) -> list[TemplateVariable]:
        try:
            _unique(v, "variable", key=lambda t: t.name)
        except _Problem as p:
            raise _Problem((*p.at, "name"), str(p)) from None
        return v

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, v: list[str]) -> list[str]:
        _unique(v, "tag")
        return v

    @model_validator(mode="after")
    def _samples_match(self) -> PromptMetadata:
        declared = {t.name: t for t in self.template_variables}
        for i, sample in enumerate(self.sample_outputs):
            at: tuple[str | int, ...] = ("sample_outputs", i)
            if sample.model not in self.target_models:
                raise _Problem((*at, "model"), f"{sample.model!r} is not one of `target_models`")
            for name in sample.variables:
                if name not in declared:
                    raise _Problem((*at, "variables", name), "not a declared template variable")
            for name, var in declared.items():
                if var.required and name not in sample.variables:
                    raise _Problem((*at, "variables"), f"missing the required variable {name!r}")
        return self

    def canonical_json(self) -> bytes:
        """The document as compact UTF-8 JSON with sorted keys: the bytes to store and pin."""
        doc = self.model_dump(mode="json")
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def require_content_hash(self, onchain: bytes | str) -> None:
        """Raise InvalidMetadata naming `content_hash` unless it equals the token's on-chain
        `contentHash` (32 bytes, or 0x-hex as an indexer stores it)."""
        given = "0x" + onchain.hex() if isinstance(onchain, bytes) else onchain.lower()
        if given != self.content_hash:
            raise InvalidMetadata(
                [("content_hash", f"{self.content_hash} differs from the on-chain {given}")]
            )


def content_hash_of(plaintext: bytes) -> str:
    """The `content_hash` of a plaintext prompt: its sha256 as 0x-prefixed lowercase hex."""
    return "0x" + hashlib.sha256(plaintext).hexdigest()


# ---------------------------------------------------------------------------- validation


def validate_metadata(doc: dict[str, Any] | bytes | str) -> PromptMetadata:
    """Validate a metadata document (parsed JSON, or JSON text/bytes) and return the model.

    Raises InvalidMetadata whose message names each wrong field's path.
    """
    if isinstance(doc, dict):
        try:
            raw: bytes | str = json.dumps(doc, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidMetadata([(DOCUMENT, f"not JSON-serialisable: {exc}")]) from None
    elif isinstance(doc, (bytes, str)):
        raw = doc
    else:
        raise InvalidMetadata([(DOCUMENT, f"expected a dict, bytes or str, not {type(doc).__name__}")])
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidMetadata([(DOCUMENT, f"{size} bytes is over the {MAX_DOCUMENT_BYTES}-byte limit")])
    try:
        return PromptMetadata.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidMetadata(problems(exc)) from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the metadata document."""
    schema = PromptMetadata.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "GENERATED by `python -m ascendnet.prompt_metadata`; see docs/PROMPT_SCHEMA.md.",
        **schema,
    }


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
