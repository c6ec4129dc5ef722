"""Job specs: a spec is accepted only if it hashes to the on-chain specHash and follows the schema
(errors name the wrong field), the agent's policy refuses what it will not run, and the published
JSON Schema cannot go stale."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent.errors import AgentError, InvalidJobSpec, PolicyViolation, SpecHashMismatch
from agent.jobspec import (
    MAX_SPEC_BYTES,
    AgentPolicy,
    JobSpec,
    check_policy,
    json_schema,
    parse_image_ref,
    parse_spec,
    spec_hash,
)
from ascendnet.validation import DOCUMENT

DOCS = Path(__file__).resolve().parents[2] / "docs"
DIGEST = "sha256:" + "ab" * 32
IMAGE_ID = "sha256:" + "cd" * 32
CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
CID_V1 = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


def example() -> dict[str, Any]:
    return {
        "schema_version": "ascendnet.job/v1",
        "image": f"ghcr.io/acme/trainer@{DIGEST}",
        "command": ["python", "/app/train.py", "--epochs", "3"],
        "inputs": [
            {
                "cid": CID,
                "path": "data/train.csv",
                "sha256": "0x" + hashlib.sha256(b"hello world\n").hexdigest(),
            },
            {"cid": CID_V1, "path": "config.json"},
        ],
        "resources": {"gpus": 1, "vram_mb": 16000, "cpus": 4, "memory_mb": 8192, "disk_mb": 2048},
        "timeout_seconds": 1800,
        "env": {"EPOCHS": "3", "run_name": "baseline"},
    }


def raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def parse(doc: dict[str, Any]) -> JobSpec:
    data = raw(doc)
    return parse_spec(data, expected_sha256=spec_hash(data))


# ---------------------------------------------------------------------------- accepted specs


def test_valid_spec_is_parsed() -> None:
    spec = parse(example())
    assert spec.image_ref.kind == "digest"
    assert spec.image_ref.name == "ghcr.io/acme/trainer"
    assert spec.inputs[0].path == "data/train.csv"
    assert spec.resources.gpus == 1 and spec.resources.cpus == 4.0
    assert spec.outputs_dir == "/outputs"
    assert spec.env == {"EPOCHS": "3", "run_name": "baseline"}


def test_defaults_make_a_minimal_spec() -> None:
    spec = parse(
        {"schema_version": "ascendnet.job/v1", "image": IMAGE_ID, "command": ["true"], "timeout_seconds": 5}
    )
    assert spec.inputs == [] and spec.env == {}
    assert (spec.resources.gpus, spec.resources.cpus, spec.resources.memory_mb) == (0, 1.0, 512)


def test_canonical_json_is_deterministic_and_parses_back() -> None:
    spec = parse(example())
    reordered = parse(dict(reversed(list(example().items()))))
    assert spec.canonical_json() == reordered.canonical_json()
    canonical = spec.canonical_json()
    assert parse_spec(canonical, expected_sha256=hashlib.sha256(canonical).digest()) == spec


def test_spec_hash_may_be_given_as_hex() -> None:
    data = raw(example())
    assert parse_spec(data, expected_sha256="0x" + hashlib.sha256(data).hexdigest()) == parse(example())


# ---------------------------------------------------------------------------- hash mismatch


def test_spec_whose_hash_differs_from_the_on_chain_hash_is_refused() -> None:
    data = raw(example())
    onchain = hashlib.sha256(b"the spec the client really posted").digest()
    with pytest.raises(SpecHashMismatch) as info:
        parse_spec(data, expected_sha256=onchain, spec_cid=CID)
    err = info.value
    assert isinstance(err, AgentError)
    assert err.expected == "0x" + onchain.hex()
    assert err.actual == "0x" + hashlib.sha256(data).hexdigest()
    assert onchain.hex() in str(err) and CID in str(err)


def test_hash_is_checked_before_parsing() -> None:
    # Garbage with the wrong hash is a hash mismatch, never a parse error: unverified bytes are
    # not even parsed.
    with pytest.raises(SpecHashMismatch):
        parse_spec(b"{not json", expected_sha256=bytes(32))


# ---------------------------------------------------------------------------- malformed specs


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.pop(key)


def _append_input(item: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc["inputs"].append(item)


MALFORMED = [
    ("other schema version", _set("schema_version", "ascendnet.job/v2"), "schema_version"),
    ("missing image", _drop("image"), "image"),
    ("not an image reference", _set("image", "Bad Image!"), "image"),
    ("truncated digest", _set("image", "busybox@sha256:abcd"), "image"),
    ("empty command", _set("command", []), "command"),
    ("command not a list", _set("command", "python train.py"), "command"),
    ("NUL in an argument", _set("command", ["sh", "a\x00b"]), "command[1]"),
    ("input path escapes /inputs", _set("inputs.0.path", "../etc/passwd"), "inputs[0].path"),
    ("absolute input path", _set("inputs.0.path", "/etc/passwd"), "inputs[0].path"),
    ("hidden input path", _set("inputs.0.path", "data/.ssh"), "inputs[0].path"),
    ("input CID not a CID", _set("inputs.1.cid", "QmNotACid"), "inputs[1].cid"),
    ("input sha256 not hex", _set("inputs.0.sha256", "abc"), "inputs[0].sha256"),
    ("duplicate input path", _append_input({"cid": CID, "path": "config.json"}), "inputs[2].path"),
    ("input inside an input file", _append_input({"cid": CID, "path": "config.json/x"}), "inputs[2].path"),
    ("outputs elsewhere", _set("outputs_dir", "/tmp"), "outputs_dir"),
    ("cpus as a string", _set("resources.cpus", "4"), "resources.cpus"),
    ("no cpus", _set("resources.cpus", 0), "resources.cpus"),
    ("fractional GPUs", _set("resources.gpus", 0.5), "resources.gpus"),
    ("VRAM without GPUs", _set("resources.gpus", 0), "resources.vram_mb"),
    ("zero timeout", _set("timeout_seconds", 0), "timeout_seconds"),
    ("timeout as a string", _set("timeout_seconds", "60"), "timeout_seconds"),
    ("newline in an env value", _set("env.EPOCHS", "3\nLD_PRELOAD=/x.so"), "env.EPOCHS"),
    ("reserved env name", _set("env.LD_PRELOAD", "/tmp/x.so"), "env.LD_PRELOAD"),
    ("GPU runtime env name", _set("env.NVIDIA_VISIBLE_DEVICES", "all"), "env.NVIDIA_VISIBLE_DEVICES"),
    ("unknown field", _set("network", True), "network"),
    ("unknown resource", _set("resources.network", "host"), "resources.network"),
]


@pytest.mark.parametrize(("mutate", "field"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_spec_names_the_wrong_field(mutate: Callable[[dict[str, Any]], None], field: str) -> None:
    doc = copy.deepcopy(example())
    mutate(doc)
    with pytest.raises(InvalidJobSpec) as info:
        parse(doc)
    assert info.value.field == field, info.value.problems
    assert f"`{field}`" in str(info.value)


def test_too_many_env_vars_are_refused() -> None:
    doc = example()
    doc["env"] = {f"V{i}": "x" for i in range(65)}
    with pytest.raises(InvalidJobSpec) as info:
        parse(doc)
    assert info.value.field == "env"


def test_bad_env_name_is_named() -> None:
    doc = example()
    doc["env"] = {"1BAD": "x"}
    with pytest.raises(InvalidJobSpec) as info:
        parse(doc)
    assert info.value.field == "env.1BAD"
    assert "bad name" in info.value.reason


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b"null"], ids=["not JSON", "a list", "null"])
def test_a_spec_that_is_not_a_json_object_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidJobSpec) as info:
        parse_spec(data, expected_sha256=spec_hash(data))
    assert info.value.field == DOCUMENT


def test_an_oversized_spec_is_refused() -> None:
    doc = example()
    doc["command"] = ["x" * 8000] * 9
    data = raw(doc)
    assert len(data) > MAX_SPEC_BYTES
    with pytest.raises(InvalidJobSpec) as info:
        parse_spec(data, expected_sha256=spec_hash(data))
    assert info.value.field == DOCUMENT


# ---------------------------------------------------------------------------- image references


@pytest.mark.parametrize(
    ("text", "kind", "canonical"),
    [
        (IMAGE_ID, "id", IMAGE_ID),
        (f"busybox@{DIGEST}", "digest", f"busybox@{DIGEST}"),
        (f"docker.io/library/busybox:1.36@{DIGEST}", "digest", f"busybox@{DIGEST}"),
        (f"localhost:5000/team/app@{DIGEST}", "digest", f"localhost:5000/team/app@{DIGEST}"),
        ("busybox", "tag", "busybox:latest"),
        ("docker.io/library/python:3.11-slim", "tag", "python:3.11-slim"),
        (
            "registry.example.com:443/ml/torch:2.3.0-cuda12",
            "tag",
            "registry.example.com:443/ml/torch:2.3.0-cuda12",
        ),
    ],
)
def test_image_references_are_parsed(text: str, kind: str, canonical: str) -> None:
    ref = parse_image_ref(text)
    assert ref.kind == kind
    assert ref.canonical() == canonical
    assert ref.pinned == (kind != "tag")


@pytest.mark.parametrize(
    "text", ["", "UPPER/case", "busybox@sha256:xyz", "a b", "sha256:" + "0" * 63, ":tag"]
)
def test_bad_image_references_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_image_ref(text)


# ---------------------------------------------------------------------------- policy

POLICY = AgentPolicy(
    allowed_images=["python:3.11-slim", IMAGE_ID],
    allow_any_digest=True,
    max_gpus=2,
    max_vram_mb=24_000,
    max_cpus=8,
    max_memory_mb=16_384,
    max_disk_mb=8192,
    max_timeout_seconds=3600,
    max_inputs=4,
)


def with_(**changes: Any) -> JobSpec:
    doc = example()
    for key, value in changes.items():
        if key in ("gpus", "vram_mb", "cpus", "memory_mb", "disk_mb"):
            doc["resources"][key] = value
        else:
            doc[key] = value
    return parse(doc)


def test_a_spec_within_the_policy_passes() -> None:
    check_policy(parse(example()), POLICY)
    check_policy(with_(image="docker.io/library/python:3.11-slim"), POLICY)  # an allowed tag
    check_policy(with_(image=IMAGE_ID, gpus=0, vram_mb=0), POLICY)


@pytest.mark.parametrize(
    ("spec_changes", "rule"),
    [
        ({"image": "python:3.12-slim"}, "allowed_images"),
        ({"image": "busybox"}, "allowed_images"),
        ({"gpus": 3}, "max_gpus"),
        ({"vram_mb": 40_000}, "max_vram_mb"),
        ({"cpus": 8.5}, "max_cpus"),
        ({"memory_mb": 32_768}, "max_memory_mb"),
        ({"disk_mb": 10_000}, "max_disk_mb"),
        ({"timeout_seconds": 7200}, "max_timeout_seconds"),
        ({"inputs": [{"cid": CID, "path": f"f{i}"} for i in range(5)]}, "max_inputs"),
    ],
)
def test_policy_violations_name_the_rule(spec_changes: dict[str, Any], rule: str) -> None:
    with pytest.raises(PolicyViolation) as info:
        check_policy(with_(**spec_changes), POLICY)
    assert info.value.rule == rule
    assert rule in str(info.value)


def test_a_mutable_tag_is_refused_with_advice_to_pin_it() -> None:
    with pytest.raises(PolicyViolation) as info:
        check_policy(with_(image="busybox:latest"), POLICY)
    assert "pin it by digest" in info.value.reason


def test_digests_need_allow_any_digest_or_an_entry() -> None:
    strict = POLICY.model_copy(update={"allow_any_digest": False})
    with pytest.raises(PolicyViolation, match="allow_any_digest"):
        check_policy(parse(example()), strict)
    listed = strict.model_copy(update={"allowed_images": [f"ghcr.io/acme/trainer@{DIGEST}"]})
    check_policy(parse(example()), listed)


def test_a_cpu_only_agent_refuses_gpu_jobs() -> None:
    cpu_only = POLICY.model_copy(update={"max_gpus": 0})
    with pytest.raises(PolicyViolation, match="offers no GPUs"):
        check_policy(parse(example()), cpu_only)


def test_policy_refuses_malformed_image_entries() -> None:
    with pytest.raises(ValidationError):
        AgentPolicy(allowed_images=["not an image!"])


# ---------------------------------------------------------------------------- JSON Schema


def test_schema_file_is_the_generated_schema() -> None:
    on_disk = json.loads((DOCS / "job_spec.schema.json").read_text())
    assert on_disk == json_schema(), (
        "docs/job_spec.schema.json is stale: regenerate it with "
        "`python -m agent.jobspec > docs/job_spec.schema.json`"
    )


def test_schema_accepts_the_example_and_refuses_bad_specs() -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    validator = jsonschema_rs.validator_for(json_schema())
    assert validator.is_valid(example())
    for mutate in (_set("image", "Bad Image!"), _set("outputs_dir", "/tmp"), _set("resources.cpus", "4")):
        doc = copy.deepcopy(example())
        mutate(doc)
        assert not validator.is_valid(doc)


def test_job_spec_doc_shows_a_spec_that_parses() -> None:
    text = (DOCS / "JOB_SPEC.md").read_text()
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    spec = parse(json.loads(block))
    assert spec.schema_version == "ascendnet.job/v1"
    assert set(json_schema()["properties"]) <= set(text.replace("`", " ").split())
