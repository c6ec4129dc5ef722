"""Errors of the worker agent. `AgentError` is the root; leaves carry fields."""

from __future__ import annotations

from ascendnet.errors import AscendNetError


class AgentError(AscendNetError):
    """Anything the agent refuses or cannot do."""


# --- sandbox and output packing (agent/sandbox.py, agent/packing.py) ---


class UnsafeOutput(AgentError, ValueError):
    """A job's output holds something the canonical tar refuses (see agent/packing.py)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"output entry {path!r} is refused: {reason}. Jobs may write only regular files, directories "
            "and relative symlinks that stay inside /outputs."
        )


class OutputTooLarge(AgentError):
    """A job's packed output exceeds the size limit of the agent's policy."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the job's output is over the limit ({size} > {limit} bytes); "
            "the job must write less to /outputs, or the policy must allow more."
        )


class SandboxError(AgentError):
    """The sandbox could not run a job (the agent's side, not the job's own failure)."""


class InvalidSandboxRequest(SandboxError, ValueError):
    """A sandbox request is malformed or unsafe; nothing was started."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"sandbox request field {field!r} is invalid: {reason}")


class ImageNotAvailable(SandboxError, LookupError):
    """The job's image is not present in the local Docker engine; the sandbox never pulls."""

    def __init__(self, image: str) -> None:
        self.image = image
        super().__init__(
            f"image {image!r} is not in the local Docker engine. No registry is used: load or build it "
            "first (`docker load`, or agent.images for the test images), and pin it by ID."
        )


class GpuUnavailable(SandboxError):
    """The job asks for more GPUs than this host can give it."""

    def __init__(self, requested: int, available: int) -> None:
        self.requested = requested
        self.available = available
        super().__init__(
            f"the job asks for {requested} GPU(s) but the sandbox has {available}; "
            "do not bid on GPU jobs without GPUs (see `ascendnet agent resources`)."
        )


# --- job specs and the agent's policy (agent/jobspec.py) ---


class InvalidJobSpec(AgentError, ValueError):
    """A job spec does not follow the schema (docs/JOB_SPEC.md).

    `field` is the path of the first wrong field (e.g. ``resources.cpus`` or ``inputs[1].path``),
    `reason` what is wrong with it, and `problems` every ``(field, reason)`` found.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        if not problems:
            raise ValueError("InvalidJobSpec needs at least one problem")
        self.problems = tuple(problems)
        self.field, self.reason = self.problems[0]
        rendered = "; ".join(
            f"job spec: {r}" if f == "(document)" else f"job spec field `{f}`: {r}" for f, r in self.problems
        )
        super().__init__(f"{rendered} (see docs/JOB_SPEC.md)")


class SpecHashMismatch(AgentError, ValueError):
    """The bytes fetched for a job's spec do not hash to the job's on-chain `specHash`."""

    def __init__(self, *, expected: str, actual: str, spec_cid: str = "") -> None:
        self.expected = expected
        self.actual = actual
        self.spec_cid = spec_cid
        source = f" fetched from {spec_cid}" if spec_cid else ""
        super().__init__(
            f"the job spec{source} has sha256 {actual}, but the job's on-chain specHash is {expected}; "
            "the spec was swapped or corrupted, so the job is refused."
        )


class PolicyViolation(AgentError):
    """A valid job spec asks for something this agent's policy does not allow.

    `rule` names the policy limit (e.g. ``max_memory_mb`` or ``allowed_images``).
    """

    def __init__(self, rule: str, reason: str) -> None:
        self.rule = rule
        self.reason = reason
        super().__init__(f"job refused by the agent's policy ({rule}): {reason}")
