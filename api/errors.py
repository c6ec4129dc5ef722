"""The API's errors: one root, structured leaves, each mapped to one HTTP status and a message
that tells the client what to do next."""

from __future__ import annotations

from ascendnet.errors import AscendNetError


class ApiError(AscendNetError):
    """Base class of every error the API answers on purpose."""

    status_code = 500
    code = "error"


class NotFound(ApiError, LookupError):
    """The resource does not exist (yet) in the read models."""

    status_code = 404
    code = "not_found"

    def __init__(self, what: str, key: object, hint: str = "") -> None:
        self.what = what
        self.key = key
        message = f"{what} {key} is not in the indexed read models."
        super().__init__(f"{message} {hint}".strip())


class InvalidInput(ApiError, ValueError):
    """A request value is well-formed for its type but unusable (a stale or foreign cursor)."""

    status_code = 422
    code = "invalid_request"

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"{location}: {reason}")


class DatabaseUnavailable(ApiError, ConnectionError):
    """The read models cannot be read right now (no database, not migrated, query timed out)."""

    status_code = 503
    code = "database_unavailable"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"The read models cannot be read: {reason}. Check that the indexer's database exists and is "
            "migrated (`ascendnet indexer run` creates it), then retry."
        )
