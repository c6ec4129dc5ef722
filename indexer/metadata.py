"""Prompt metadata: the public documents prompt NFTs name by CID, fetched from the content store,
validated, and kept in `prompt_metadata` for the API to show and search.

`resolve_pending` finds the metadata CIDs of indexed prompts that have no row yet, and the
unavailable ones whose retry is due, fetches each (the store checks the bytes against the CID),
validates it (`ascendnet.prompt_metadata.validate_metadata`) and upserts one row per CID:

- `resolved`: title, description, the document's content hash and schema version;
- `invalid`, for good: not a CID, over the size limit, not JSON, not the schema. A CID names
  fixed bytes, so fetching it again cannot help; `error` says why;
- `unavailable`: not found, the store down or slow, a corrupt copy. Retried after 30 s, then
  doubling up to an hour (`retry_delay`).

Nothing here raises for a bad document: every outcome is a row. `MetadataResolver` is what
`indexer run` calls between steps once it follows the head (a cursor over token ids, a time
budget per call, a pause while the store is down); `ascendnet indexer resolve-metadata` runs it
on its own.

NOTE: this is not chain-derived state. The rows are a cache of content-addressed documents,
written outside the projector's transactions: no block digest covers them, no undo entry
restores them, and `rebuild` leaves them alone. A reorg cannot make a row wrong (the bytes of a
CID never change); it can only change which prompts join it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ascendnet.log import get_logger
from ascendnet.prompt_metadata import MAX_DOCUMENT_BYTES, SCHEMA_VERSION, InvalidMetadata, validate_metadata
from ascendnet.storage import ContentStore, ContentTooLarge, InvalidCid, StorageError, StoreUnavailable
from indexer import models

log = get_logger("indexer.metadata")

Status = Literal["resolved", "invalid", "unavailable"]
RESOLVED: Status = "resolved"
INVALID: Status = "invalid"
UNAVAILABLE: Status = "unavailable"

#: Most documents one call fetches.
DEFAULT_BATCH = 16
#: Seconds before the first retry of an unavailable document; each failure doubles it ...
RETRY_BASE = 30
#: ... up to this.
RETRY_CAP = 3600
#: `error` is cut to this many characters (a validator can list dozens of problems).
MAX_ERROR_CHARS = 500

T = models.prompt_metadata
P = models.TABLES[models.Prompt]


def retry_delay(attempts: int) -> int:
    """Seconds to wait after the `attempts`-th failed fetch: 30, 60, 120, ... at most 3600."""
    return int(min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_CAP))


def search_text(title: str, description: str) -> str:
    """What `/prompts?q=` matches its (casefolded) needle against."""
    return f"{title}\n{description}".casefold()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one fetch of a metadata document gave."""

    cid: str
    status: Status
    schema_version: str | None = None
    title: str | None = None
    description: str | None = None
    content_hash: str | None = None
    error: str | None = None
    #: The store itself failed (not this document): stop fetching for now.
    store_down: bool = False


@dataclass(frozen=True, slots=True)
class ResolveReport:
    """What one `resolve_pending` call did."""

    resolved: int = 0
    invalid: int = 0
    unavailable: int = 0
    #: It stopped at a document the store could not serve because the store is down.
    store_down: bool = False
    #: More documents may be pending now (it stopped at `limit`, at its budget or at a down store).
    more: bool = False
    #: Every prompt up to this token id has a row or was fetched: pass it back as `after_token_id`.
    scanned_through: int = 0

    @property
    def attempted(self) -> int:
        return self.resolved + self.invalid + self.unavailable


class _Declared(msgspec.Struct):
    """The one field read from a document that failed validation."""

    schema_version: Any = None


