"""The job spec: what a client asks a provider's agent to run, and the agent's policy on it.

A client stores the spec (JSON) in the content store, then posts the job with the spec's CID
(``specCid``) and the sha256 of the exact spec bytes (``specHash``). An agent fetches the bytes by
CID and calls `parse_spec`, which refuses them unless they hash to ``specHash`` and follow the
schema, then `check_policy` against its own limits. docs/JOB_SPEC.md explains every field;
docs/job_spec.schema.json is the JSON Schema, generated from this module:

    python -m agent.jobspec > docs/job_spec.schema.json
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from agent.errors import InvalidJobSpec, PolicyViolation, SpecHashMismatch
from ascendnet.storage.cid import Cid
from ascendnet.storage.errors import InvalidCid
from ascendnet.validation import DOCUMENT, FieldProblem, problems

SCHEMA_VERSION = "ascendnet.job/v1"
#: Specs larger than this are refused before parsing (fetch them with this as `max_bytes`).
MAX_SPEC_BYTES = 64 * 1024
INPUTS_DIR = "/inputs"
OUTPUTS_DIR = "/outputs"
MAX_ENV_VARS = 64
MAX_ENV_BYTES = 16 * 1024
#: Variables a job may not set: they steer the dynamic loader, the GPU runtime or the agent.
RESERVED_ENV = re.compile(r"^(LD_[A-Z0-9_]*|NVIDIA_[A-Z0-9_]*|CUDA_VISIBLE_DEVICES|ASCENDNET_[A-Z0-9_]*)$")

__all__ = [
    "MAX_SPEC_BYTES",
    "SCHEMA_VERSION",
    "AgentPolicy",
    "ImageRef",
    "InputSpec",
    "JobSpec",
    "ResourceSpec",
    "check_policy",
    "json_schema",
    "parse_image_ref",
    "parse_spec",
    "spec_hash",
]


# ---------------------------------------------------------------------------- image references

_DIGEST = r"sha256:[0-9a-f]{64}"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|localhost)(?::[0-9]{1,5})?|[A-Za-z0-9-]+:[0-9]{1,5})"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_IMAGE_ID = re.compile(rf"^{_DIGEST}$")
_IMAGE_PATTERN = rf"^({_DIGEST}|[A-Za-z0-9._:/@-]{{1,255}})$"


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed image reference.

    `kind` is ``"id"`` (``sha256:<hex>``, a local image ID), ``"digest"`` (``name@sha256:<hex>``,
    a registry manifest digest; a tag before ``@`` is ignored, as Docker does) or ``"tag"``
    (``name[:tag]``, mutable: only allowed when the policy names it).
    """

    kind: Literal["id", "digest", "tag"]
    name: str  # normalised repository ("busybox" for docker.io/library/busybox); "" for an ID
    tag: str | None
    digest: str | None

    @property
    def pinned(self) -> bool:
        """Whether the reference names immutable content (an ID or a digest)."""
        return self.kind != "tag"

    def canonical(self) -> str:
        if self.kind == "id":
            return str(self.digest)
        if self.kind == "digest":
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or 'latest'}"


def parse_image_ref(text: str) -> ImageRef:
    """Parse an image reference; raise ValueError saying what is wrong with it."""
    if _IMAGE_ID.match(text):
        return ImageRef("id", "", None, text)
    if text.startswith("sha256:"):
        raise ValueError("an image ID is 'sha256:' and 64 lowercase hex digits")
    if len(text) > 255:
        raise ValueError("an image reference is at most 255 characters")
    match = _REFERENCE.match(text)
    if match is None:
        raise ValueError(
            "not an image reference: expected an image ID ('sha256:<64 hex>'), a digest "
            "('name@sha256:<64 hex>') or a tag ('name:tag')"
        )
    name = match["name"]
    for prefix in ("docker.io/", "index.docker.io/"):
        name = name.removeprefix(prefix)
    name = name.removeprefix("library/")
    if match["digest"]:
        return ImageRef("digest", name, match["tag"], match["digest"])
    return ImageRef("tag", name, match["tag"] or "latest", None)


def _check_image(value: str) -> str:
    parse_image_ref(value)
    return value


# ---------------------------------------------------------------------------- field types


def _check_cid(value: str) -> str:
    try:
        Cid.parse(value)
    except InvalidCid as exc:
        raise ValueError(exc.reason + " (expected a CIDv0 'Qm...' or a base32 CIDv1 'b...')") from None
    return value


_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def _check_input_path(value: str) -> str:
    if value.startswith("/"):
        raise ValueError(f"must be relative to {INPUTS_DIR} (no leading '/')")
    parts = value.split("/")
    if len(parts) > 16:
        raise ValueError("at most 16 directory levels")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError("must not contain empty, '.' or '..' components")
        if not _SEGMENT.match(part):
            raise ValueError(
                f"component {part!r} may only use letters, digits, '.', '_' and '-', "
                "and may not start with '.' or '-'"
            )
    return value


