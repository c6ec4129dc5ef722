"""The indexer's log source: eth_getLogs over the protocol contracts in adaptive block ranges,
checked against the node's own block headers, with retries and fail-over across RPC URLs.

Every answer is checked before it is trusted:

- the logs, the node's head and the header of the range's last block come from one JSON-RPC batch
  (one HTTP request, so one backend behind a load balancer). An empty log list is only trusted
  from a node that has the range's last block: a lagging node answers `[]` for blocks it has not
  seen, and that must cause a retry, never a skipped range;
- every block that has logs is fetched again as a header, and the logs' `blockHash` must equal
  the header's hash; the last block's header must not change between the two requests (the chain
  did not move while we were reading it).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import requests
from eth_utils.address import to_checksum_address
from web3 import HTTPProvider
from web3.types import RPCEndpoint

from ascendnet.log import get_logger
from indexer.errors import IndexerError
from indexer.store import BlockRef

log = get_logger("indexer.rpc")

FinalityMode = Literal["tag", "confirmations"]
T = TypeVar("T")

#: Substrings of provider error messages meaning "ask for fewer blocks at once" (geth, erigon,
#: Infura, Alchemy, QuickNode, Ankr, BlastAPI, Cloudflare, nethermind, besu, anvil forks...).
_TOO_LARGE_MARKERS = (
    "query returned more than",
    "response size exceeded",
    "response size should not greater than",
    "response too large",
    "log response size exceeded",
    "block range",
    "range is too large",
    "range too large",
    "too many results",
    "too many logs",
    "too many blocks",
    "exceed maximum block range",
    "exceeds the range",
    "limit exceeded",
    "results exceed",
    "max results",
    "query timeout",
    "request timed out",
    "timeout",
    "query exceeds max",
    "maximum block range",
    "allowed block range",
    "block range limit",
    "please limit the query",
)
#: JSON-RPC error codes that mean the same (-32005: "limit exceeded" in EIP-1474, used by Infura
#: for "query returned more than 10000 results"; -32602 is only one when its message says so).
_TOO_LARGE_CODES = frozenset({-32005})


class RpcUnavailable(IndexerError, ConnectionError):
    """No RPC URL gave a usable answer after every retry."""

    def __init__(self, what: str, attempts: int, errors: Mapping[str, str]) -> None:
        self.what = what
        self.attempts = attempts
        self.errors = dict(errors)
        detail = "; ".join(f"{url}: {err}" for url, err in self.errors.items())
        super().__init__(
            f"Could not {what} after {attempts} attempts ({detail}). Check that the RPC node(s) are up "
            "and synced, or pass more with --rpc-url."
        )


class _Retryable(Exception):
    """An answer we must not use: ask again (maybe another node) after a backoff."""


class _RpcAnswerError(_Retryable):
    def __init__(self, code: int | None, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"JSON-RPC error {code}: {message}")


class _TooLarge(_Retryable):
    """The node refused or could not finish the range: ask for fewer blocks."""


class _NodeBehind(_Retryable):
    """The node does not have (all of) the blocks it was asked about, or changed its mind."""


@dataclass(frozen=True, slots=True)
class FetchedBlock:
    """One block of a fetched range: its header and its logs (raw, ordered by log index)."""

    ref: BlockRef
    logs: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class FetchedRange:
    """Verified logs for blocks `start..end` (inclusive).

    `blocks` holds, in ascending order, every block with logs plus the blocks whose headers were
    asked for (the range's last block, and every block at or above `dense_from`).
    """

    start: int
    end: int
    blocks: list[FetchedBlock]
    node_head: int

    @property
    def end_ref(self) -> BlockRef:
        return self.blocks[-1].ref

    @property
    def log_count(self) -> int:
        return sum(len(b.logs) for b in self.blocks)

    def ref(self, number: int) -> BlockRef | None:
        for b in self.blocks:
            if b.ref.number == number:
                return b.ref
        return None


@dataclass
class _Endpoint:
    url: str
    provider: HTTPProvider
    batch_ok: bool = True
    finalized_tag_ok: bool = True
    last_error: str = ""

    def call(self, method: str, params: Sequence[Any]) -> Any:
        try:
            response = self.provider.make_request(RPCEndpoint(method), list(params))
        except (requests.RequestException, OSError, ValueError) as exc:
            raise _transport_error(exc) from exc
        return _result_of(response)

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Results of `calls`, in order; one HTTP request when the node takes batches.

        Each element is the result, or an `_RpcAnswerError` instance for a call that failed."""
        if not calls:
            return []
        if self.batch_ok:
            try:
                response = self.provider.make_batch_request([(RPCEndpoint(m), list(p)) for m, p in calls])
            except (requests.RequestException, OSError, ValueError) as exc:
                raise _transport_error(exc) from exc
            if isinstance(response, list) and len(response) == len(calls):
                return [_result_or_error(r) for r in response]
            if isinstance(response, dict) and "error" in response and _refuses_batches(response["error"]):
                # NOTE: some providers refuse JSON-RPC batches outright; fall back to one call each.
                log.warning("rpc_batch_refused", url=self.url, error=str(response["error"])[:200])
                self.batch_ok = False
            else:
                raise _Retryable(f"malformed batch answer: {str(response)[:200]}")
        results: list[Any] = []
        for method, params in calls:
            try:
                results.append(self.call(method, params))
            except _RpcAnswerError as exc:
                results.append(exc)
        return results


@dataclass
class LogSource:
    """Fetches the protocol contracts' logs from one or more RPC URLs.

    `addresses` are the contracts whose logs are wanted. Ranges start at `initial_span` blocks,
    halve on "too many results"/size/timeout answers (down to 1 block) and double again after
    `grow_after` successes in a row (up to `max_span`), shrinking again when a range brings more
    than `target_logs` logs. Failed requests are retried up to
    `max_attempts` times with jittered exponential backoff, moving to the next URL each time.
    """

    urls: Sequence[str]
    addresses: Sequence[str]
    finality: FinalityMode = "tag"
    confirmations: int = 64
    initial_span: int = 2_000
    min_span: int = 1
    max_span: int = 10_000
    grow_after: int = 2
    max_attempts: int = 8
    backoff_base: float = 0.1
    backoff_max: float = 5.0
    timeout: float = 20.0
    header_batch_size: int = 500
    #: Logs to aim for per range: bounds the memory of one step on dense chains.
    target_logs: int = 5_000
    sleep: Callable[[float], None] = time.sleep
    span: int = field(init=False)
    _endpoints: list[_Endpoint] = field(init=False, repr=False)
    _current: int = field(init=False, default=0, repr=False)
    _successes: int = field(init=False, default=0, repr=False)
    # NOTE: one request sequence at a time: the runner prefetches the next range in a thread.
    _lock: threading.RLock = field(init=False, default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        if not self.urls:
            raise IndexerError("No RPC URL given. Pass --rpc-url (repeatable) or set ASCENDNET_RPC_URLS.")
        self.addresses = [to_checksum_address(a) for a in self.addresses]
        self.span = max(self.min_span, min(self.initial_span, self.max_span))
        self._endpoints = [
            _Endpoint(
                url=url,
                provider=HTTPProvider(
                    url, request_kwargs={"timeout": self.timeout}, exception_retry_configuration=None
                ),
            )
            for url in self.urls
        ]

    # ------------------------------------------------------------------ public

    def head(self) -> int:
        """The node's latest block number."""
        return self._with_retries(
            "read the head block number", lambda ep: _int(ep.call("eth_blockNumber", []))
        )

    def chain_id(self) -> int:
        """The node's chain id."""
        return self._with_retries("read the chain id", lambda ep: _int(ep.call("eth_chainId", [])))

    def finalized(self, head: int | None = None) -> int:
        """The highest block the indexer may treat as final.

        In "tag" mode the node's `finalized` block (falling back to `head - confirmations` on
        nodes without the tag); in "confirmations" mode `head - confirmations`."""

        def ask(ep: _Endpoint) -> int:
            node_head = head if head is not None else _int(ep.call("eth_blockNumber", []))
            by_confirmations = max(node_head - self.confirmations, 0)
            if self.finality == "confirmations" or not ep.finalized_tag_ok:
                return by_confirmations
            try:
                block = ep.call("eth_getBlockByNumber", ["finalized", False])
            except _RpcAnswerError as exc:
                if not _refuses_tag(exc):
                    raise  # a transient error: retried like any other
                log.warning("rpc_no_finalized_tag", url=ep.url, error=exc.message[:200])
                ep.finalized_tag_ok = False
                return by_confirmations
            if not block:
                return by_confirmations
            return min(_int(block["number"]), node_head)

        return self._with_retries("read the finalized block", ask)

    def headers(self, numbers: Iterable[int]) -> dict[int, BlockRef | None]:
        """The node's headers for `numbers` (None where the node has no such block), batched."""
        wanted = sorted(set(numbers))
        return self._with_retries("read block headers", lambda ep: self._headers(ep, wanted))

    def fetch(self, start: int, end: int, *, dense_from: int | None = None) -> FetchedRange:
        """Verified logs for `start..x`, where `x <= end` is as far as the current span allows.

        Headers are returned for every block with logs, for blocks `start` and `x`, and for every block in
        `max(start, dense_from)..x` (the unfinalized window, where reorgs must be detectable)."""
        if end < start:
            raise ValueError(f"empty range {start}..{end}")
        with self._lock:
            return self._fetch_adaptive(start, end, dense_from)

    # ---------------------------------------------------------------- internals

    def _fetch_adaptive(self, start: int, end: int, dense_from: int | None) -> FetchedRange:
        attempts = 0
        errors: dict[str, str] = {}
        while True:
            stop = min(end, start + self.span - 1)
            ep = self._endpoints[self._current]
            try:
                fetched = self._fetch_once(ep, start, stop, dense_from)
            except _TooLarge as exc:
                errors[ep.url] = str(exc)
                if self.span > self.min_span:
                    self.span = max(self.min_span, self.span // 2)
                    self._successes = 0
                    log.info("rpc_range_shrunk", url=ep.url, span=self.span, reason=str(exc)[:200])
                    if not isinstance(exc.__cause__, (requests.RequestException, OSError)):
                        continue  # a size refusal is immediate: no need to wait before retrying
                attempts += 1
                if attempts >= self.max_attempts:
                    raise RpcUnavailable(f"fetch logs for blocks {start}..{stop}", attempts, errors) from exc
                self._backoff(attempts, ep, exc)
                continue
            except _Retryable as exc:
                errors[ep.url] = str(exc)
                attempts += 1
                if attempts >= self.max_attempts:
                    raise RpcUnavailable(f"fetch logs for blocks {start}..{stop}", attempts, errors) from exc
                self._backoff(attempts, ep, exc)
                continue
            self._adapt(fetched)
            return fetched

    def _adapt(self, fetched: FetchedRange) -> None:
        """After a success: aim the next range at about `target_logs` logs (memory per step
        stays bounded however dense the chain is); grow after `grow_after` light successes."""
        blocks = fetched.end - fetched.start + 1
        count = fetched.log_count
        if count > self.target_logs:
            self.span = max(self.min_span, min(self.span, blocks * self.target_logs // count))
            self._successes = 0
            return
        if count * 2 > self.target_logs:
            return  # about right: keep the span
        self._successes += 1
        if self._successes >= self.grow_after and self.span < self.max_span:
            self.span = min(self.max_span, self.span * 2)
            self._successes = 0

    def _fetch_once(self, ep: _Endpoint, start: int, end: int, dense_from: int | None) -> FetchedRange:
        flt = {"address": list(self.addresses), "fromBlock": hex(start), "toBlock": hex(end)}
        head_answer, end_answer, logs_answer = ep.batch(
            [
                ("eth_blockNumber", []),
                ("eth_getBlockByNumber", [hex(end), False]),
                ("eth_getLogs", [flt]),
            ]
        )
        if isinstance(logs_answer, _RpcAnswerError):
            raise _TooLarge(logs_answer.message) if _is_too_large(logs_answer) else logs_answer
        for answer in (head_answer, end_answer):
            if isinstance(answer, _RpcAnswerError):
                raise answer
        node_head = _int(head_answer)
        if node_head < end or not end_answer:
            # NOTE: the lagging-node guard. A node that has not seen block `end` may answer []
            # for it; that answer is worthless, so retry (on the next URL) instead of skipping.
            raise _NodeBehind(f"node is at block {node_head}, behind the range end {end}")
        if not isinstance(logs_answer, list):
            raise _Retryable(f"eth_getLogs answered {str(logs_answer)[:200]}")
        end_ref = _ref(end_answer)

        by_block: dict[int, list[dict[str, Any]]] = {}
        for raw in logs_answer:
            if raw.get("removed"):
                raise _NodeBehind(f"node returned a removed log in block {raw.get('blockNumber')}")
            entry = dict(raw)
            entry["blockNumber"] = number = _int(raw["blockNumber"])
            entry["logIndex"] = _int(raw["logIndex"])
            if not start <= number <= end:
                raise _Retryable(f"eth_getLogs returned a log of block {number}, outside {start}..{end}")
            by_block.setdefault(number, []).append(entry)

        # The first block's header lets the caller check it extends what it already has.
        wanted = set(by_block) | {start, end}
        if dense_from is not None:
            wanted |= set(range(max(start, dense_from), end + 1))
        headers = self._headers(ep, sorted(wanted))
        again = headers.get(end)
        if again is None or again.hash != end_ref.hash:
            raise _NodeBehind(f"block {end} changed while its logs were read (reorg or lagging node)")

        blocks: list[FetchedBlock] = []
        for number in sorted(wanted):
            ref = headers.get(number)
            if ref is None:
                raise _NodeBehind(f"node has logs but no header for block {number}")
            logs = by_block.get(number, [])
            for entry in logs:
                if str(entry["blockHash"]).lower() != ref.hash:
                    raise _NodeBehind(
                        f"logs of block {number} name block hash {entry['blockHash']}, "
                        f"but the node's header has {ref.hash}"
                    )
            logs.sort(key=lambda e: int(e["logIndex"]))
            blocks.append(FetchedBlock(ref=ref, logs=logs))
        return FetchedRange(start=start, end=end, blocks=blocks, node_head=node_head)

    def _headers(self, ep: _Endpoint, numbers: Sequence[int]) -> dict[int, BlockRef | None]:
        out: dict[int, BlockRef | None] = {}
        size = max(1, self.header_batch_size)
        for i in range(0, len(numbers), size):
            chunk = numbers[i : i + size]
            answers = ep.batch([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
            for number, answer in zip(chunk, answers, strict=True):
                if isinstance(answer, _RpcAnswerError):
                    raise answer
                ref = _ref(answer) if answer else None
                if ref is not None and ref.number != number:
                    raise _Retryable(f"asked for block {number}, got block {ref.number}")
                out[number] = ref
        return out

    def _with_retries(self, what: str, op: Callable[[_Endpoint], T]) -> T:
        with self._lock:
            return self._retrying(what, op)

    def _retrying(self, what: str, op: Callable[[_Endpoint], T]) -> T:
        errors: dict[str, str] = {}
        for attempt in range(1, self.max_attempts + 1):
            ep = self._endpoints[self._current]
            try:
                return op(ep)
            except _Retryable as exc:
                errors[ep.url] = str(exc)
                if attempt >= self.max_attempts:
                    raise RpcUnavailable(what, attempt, errors) from exc
                self._backoff(attempt, ep, exc)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, ep: _Endpoint, exc: Exception) -> None:
        ep.last_error = str(exc)
        if len(self._endpoints) > 1:
            self._current = (self._current + 1) % len(self._endpoints)
        # Full jitter: a random delay up to the exponential cap, so many indexers restarting
        # together do not hammer the node in lock-step.
        delay = random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))
        log.warning(
            "rpc_retry",
            url=ep.url,
            attempt=attempt,
            next_url=self._endpoints[self._current].url,
            delay_s=round(delay, 3),
            error=str(exc)[:300],
        )
        self.sleep(delay)


def _transport_error(exc: Exception) -> _Retryable:
    """Timeouts, and HTTP answers that mean "too big" (413, 504 from a gateway that gave up),
    shrink the range; anything else is retried as it is."""
    if isinstance(exc, requests.Timeout):
        return _TooLarge(f"timed out ({exc.__class__.__name__})")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (413, 504):
        return _TooLarge(f"HTTP {status}")
    return _Retryable(f"{exc.__class__.__name__}: {exc}")


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(str(value), 16) if str(value).startswith("0x") else int(str(value))


def _ref(header: Mapping[str, Any]) -> BlockRef:
    return BlockRef(
        number=_int(header["number"]),
        hash=str(header["hash"]).lower(),
        parent_hash=str(header["parentHash"]).lower(),
        timestamp=_int(header["timestamp"]),
    )


def _result_of(response: Any) -> Any:
    if not isinstance(response, dict):
        raise _Retryable(f"malformed JSON-RPC answer: {str(response)[:200]}")
    if "error" in response and response["error"] is not None:
        err = response["error"]
        if isinstance(err, dict):
            raise _RpcAnswerError(err.get("code"), str(err.get("message", err)))
        raise _RpcAnswerError(None, str(err))
    if "result" not in response:
        raise _Retryable(f"JSON-RPC answer without a result: {str(response)[:200]}")
    return response["result"]


def _result_or_error(response: Any) -> Any:
    try:
        return _result_of(response)
    except _RpcAnswerError as exc:
        return exc


def _is_too_large(err: _RpcAnswerError) -> bool:
    if err.code in _TOO_LARGE_CODES:
        return True
    text = err.message.lower()
    return any(marker in text for marker in _TOO_LARGE_MARKERS)


def _refuses_tag(err: _RpcAnswerError) -> bool:
    """A node that predates the `finalized` tag calls it an invalid parameter."""
    text = err.message.lower()
    return err.code == -32602 or any(w in text for w in ("finalized", "tag", "invalid", "not supported"))


def _refuses_batches(error: Any) -> bool:
    text = str(error).lower()
    return "batch" in text
