"""Turning pydantic validation errors into ``(field path, reason)`` pairs that name the wrong
field the way users write it (``inputs[1].path``), shared by every public document schema
(prompt metadata, job specs)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

#: Stands for the document as a whole in error messages (not JSON, not an object, too large).
DOCUMENT = "(document)"


class FieldProblem(ValueError):
    """Raise inside a validator to blame a sub-field of the value being validated (e.g. one
    element of a list), so the error names the exact path."""

    def __init__(self, at: tuple[str | int, ...], reason: str) -> None:
        self.at = at
        super().__init__(reason)


def describe(error: Any) -> tuple[str, str]:
    """One pydantic error (an item of `ValidationError.errors()`) as (field path, reason)."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    reason = str(error["msg"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblem):
        loc, reason = loc + cause.at, str(cause)
    elif error["type"] == "value_error":
        reason = reason.removeprefix("Value error, ")
    if loc and loc[-1] == "[key]":  # pydantic's marker for a bad dict key: blame the entry
        loc, reason = loc[:-1], f"bad name: {reason}"
    return field_path(loc), reason


def problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Every error of `exc` as (field path, reason), in document order."""
    return [describe(e) for e in exc.errors()]


def field_path(loc: tuple[str | int, ...]) -> str:
    """``("inputs", 1, "path")`` -> ``"inputs[1].path"``; the empty path is DOCUMENT."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or DOCUMENT