def _check_arg(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    return value


def _check_env_value(value: str) -> str:
    if any(c in value for c in "\x00\r\n"):
        raise ValueError("must be one line without NUL bytes")
    return value


CidStr = Annotated[
    str,
    AfterValidator(_check_cid),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{58})$",
            "description": "A sha2-256 CID as `ipfs add` prints it: CIDv0 ('Qm...') "
            "or CIDv1 in base32 ('b...').",
        }
    ),
]
Sha256Hex = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
InputPath = Annotated[
    str,
    Field(min_length=1, max_length=255),
    AfterValidator(_check_input_path),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*){0,15}$",
            "description": "Relative path under /inputs, e.g. 'data/train.csv'.",
        }
    ),
]
ImageStr = Annotated[
    str,
    AfterValidator(_check_image),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _IMAGE_PATTERN,
            "description": "Image ID 'sha256:<64 hex>', digest 'name@sha256:<64 hex>', or a tag 'name:tag' "
            "that the agent's policy allows.",
        }
    ),
]
Arg = Annotated[str, Field(max_length=8192), AfterValidator(_check_arg)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
EnvValue = Annotated[str, Field(max_length=4096), AfterValidator(_check_env_value)]


class _Strict(BaseModel):
    # NOTE: strict, so JSON "2" is not a number and 1.5 is not an int; specs are JSON and are
    # always parsed as JSON (`parse_spec`).
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class InputSpec(_Strict):
    """One input: content fetched by CID, verified, and mounted read-only at /inputs/<path>."""

    cid: CidStr
    path: InputPath
    sha256: Sha256Hex | None = Field(
        None, description="Optional sha256 of the content (0x-prefixed hex); checked after fetching."
    )


class ResourceSpec(_Strict):
    """What the job needs. The agent refuses specs above its policy's limits."""

    gpus: int = Field(0, ge=0, le=16, description="Whole GPUs, passed through device requests.")
    vram_mb: int = Field(0, ge=0, le=1_048_576, description="Minimum VRAM per GPU, in MiB (0: any).")
    cpus: float = Field(1.0, gt=0, le=256, description="CPU limit (fractions allowed).")
    memory_mb: int = Field(
        512, ge=16, le=4_194_304, description="Memory limit in MiB; covers what the job keeps in /tmp."
    )
    disk_mb: int = Field(
        1024, ge=0, le=16_777_216, description="Scratch space the job may use in /tmp, in MiB."
    )

    @model_validator(mode="after")
    def _vram_needs_gpus(self) -> ResourceSpec:
        if self.vram_mb and not self.gpus:
            raise FieldProblem(("vram_mb",), "asks for VRAM without GPUs; set `gpus` too")
        return self


class JobSpec(_Strict):
    """A job spec (schema `ascendnet.job/v1`); see docs/JOB_SPEC.md."""

    schema_version: Literal["ascendnet.job/v1"] = Field(description="Always 'ascendnet.job/v1'.")
    image: ImageStr
    command: list[Arg] = Field(
        min_length=1, max_length=256, description="argv of the job (replaces the image's CMD)."
    )
    inputs: list[InputSpec] = Field(default_factory=list, max_length=256)
    outputs_dir: Literal["/outputs"] = Field(
        "/outputs", description="Fixed: the job writes its results here; they are packed and hashed."
    )
    resources: ResourceSpec = Field(default_factory=ResourceSpec)
    timeout_seconds: int = Field(
        ge=1, le=7 * 86_400, description="Wall-clock limit; the job is killed after it."
    )
    env: dict[EnvName, EnvValue] = Field(
        default_factory=dict,
        max_length=MAX_ENV_VARS,
        description="Environment variables (single-line values; LD_*, NVIDIA_*, CUDA_VISIBLE_DEVICES and "
        "ASCENDNET_* are reserved).",
    )

    @model_validator(mode="after")
    def _check_lists(self) -> JobSpec:
        if sum(len(a.encode()) for a in self.command) > 64 * 1024:
            raise FieldProblem(("command",), "the arguments add up to more than 64 KiB")
        seen: dict[str, int] = {}
        for i, item in enumerate(self.inputs):
            if item.path in seen:
                raise FieldProblem(("inputs", i, "path"), f"duplicate path {item.path!r}")
            seen[item.path] = i
        for i, item in enumerate(self.inputs):
            parts = item.path.split("/")
            for depth in range(1, len(parts)):
                parent = "/".join(parts[:depth])
                if parent in seen:
                    raise FieldProblem(
                        ("inputs", i, "path"), f"is inside {parent!r}, which is itself an input file"
                    )
        for name in self.env:
            if RESERVED_ENV.match(name):
                raise FieldProblem(
                    ("env", name), "is reserved (it steers the loader, the GPU runtime or the agent)"
                )
        if sum(len(k.encode()) + len(v.encode()) for k, v in self.env.items()) > MAX_ENV_BYTES:
            raise FieldProblem(("env",), f"names and values add up to more than {MAX_ENV_BYTES} bytes")
        return self

    @property
    def image_ref(self) -> ImageRef:
        return parse_image_ref(self.image)

    def canonical_json(self) -> bytes:
        """Compact UTF-8 JSON with sorted keys: the bytes a client stores and hashes."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()


def spec_hash(raw: bytes) -> bytes:
    """The on-chain ``specHash`` of spec bytes: their sha256."""
    return hashlib.sha256(raw).digest()


def parse_spec(raw: bytes, *, expected_sha256: bytes | str, spec_cid: str = "") -> JobSpec:
    """Verify spec bytes against the job's on-chain ``specHash``, then validate them.

    `expected_sha256` is the 32-byte hash (or its 0x-hex). Raises SpecHashMismatch before even
    looking at bytes that do not hash to it, and InvalidJobSpec naming each wrong field.
    """
    if isinstance(expected_sha256, str):
        expected = bytes.fromhex(expected_sha256.removeprefix("0x"))
    else:
        expected = bytes(expected_sha256)
    if len(expected) != 32:
        raise ValueError(f"specHash is 32 bytes, not {len(expected)}")
    actual = spec_hash(raw)
    if actual != expected:
        raise SpecHashMismatch(expected="0x" + expected.hex(), actual="0x" + actual.hex(), spec_cid=spec_cid)
    if len(raw) > MAX_SPEC_BYTES:
        raise InvalidJobSpec([(DOCUMENT, f"{len(raw)} bytes is over the {MAX_SPEC_BYTES}-byte limit")])
    try:
        return JobSpec.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidJobSpec(problems(exc)) from None


# ---------------------------------------------------------------------------- policy


def _check_policy_image(value: str) -> str:
    parse_image_ref(value)
    return value


class AgentPolicy(BaseModel):
    """What this agent accepts to run. A plain model, meant to be nested in the agent's settings.

    Images: a spec's image is allowed when `allowed_images` names it (compared after
    normalising ``docker.io/library/``), or, for an image pinned by ID or digest, when
    `allow_any_digest` is set. A tag is never allowed by `allow_any_digest`: tags move.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_images: list[Annotated[str, AfterValidator(_check_policy_image)]] = Field(
        default_factory=list, description="Image IDs, digests or tags this agent runs."
    )
    allow_any_digest: bool = Field(False, description="Run any image pinned by ID or digest.")
    max_gpus: int = Field(0, ge=0, description="GPUs one job may use (0: CPU-only jobs).")
    max_vram_mb: int = Field(0, ge=0, description="VRAM per GPU this agent offers, MiB (0: not checked).")
    max_cpus: float = Field(2.0, gt=0)
    max_memory_mb: int = Field(2048, ge=16)
    max_disk_mb: int = Field(4096, ge=0)
    max_timeout_seconds: int = Field(3600, ge=1)
    max_inputs: int = Field(16, ge=0)
    max_output_bytes: int = Field(256 * 1024 * 1024, ge=1, description="Packed output size limit.")

    def allows_image(self, ref: ImageRef) -> bool:
        allowed = {parse_image_ref(entry).canonical() for entry in self.allowed_images}
        if ref.canonical() in allowed:
            return True
        return ref.pinned and self.allow_any_digest


