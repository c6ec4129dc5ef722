"""The raw event log stores its arguments in the API's form: integers as decimal strings.

`events.args` held the canonical JSON of an event's arguments, integers as JSON numbers, and
the API decoded every row's arguments to write its integers as exact strings, then encoded them
again (91 to 108 us per page of 50 events; passing the stored text through takes 42). The
table now holds that form and the API passes it through (indexer/argforms.py). Keys stay
sorted, the JSON compact.

Digests cover the canonical form whatever the table holds, so no digest changes: a migrated
database, a fresh index and a rebuild all compare equal.

The rows are rewritten in batches by id within the migration's one transaction: a crash leaves
the old form everywhere. Downgrade turns the integers back by each event's integer fields as
they were at this revision.

Self-contained on purpose: it must not change when indexer/argforms.py does.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
import structlog
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 20_000
#: The indexer's own log (structlog, as `ascendnet indexer run` configures it): Alembic's stdlib
#: logger is not shown there, and a user waiting minutes for `indexer run` to start sees this.
_log = structlog.get_logger("indexer.migrations")
_encode = msgspec.json.Encoder(order="sorted").encode
_decode = msgspec.json.Decoder().decode

#: Event name -> its integer arguments at this revision ("*": a struct of integers).
_INTEGERS: dict[str, tuple[str, ...]] = {
    "Approval": ("token_id",),
    "BidPlaced": ("job_id", "price"),
    "Credited": ("amount",),
    "DeliveryWindowUpdated": ("delivery_window",),
    "DisputeResolved": ("job_id", "provider_bps", "provider_payout", "fee", "client_refund"),
    "DisputeTimedOut": ("job_id", "refund"),
    "FeeCharged": ("amount",),
    "JobAssigned": ("job_id", "price", "refund", "execution_deadline"),
    "JobCancelled": ("job_id", "refund"),
    "JobCompleted": ("job_id", "payout", "fee"),
    "JobDisputed": ("job_id", "dispute_deadline"),
    "JobExpired": ("job_id", "refund"),
    "JobFailed": ("job_id", "refund", "slashed"),
    "JobPosted": ("job_id", "amount", "bid_deadline", "execution_timeout"),
    "KeyDelivered": ("license_id", "token_id", "seller_proceeds", "fee"),
    "LicensePurchased": ("license_id", "token_id", "price", "delivery_deadline"),
    "LicenseRefunded": ("license_id", "token_id", "refund"),
    "LicenseTermsSet": ("token_id", "price"),
    "ListingCancelled": ("token_id",),
    "ParamsUpdated": ("params*",),
    "PromptListed": ("token_id", "price"),
    "PromptMinted": ("token_id", "royalty_bps"),
    "PromptRated": ("token_id", "license_id", "score"),
    "PromptSold": ("token_id", "price", "seller_proceeds", "royalty", "fee"),
    "ProviderRegistered": ("stake",),
    "ProviderSlashed": ("job_id", "amount"),
    "ProviderUnbonded": ("stake",),
    "ResultSubmitted": ("job_id", "challenge_end"),
    "StakeAdded": ("amount", "stake"),
    "Transfer": ("token_id",),
    "UnbondingRequested": ("available_at",),
    "Withdrawn": ("amount",),
}


def _as_text(value: Any) -> Any:
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is dict:
        return {k: _as_text(v) for k, v in value.items()}
    if kind is list:
        return [_as_text(v) for v in value]
    return value


def _to_api_form(_event: str, text: str) -> str:
    return _encode(_as_text(_decode(text))).decode()


def _to_canonical(event: str, text: str) -> str:
    args = _decode(text)
    for name in _INTEGERS.get(event, ()):
        if name.endswith("*"):
            name = name[:-1]
            if isinstance(args.get(name), dict):
                args[name] = {k: int(v) for k, v in args[name].items()}
        elif args.get(name) is not None:
            args[name] = int(args[name])
    return _encode(args).decode()


_PG_UPDATE = "UPDATE events SET args = new.args FROM (VALUES %s) AS new (id, args) WHERE events.id = new.id"


def _rewrite(convert: Callable[[str, str], str], what: str) -> None:
    conn = op.get_bind()
    events = sa.table("events", sa.column("id", sa.BigInteger), sa.column("event"), sa.column("args"))
    total = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() or 0
    update = events.update().where(events.c.id == sa.bindparam("_id")).values(args=sa.bindparam("_args"))
    postgresql = conn.dialect.name == "postgresql"
    done = changed = last = 0
    started = reported = time.monotonic()
    while True:
        rows = conn.execute(
            sa.select(events.c.id, events.c.event, events.c.args)
            .where(events.c.id > last)
            .order_by(events.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        params = []
        for id_, event, args in rows:
            try:
                text = convert(event, args)
            except (msgspec.DecodeError, TypeError, ValueError) as exc:
                # Nothing is written: the migration's transaction rolls back every batch.
                raise RuntimeError(
                    f"0005: events row {id_} ({event}) holds arguments the indexer never writes "
                    f"({exc}); nothing was changed. The raw event log is a read model: empty it "
                    "(DELETE FROM events), upgrade again, then `ascendnet indexer rebuild` refills "
                    "it from the event store."
                ) from exc
            if text != args:
                params.append((id_, text))
        if params and postgresql:
            # One `UPDATE ... FROM (VALUES ...)` per 1,000 rows, built by psycopg2: SQLAlchemy's
            # executemany (a statement per row) and its compiled VALUES both rewrote only
            # 5,000 to 6,000 rows a second, most of it in Python.
            from psycopg2.extras import execute_values

            with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                execute_values(cursor, _PG_UPDATE, params, page_size=1_000)
        elif params:
            conn.execute(update, [{"_id": id_, "_args": text} for id_, text in params])
        done += len(rows)
        changed += len(params)
        last = rows[-1][0]
        if time.monotonic() - reported >= 5:
            reported = time.monotonic()
            _log.info(
                "migration_progress",
                revision="0005",
                what=what,
                done=done,
                total=total,
                seconds=round(reported - started),
            )
    took = time.monotonic() - started
    _log.info(
        "migration_done", revision="0005", what=what, rewritten=changed, total=total, seconds=round(took, 1)
    )


def upgrade() -> None:
    _rewrite(_to_api_form, "integers to decimal strings")


def downgrade() -> None:
    _rewrite(_to_canonical, "decimal strings to integers")