def _declared_version(raw: bytes) -> str | None:
    try:
        declared = msgspec.json.decode(raw, type=_Declared).schema_version
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return declared[:64] if isinstance(declared, str) else None


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def fetch_document(store: ContentStore, cid: str) -> Outcome:
    """Fetch and validate the document `cid` names. Never raises: every failure is an Outcome."""
    try:
        raw = store.get(cid, max_bytes=MAX_DOCUMENT_BYTES)
    except InvalidCid as exc:
        return Outcome(cid, INVALID, error=_short(f"not a CID: {exc.reason}"))
    except ContentTooLarge as exc:
        return Outcome(cid, INVALID, error=f"document over the {exc.limit}-byte limit")
    except StoreUnavailable as exc:
        return Outcome(cid, UNAVAILABLE, error=_short(str(exc)), store_down=True)
    except (StorageError, OSError) as exc:
        # Not found (yet), a slow node, a corrupt copy: another fetch may succeed.
        return Outcome(cid, UNAVAILABLE, error=_short(str(exc)))
    except Exception as exc:  # noqa: BLE001
        # NOTE: a store client failing in a way it does not map (a bug, an odd answer) is
        # retried like an unavailable document: it must never stop the indexer.
        return Outcome(cid, UNAVAILABLE, error=_short(f"{type(exc).__name__}: {exc}"))
    try:
        meta = validate_metadata(raw)
    except InvalidMetadata as exc:
        declared = _declared_version(raw)
        if declared is not None and declared != SCHEMA_VERSION:
            why = f"schema_version {declared!r} is not {SCHEMA_VERSION!r}, the one this indexer reads"
            return Outcome(cid, INVALID, schema_version=declared, error=_short(why))
        return Outcome(cid, INVALID, schema_version=declared, error=_short(str(exc)))
    return Outcome(
        cid,
        RESOLVED,
        schema_version=meta.schema_version,
        title=meta.title,
        description=meta.description,
        content_hash=meta.content_hash,
    )


@dataclass(frozen=True, slots=True)
class _Pending:
    cid: str
    #: Failed attempts so far (0 for a CID never fetched).
    attempts: int
    #: The first prompt naming it, for a CID never fetched; None for a retry.
    token_id: int | None


def _new_cids(conn: Connection, after: int, limit: int) -> tuple[list[tuple[int, str]], int]:
    """(token id, CID) of prompts after `after` whose CID has no row, in token order, and the
    highest token id now."""
    head = int(conn.execute(sa.select(sa.func.max(P.c.token_id))).scalar() or 0)
    # NOTE: walks the prompts' primary key from the cursor, so a call costs what it finds, not
    # the size of the catalogue.
    query = (
        sa.select(P.c.token_id, P.c.metadata_cid)
        .where(
            P.c.token_id > after,
            P.c.token_id <= head,
            P.c.metadata_cid.is_not(None),
            ~sa.exists().where(T.c.metadata_cid == P.c.metadata_cid),
        )
        .order_by(P.c.token_id)
        .limit(limit)
    )
    return [(int(r[0]), str(r[1])) for r in conn.execute(query)], head


def _due_retries(conn: Connection, now: int, limit: int) -> list[tuple[str, int]]:
    """(CID, attempts) of unavailable documents due by `now`, the longest waiting first."""
    query = (
        sa.select(T.c.metadata_cid, T.c.attempts)
        .where(T.c.status == UNAVAILABLE, T.c.next_attempt_at <= now)
        .order_by(T.c.next_attempt_at, T.c.metadata_cid)
        .limit(limit)
    )
    return [(str(r[0]), int(r[1])) for r in conn.execute(query)]


def _row(item: _Pending, outcome: Outcome, now: int) -> dict[str, Any]:
    attempts = item.attempts + 1
    resolved = outcome.status == RESOLVED
    return {
        "metadata_cid": outcome.cid,
        "status": outcome.status,
        "schema_version": outcome.schema_version,
        "title": outcome.title,
        "description": outcome.description,
        "content_hash": outcome.content_hash,
        "search_text": (search_text(outcome.title or "", outcome.description or "") if resolved else None),
        "attempts": attempts,
        "attempted_at": now,
        "resolved_at": now if resolved else None,
        "next_attempt_at": now + retry_delay(attempts) if outcome.status == UNAVAILABLE else None,
        "error": outcome.error,
    }