def check_policy(spec: JobSpec, policy: AgentPolicy) -> None:
    """Raise PolicyViolation, naming the rule, if `spec` asks for more than `policy` allows."""
    ref = spec.image_ref
    if not policy.allows_image(ref):
        if ref.pinned:
            reason = f"image {spec.image!r} is not in allowed_images and allow_any_digest is off"
        else:
            reason = (
                f"image {spec.image!r} is a mutable tag that allowed_images does not name; "
                "pin it by digest (name@sha256:...) or ask the provider to allow the tag"
            )
        raise PolicyViolation("allowed_images", reason)
    res = spec.resources
    if res.gpus > policy.max_gpus:
        offer = "no GPUs" if policy.max_gpus == 0 else f"at most {policy.max_gpus} GPU(s)"
        raise PolicyViolation("max_gpus", f"the job asks for {res.gpus} GPU(s); this agent offers {offer}")
    if res.gpus and policy.max_vram_mb and res.vram_mb > policy.max_vram_mb:
        raise PolicyViolation(
            "max_vram_mb",
            f"the job needs {res.vram_mb} MiB of VRAM per GPU; this agent has {policy.max_vram_mb}",
        )
    limits: list[tuple[str, float, float, str]] = [
        ("max_cpus", res.cpus, policy.max_cpus, "CPUs"),
        ("max_memory_mb", res.memory_mb, policy.max_memory_mb, "MiB of memory"),
        ("max_disk_mb", res.disk_mb, policy.max_disk_mb, "MiB of scratch disk"),
        ("max_timeout_seconds", spec.timeout_seconds, policy.max_timeout_seconds, "seconds of run time"),
        ("max_inputs", len(spec.inputs), policy.max_inputs, "inputs"),
    ]
    for rule, asked, limit, unit in limits:
        if asked > limit:
            raise PolicyViolation(rule, f"the job asks for {asked:g} {unit}; the limit is {limit:g}")


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a job spec."""
    schema = JobSpec.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "GENERATED by `python -m agent.jobspec`; see docs/JOB_SPEC.md.",
        **schema,
    }


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
