"""The read side as the write-side commands see it: after a transaction, wait until the API's
indexer has reached the transaction's block, then show what the API now says.

The API is read-only and may lag the chain by a few blocks, so a command that just mined a
transaction polls `/status` until `indexed_head` covers that block (bounded by a timeout), then
GETs the resource. When the API is not reachable the command still succeeded on-chain: it says
so and shows nothing more, instead of failing.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

DEFAULT_API_URL = "http://127.0.0.1:8000"


class ApiUnavailable(Exception):
    """The API did not answer, answered an error, or did not catch up in time."""


@dataclass(frozen=True)
class ApiView:
    url: str = DEFAULT_API_URL
    timeout: float = 20.0

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET `path` and return the decoded JSON body; ApiUnavailable on any failure."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        target = f"{self.url.rstrip('/')}{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(target, timeout=5) as resp:  # noqa: S310 - http(s) URL from settings
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise ApiUnavailable(f"GET {path} answered {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise ApiUnavailable(f"GET {target} failed: {exc.reason}") from None
        except (OSError, ValueError) as exc:
            raise ApiUnavailable(f"GET {target} failed: {exc}") from None
        if not isinstance(body, dict):
            raise ApiUnavailable(f"GET {path} did not answer a JSON object")
        return body

    def indexed_head(self) -> int | None:
        """The block the API's read models reflect (`meta.indexed_head`: the store may hold
        later blocks that the read models do not show yet)."""
        head = self.get("/status").get("meta", {}).get("indexed_head")
        return int(head) if head is not None else None

    def wait_for_block(self, block: int) -> int:
        """Wait until the indexer reflects `block`; returns the indexed head."""
        deadline = time.monotonic() + self.timeout
        while True:
            head = self.indexed_head()
            if head is not None and head >= block:
                return head
            if time.monotonic() >= deadline:
                raise ApiUnavailable(f"the API's indexer is at block {head}, not yet at {block}")
            time.sleep(0.2)

    def after(self, block: int | None, path: str, **params: Any) -> dict[str, Any]:
        """The resource at `path` as of (at least) `block`."""
        if block is not None:
            self.wait_for_block(block)
        return self.get(path, **params)


def show(
    console: Console,
    api: ApiView | None,
    path: str,
    *,
    block: int | None = None,
    fields: tuple[str, ...] = (),
    where: dict[str, Any] | None = None,
    **params: Any,
) -> dict[str, Any] | None:
    """Print what the API shows at `path` (GET with query `params`) once it has indexed
    `block`: the named `fields` of its `data` ("a.b" reaches into an object; null ones are left
    out; all of them when none are named). Of a page, the first item whose fields equal `where`.
    Returns the body, or None when the API is off (api is None) or unavailable, which is said,
    not raised."""
    if api is None:
        return None
    try:
        body = api.after(block, path, **params)
    except ApiUnavailable as exc:
        console.print(
            f"  [yellow]API:[/] not shown ({escape(str(exc))}); the on-chain state above is authoritative"
        )
        return None
    data = body.get("data")
    if isinstance(data, list):
        matching = [
            i for i in data if isinstance(i, dict) and all(i.get(k) == v for k, v in (where or {}).items())
        ]
        item: Any = matching[0] if matching else None
    else:
        item = data
    head = body.get("meta", {}).get("indexed_head")
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    shown = path + (f"?{query}" if query else "")
    if isinstance(item, dict):
        chosen = {k: _field(item, k) for k in fields} if fields else item
        rendered = ", ".join(f"{k}={_short(v)}" for k, v in chosen.items() if v is not None)
    else:
        rendered = "(nothing)" if item is None else _short(item)
    console.print(f"  API {escape(shown)} (indexed head {head}): {escape(rendered)}", highlight=False)
    return body


def _field(item: dict[str, Any], name: str) -> Any:
    value: Any = item
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + "; ".join(_short(v) for v in value[:5]) + ("; ..." if len(value) > 5 else "") + "]"
    return str(value)