def _upsert(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        insert: Any = postgresql.insert(T)
    elif dialect == "sqlite":
        insert = sqlite.insert(T)
    else:  # pragma: no cover - the indexer runs on these two
        raise NotImplementedError(f"prompt metadata needs SQLite or PostgreSQL, not {dialect}")
    statement = insert.on_conflict_do_update(
        index_elements=[T.c.metadata_cid],
        set_={c.name: insert.excluded[c.name] for c in T.c if c.name != "metadata_cid"},
        # A resolved document is final: a slower resolver beside this one must not undo it.
        where=T.c.status != RESOLVED,
    )
    conn.execute(statement, list(rows))


def resolve_pending(
    engine: Engine,
    store: ContentStore,
    *,
    limit: int = DEFAULT_BATCH,
    now: int | None = None,
    after_token_id: int = 0,
    budget: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ResolveReport:
    """Fetch, validate and record up to `limit` pending metadata documents.

    Pending: the CIDs of prompts with token id above `after_token_id` that have no row (first),
    then unavailable ones whose retry is due at `now` (unix seconds; default the clock). With
    `budget` (seconds), no fetch starts once that much time has passed. No database
    transaction is open while fetching; the rows are written in one transaction at the end.
    """
    now = int(time.time()) if now is None else now
    started = clock()
    with engine.connect() as conn:
        new, head = _new_cids(conn, after_token_id, limit)
        due = _due_retries(conn, now, limit - len(new)) if len(new) < limit else []
    work: list[_Pending] = []
    seen: set[str] = set()
    for token_id, cid in new:
        if cid not in seen:  # two prompts may name one document
            seen.add(cid)
            work.append(_Pending(cid, 0, token_id))
    for cid, attempts in due:
        if cid not in seen:
            seen.add(cid)
            work.append(_Pending(cid, attempts, None))

    done: list[tuple[_Pending, Outcome]] = []
    store_down = False
    for item in work:
        if budget is not None and done and clock() - started >= budget:
            break
        outcome = fetch_document(store, item.cid)
        done.append((item, outcome))
        if outcome.store_down:
            store_down = True
            break
        if outcome.status != RESOLVED:
            log.info("metadata_not_resolved", cid=item.cid, status=outcome.status, error=outcome.error)
    if done:
        with engine.begin() as conn:
            _upsert(conn, [_row(item, outcome, now) for item, outcome in done])

    left = [item.token_id for item in work[len(done) :] if item.token_id is not None]
    if left:
        scanned_through = min(left) - 1
    elif len(new) == limit:
        scanned_through = new[-1][0]
    else:
        scanned_through = head
    counts = {s: sum(1 for _, o in done if o.status == s) for s in (RESOLVED, INVALID, UNAVAILABLE)}
    return ResolveReport(
        resolved=counts[RESOLVED],
        invalid=counts[INVALID],
        unavailable=counts[UNAVAILABLE],
        store_down=store_down,
        more=len(done) < len(work) or len(new) + len(due) >= limit,
        scanned_through=scanned_through,
    )


class MetadataResolver:
    """`resolve_pending` as a long-running indexer calls it: it keeps the token-id cursor between
    calls (`rescan` starts over, after a reorg), spends at most about `budget` seconds per call,
    and pauses `RETRY_BASE` seconds after the store was found down."""

    def __init__(
        self,
        engine: Engine,
        store: ContentStore,
        *,
        batch: int = DEFAULT_BATCH,
        budget: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.store = store
        self.batch = batch
        self.budget = budget
        self.clock = clock
        self.wall_clock = wall_clock
        self._after = 0
        self._paused_until: float | None = None

    def rescan(self) -> None:
        """Look at every prompt again on the next call (a reorg may have re-minted token ids)."""
        self._after = 0

    def run(self) -> ResolveReport | None:
        """One bounded call; None while paused after the store was down."""
        if self._paused_until is not None and self.clock() < self._paused_until:
            return None
        self._paused_until = None
        report = resolve_pending(
            self.engine,
            self.store,
            limit=self.batch,
            now=int(self.wall_clock()),
            after_token_id=self._after,
            budget=self.budget,
            clock=self.clock,
        )
        self._after = report.scanned_through
        if report.store_down:
            self._paused_until = self.clock() + RETRY_BASE
            log.warning(
                "metadata_store_unavailable",
                store=self.store.name,
                retry_in_seconds=RETRY_BASE,
                hint="check the content store (ASCENDNET_STORAGE__*); prompts keep their CIDs meanwhile",
            )
        if report.attempted:
            log.info(
                "metadata_resolved",
                resolved=report.resolved,
                invalid=report.invalid,
                unavailable=report.unavailable,
                more=report.more,
            )
        return report
