"""Pure folds: how each contract event changes the read models.

`apply(state, event)` takes the current state (a read-only `State`: look a row up by its kind and
key) and one `LogIndexed` event, and returns the rows the event changes, as their new values.
It does no I/O and reads no clock: times come from the event's block. The projector owns the
database, the transaction, the caches and the undo log.

Every returned row names the log that changed it (`block_number`, `tx_hash`, `log_index`).
Events for rows that do not exist (history indexed from the wrong block) change nothing here;
the raw event log still records them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from chain import events as ev
from chain.provenance import ChainEvent
from indexer.domain import LogIndexed
from indexer.models import (
    AssetAllowance,
    Bid,
    ContractState,
    FeeDay,
    Job,
    Licence,
    Listing,
    Owed,
    Prompt,
    Provider,
    ProviderEarning,
    Rating,
    Result,
    RoleMember,
    Row,
    Sale,
    field_index,
    values_getter,
)

R = TypeVar("R", bound=Row)
Changes = tuple[Row, ...]
RowRef = tuple[type[Row], tuple[Any, ...]]


class State(Protocol):
    """Read-only access to the current read-model rows."""

    def get(self, kind: type[R], key: tuple[Any, ...]) -> R | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Ctx:
    """What a fold knows about where an event happened."""

    contract: str
    address: str
    timestamp: int
    block_number: int
    tx_hash: str
    log_index: int

    @property
    def prov(self) -> dict[str, Any]:
        return {"block_number": self.block_number, "tx_hash": self.tx_hash, "log_index": self.log_index}


E = TypeVar("E", bound=ChainEvent)
Handler = Callable[[State, Any, Ctx], Changes]
_HANDLERS: dict[str, Handler] = {}


def _on(cls: type[E]) -> Callable[[Callable[[State, E, Ctx], Changes]], Callable[[State, E, Ctx], Changes]]:
    def register(fn: Callable[[State, E, Ctx], Changes]) -> Callable[[State, E, Ctx], Changes]:
        _HANDLERS[cls.NAME] = fn
        return fn

    return register


def apply(state: State, event: LogIndexed) -> Changes:
    """The rows `event` changes, given `state`, as their new values (pure)."""
    handler = _HANDLERS.get(event.event)
    if handler is None:
        return ()
    ctx = Ctx(
        contract=event.contract,
        address=event.address,
        timestamp=event.block_timestamp,
        block_number=event.block_number,
        tx_hash=event.tx_hash,
        log_index=event.log_index,
    )
    return handler(state, event.chain_event(), ctx)


def handled_events() -> frozenset[str]:
    """Names of the events that change read models beyond the raw event log."""
    return frozenset(_HANDLERS)


def reads(event: LogIndexed) -> Iterator[RowRef]:
    """Rows `apply` will look up for `event` that can be named from the event alone, so the
    projector can load a whole batch's rows in a few queries. (Rows found through another row,
    such as a job's provider, are looked up when needed.)"""
    a = event.args
    if "job_id" in a:
        yield Job, (a["job_id"],)
        if "provider" in a:
            yield Bid, (a["job_id"], a["provider"])
    if "token_id" in a:
        yield Prompt, (a["token_id"],)
    if "license_id" in a:
        yield Licence, (a["license_id"],)
    if "provider" in a:
        yield Provider, (a["provider"],)
    name = event.event
    if name == "PromptSold":
        yield Sale, (event.block_number, event.log_index)
    elif name == "PromptRated":
        yield Rating, (a["license_id"],)
    elif name == "ResultSubmitted":
        yield Result, (a["job_id"],)
    elif name == "AssetAllowanceSet":
        yield AssetAllowance, (event.contract, a["asset"])
    elif name in ("RoleGranted", "RoleRevoked"):
        yield RoleMember, (event.contract, a["role"], a["account"])
    if name in ("Credited", "Withdrawn"):
        yield Owed, (a["account"], a["asset"], event.contract)
    elif name == "FeeCharged":
        yield FeeDay, (a["asset"], day_of(event.block_timestamp))
    elif name in (
        "JobPosted",
        "ParamsUpdated",
        "DeliveryWindowUpdated",
        "TreasuryUpdated",
        "Paused",
        "Unpaused",
    ):
        yield ContractState, (event.contract,)


def reads_through(state: State, event: LogIndexed) -> Iterator[RowRef]:
    """Rows `apply` will look up for `event` through rows `reads` named, as far as `state`
    knows them already (the projector's second round of loading)."""
    a = event.args
    name = event.event
    if "job_id" in a and name != "JobPosted":
        job = state.get(Job, (a["job_id"],))
        if job is not None and job.provider is not None:
            yield Provider, (job.provider,)
            yield ProviderEarning, (job.provider, job.asset)
    if name in ("PromptListed", "ListingCancelled", "PromptSold"):
        prompt = state.get(Prompt, (a["token_id"],))
        if prompt is not None:
            yield Listing, (prompt.token_id, prompt.listing_seq)
            if name == "PromptListed":
                yield Listing, (prompt.token_id, prompt.listing_seq + 1)


def day_of(timestamp: int) -> str:
    """The UTC day of a block timestamp, as YYYY-MM-DD."""
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _replace(row: R, ctx: Ctx, **changes: Any) -> R:
    """`dataclasses.replace(row, **changes)` stamped with the event's provenance (a faster
    equivalent: replace() inspects the class on every call)."""
    cls = type(row)
    values = list(values_getter(cls)(row))
    index = field_index(cls)
    for name, value in changes.items():
        values[index[name]] = value
    values[index["block_number"]] = ctx.block_number
    values[index["tx_hash"]] = ctx.tx_hash
    values[index["log_index"]] = ctx.log_index
    return cls(*values)


# ---------------------------------------------------------------- admin state (both contracts)


def _contract(state: State, ctx: Ctx) -> ContractState:
    return state.get(ContractState, (ctx.contract,)) or ContractState(
        contract=ctx.contract, address=ctx.address
    )


@_on(ev.ParamsUpdated)
def _params_updated(state: State, e: ev.ParamsUpdated, ctx: Ctx) -> Changes:
    params = json.dumps(e.params, sort_keys=True, separators=(",", ":"))
    return (
        _replace(_contract(state, ctx), ctx, params=params, accept_window=int(e.params["accept_window"])),
    )


@_on(ev.DeliveryWindowUpdated)
def _delivery_window(state: State, e: ev.DeliveryWindowUpdated, ctx: Ctx) -> Changes:
    return (_replace(_contract(state, ctx), ctx, delivery_window=e.delivery_window),)


@_on(ev.TreasuryUpdated)
def _treasury(state: State, e: ev.TreasuryUpdated, ctx: Ctx) -> Changes:
    return (_replace(_contract(state, ctx), ctx, treasury=e.current),)


@_on(ev.Paused)
def _paused(state: State, e: ev.Paused, ctx: Ctx) -> Changes:
    return (_replace(_contract(state, ctx), ctx, paused=True),)


@_on(ev.Unpaused)
def _unpaused(state: State, e: ev.Unpaused, ctx: Ctx) -> Changes:
    return (_replace(_contract(state, ctx), ctx, paused=False),)


@_on(ev.AssetAllowanceSet)
def _asset_allowance(state: State, e: ev.AssetAllowanceSet, ctx: Ctx) -> Changes:
    return (AssetAllowance(contract=ctx.contract, asset=e.asset, allowed=e.allowed, **ctx.prov),)


@_on(ev.RoleGranted)
def _role_granted(state: State, e: ev.RoleGranted, ctx: Ctx) -> Changes:
    return (RoleMember(contract=ctx.contract, role=_hex(e.role), account=e.account, active=True, **ctx.prov),)


@_on(ev.RoleRevoked)
def _role_revoked(state: State, e: ev.RoleRevoked, ctx: Ctx) -> Changes:
    return (
        RoleMember(contract=ctx.contract, role=_hex(e.role), account=e.account, active=False, **ctx.prov),
    )


# ---------------------------------------------------------------- money


@_on(ev.Credited)
def _credited(state: State, e: ev.Credited, ctx: Ctx) -> Changes:
    owed = state.get(Owed, (e.account, e.asset, ctx.contract))
    if owed is None:
        owed = Owed(e.account, e.asset, ctx.contract, 0, 0, 0, 0, "", 0)
    return (_replace(owed, ctx, owed=owed.owed + e.amount, credited_total=owed.credited_total + e.amount),)


@_on(ev.Withdrawn)
def _withdrawn(state: State, e: ev.Withdrawn, ctx: Ctx) -> Changes:
    owed = state.get(Owed, (e.account, e.asset, ctx.contract))
    if owed is None:
        return ()
    return (_replace(owed, ctx, owed=owed.owed - e.amount, withdrawn_total=owed.withdrawn_total + e.amount),)


@_on(ev.FeeCharged)
def _fee_charged(state: State, e: ev.FeeCharged, ctx: Ctx) -> Changes:
    day = day_of(ctx.timestamp)
    fees = state.get(FeeDay, (e.asset, day)) or FeeDay(e.asset, day, 0, 0, 0, "", 0)
    return (_replace(fees, ctx, amount=fees.amount + e.amount, count=fees.count + 1),)


# ---------------------------------------------------------------- providers


@_on(ev.ProviderRegistered)
def _provider_registered(state: State, e: ev.ProviderRegistered, ctx: Ctx) -> Changes:
    p = state.get(Provider, (e.provider,))
    if p is None:
        return (
            Provider(
                address=e.provider,
                status="active",
                stake=e.stake,
                metadata_cid=e.metadata_cid,
                registered_at=ctx.timestamp,
                **ctx.prov,
            ),
        )
    # A provider that left may register again; its history (slashes, jobs) carries over.
    return (
        _replace(
            p,
            ctx,
            status="active",
            stake=e.stake,
            metadata_cid=e.metadata_cid,
            registered_at=ctx.timestamp,
            unbonding_at=None,
            active_jobs=0,
        ),
    )


@_on(ev.StakeAdded)
def _stake_added(state: State, e: ev.StakeAdded, ctx: Ctx) -> Changes:
    p = state.get(Provider, (e.provider,))
    return () if p is None else (_replace(p, ctx, stake=e.stake),)


@_on(ev.ProviderMetadataUpdated)
def _provider_metadata(state: State, e: ev.ProviderMetadataUpdated, ctx: Ctx) -> Changes:
    p = state.get(Provider, (e.provider,))
    return () if p is None else (_replace(p, ctx, metadata_cid=e.metadata_cid),)


@_on(ev.UnbondingRequested)
def _unbonding_requested(state: State, e: ev.UnbondingRequested, ctx: Ctx) -> Changes:
    p = state.get(Provider, (e.provider,))
    return () if p is None else (_replace(p, ctx, status="unbonding", unbonding_at=e.available_at),)


@_on(ev.ProviderUnbonded)
def _provider_unbonded(state: State, e: ev.ProviderUnbonded, ctx: Ctx) -> Changes:
    p = state.get(Provider, (e.provider,))
    return () if p is None else (_replace(p, ctx, status="left", stake=0, unbonding_at=None),)


@_on(ev.ProviderSlashed)
def _provider_slashed(state: State, e: ev.ProviderSlashed, ctx: Ctx) -> Changes:
    p = state.get(Provider, (e.provider,))
    if p is None:
        return ()
    return (_replace(p, ctx, stake=p.stake - e.amount, slashed_total=p.slashed_total + e.amount),)


def _provider_done(state: State, address: str | None, ctx: Ctx, **counts: int) -> Changes:
    """The provider with one job fewer in flight, and `counts` added to its counters."""
    p = state.get(Provider, (address,)) if address else None
    if p is None:
        return ()
    changes: dict[str, Any] = {"active_jobs": p.active_jobs - 1}
    for name, n in counts.items():
        changes[name] = getattr(p, name) + n
    return (_replace(p, ctx, **changes),)


def _earned(state: State, provider: str | None, asset: str, amount: int, ctx: Ctx) -> Changes:
    if provider is None or amount == 0:
        return ()
    got = state.get(ProviderEarning, (provider, asset)) or ProviderEarning(provider, asset, 0, 0, 0, "", 0)
    return (_replace(got, ctx, amount=got.amount + amount, jobs=got.jobs + 1),)


# ---------------------------------------------------------------- jobs


@_on(ev.JobPosted)
def _job_posted(state: State, e: ev.JobPosted, ctx: Ctx) -> Changes:
    config = state.get(ContractState, (ctx.contract,))
    window = None if config is None else config.accept_window
    return (
        Job(
            job_id=e.job_id,
            client=e.client,
            asset=e.asset,
            max_amount=e.amount,
            amount=e.amount,
            spec_hash=_hex(e.spec_hash),
            spec_cid=e.spec_cid,
            bid_deadline=e.bid_deadline,
            # NOTE: the contract snapshots acceptDeadline at posting with the acceptWindow then in
            # force; ParamsUpdated folds into contract_state, so this is the same snapshot.
            accept_deadline=None if window is None else e.bid_deadline + window,
            execution_timeout=e.execution_timeout,
            state="open",
            posted_at=ctx.timestamp,
            **ctx.prov,
        ),
    )


@_on(ev.BidPlaced)
def _bid_placed(state: State, e: ev.BidPlaced, ctx: Ctx) -> Changes:
    job = state.get(Job, (e.job_id,))
    bid = state.get(Bid, (e.job_id, e.provider))
    if bid is None:
        bid = Bid(e.job_id, e.provider, e.price, 1, ctx.timestamp, ctx.timestamp, False, **ctx.prov)
    else:
        bid = _replace(bid, ctx, price=e.price, placed_count=bid.placed_count + 1, placed_at=ctx.timestamp)
    if job is None:
        return (bid,)
    return bid, _replace(job, ctx, bid_count=job.bid_count + 1)


@_on(ev.JobAssigned)
def _job_assigned(state: State, e: ev.JobAssigned, ctx: Ctx) -> Changes:
    job = state.get(Job, (e.job_id,))
    if job is None:
        return ()
    out: list[Row] = [
        _replace(
            job,
            ctx,
            state="assigned",
            provider=e.provider,
            price=e.price,
            amount=e.price,
            execution_deadline=e.execution_deadline,
            client_refund=job.client_refund + e.refund,
        )
    ]
    bid = state.get(Bid, (e.job_id, e.provider))
    if bid is not None:
        out.append(_replace(bid, ctx, accepted=True))
    p = state.get(Provider, (e.provider,))
    if p is not None:
        out.append(_replace(p, ctx, active_jobs=p.active_jobs + 1))
    return tuple(out)


@_on(ev.ResultSubmitted)
def _result_submitted(state: State, e: ev.ResultSubmitted, ctx: Ctx) -> Changes:
    job = state.get(Job, (e.job_id,))
    result = Result(
        job_id=e.job_id,
        provider=e.provider,
        result_hash=_hex(e.result_hash),
        result_cid=e.result_cid,
        challenge_end=e.challenge_end,
        submitted_at=ctx.timestamp,
        **ctx.prov,
    )
    if job is None:
        return (result,)
    return (
        _replace(
            job,
            ctx,
            state="submitted",
            result_hash=result.result_hash,
            result_cid=e.result_cid,
            challenge_end=e.challenge_end,
        ),
        result,
    )


@_on(ev.JobCompleted)
def _job_completed(state: State, e: ev.JobCompleted, ctx: Ctx) -> Changes:
    job = state.get(Job, (e.job_id,))
    if job is None:
        return ()
    return (
        _replace(
            job,
            ctx,
            state="completed",
            provider_payout=e.payout,
            fee=e.fee,
            completed_by_client=e.by_client,
            settled_at=ctx.timestamp,
        ),
        *_provider_done(state, e.provider, ctx, jobs_done=1),
        *_earned(state, e.provider, job.asset, e.payout, ctx),
    )


def _refunded(state: State, job_id: int, refund: int, new_state: str, ctx: Ctx) -> Job | None:
    job = state.get(Job, (job_id,))
    if job is None:
        return None
    return _replace(
        job, ctx, state=new_state, client_refund=job.client_refund + refund, settled_at=ctx.timestamp
    )


@_on(ev.JobCancelled)
def _job_cancelled(state: State, e: ev.JobCancelled, ctx: Ctx) -> Changes:
    job = _refunded(state, e.job_id, e.refund, "cancelled", ctx)
    return () if job is None else (job,)


@_on(ev.JobExpired)
def _job_expired(state: State, e: ev.JobExpired, ctx: Ctx) -> Changes:
    job = _refunded(state, e.job_id, e.refund, "expired", ctx)
    return () if job is None else (job,)


@_on(ev.JobFailed)
def _job_failed(state: State, e: ev.JobFailed, ctx: Ctx) -> Changes:
    job = _refunded(state, e.job_id, e.refund, "failed", ctx)
    if job is None:
        return ()
    # The stake itself is lowered by ProviderSlashed, emitted just before.
    return (dataclasses.replace(job, slashed=e.slashed), *_provider_done(state, e.provider, ctx, failures=1))


@_on(ev.JobDisputed)
def _job_disputed(state: State, e: ev.JobDisputed, ctx: Ctx) -> Changes:
    job = state.get(Job, (e.job_id,))
    if job is None:
        return ()
    out: list[Row] = [
        _replace(
            job, ctx, state="disputed", dispute_reason_cid=e.reason_cid, dispute_deadline=e.dispute_deadline
        )
    ]
    p = state.get(Provider, (job.provider,)) if job.provider else None
    if p is not None:
        out.append(_replace(p, ctx, disputes=p.disputes + 1))
    return tuple(out)


@_on(ev.DisputeResolved)
def _dispute_resolved(state: State, e: ev.DisputeResolved, ctx: Ctx) -> Changes:
    job = state.get(Job, (e.job_id,))
    if job is None:
        return ()
    return (
        _replace(
            job,
            ctx,
            state="resolved",
            arbiter=e.arbiter,
            provider_bps=e.provider_bps,
            provider_payout=e.provider_payout,
            fee=e.fee,
            client_refund=job.client_refund + e.client_refund,
            settled_at=ctx.timestamp,
        ),
        *_provider_done(state, job.provider, ctx),
        *_earned(state, job.provider, job.asset, e.provider_payout, ctx),
    )


@_on(ev.DisputeTimedOut)
def _dispute_timed_out(state: State, e: ev.DisputeTimedOut, ctx: Ctx) -> Changes:
    job = _refunded(state, e.job_id, e.refund, "resolved", ctx)
    if job is None:
        return ()
    return (job, *_provider_done(state, job.provider, ctx))


# ---------------------------------------------------------------- prompts and listings


def _prompt(state: State, token_id: int, owner: str, ctx: Ctx) -> Prompt:
    return state.get(Prompt, (token_id,)) or Prompt(token_id=token_id, owner=owner, **ctx.prov)


@_on(ev.Transfer)
def _transfer(state: State, e: ev.Transfer, ctx: Ctx) -> Changes:
    # The mint's Transfer comes before PromptMinted; a transfer's listing and licence-terms
    # clearing arrive as their own ListingCancelled / LicenseTermsSet events.
    return (_replace(_prompt(state, e.token_id, e.to, ctx), ctx, owner=e.to),)


@_on(ev.PromptMinted)
def _prompt_minted(state: State, e: ev.PromptMinted, ctx: Ctx) -> Changes:
    prompt = _prompt(state, e.token_id, e.creator, ctx)
    return (
        _replace(
            prompt,
            ctx,
            creator=e.creator,
            metadata_cid=e.metadata_cid,
            content_hash=_hex(e.content_hash),
            royalty_bps=e.royalty_bps,
            minted_at=ctx.timestamp,
        ),
    )


def _close_listing(
    state: State, prompt: Prompt, new_state: str, ctx: Ctx, buyer: str | None = None
) -> Changes:
    if not prompt.listed:
        return ()
    listing = state.get(Listing, (prompt.token_id, prompt.listing_seq))
    if listing is None:
        return ()
    return (_replace(listing, ctx, state=new_state, closed_at=ctx.timestamp, buyer=buyer),)


@_on(ev.PromptListed)
def _prompt_listed(state: State, e: ev.PromptListed, ctx: Ctx) -> Changes:
    prompt = _prompt(state, e.token_id, e.seller, ctx)
    seq = prompt.listing_seq + 1
    listing = Listing(
        token_id=e.token_id,
        seq=seq,
        seller=e.seller,
        asset=e.asset,
        price=e.price,
        state="active",
        listed_at=ctx.timestamp,
        closed_at=None,
        buyer=None,
        **ctx.prov,
    )
    return (
        *_close_listing(state, prompt, "replaced", ctx),
        listing,
        _replace(prompt, ctx, listed=True, listing_seq=seq, list_asset=e.asset, list_price=e.price),
    )


@_on(ev.ListingCancelled)
def _listing_cancelled(state: State, e: ev.ListingCancelled, ctx: Ctx) -> Changes:
    prompt = state.get(Prompt, (e.token_id,))
    if prompt is None:
        return ()
    return (
        *_close_listing(state, prompt, "cancelled", ctx),
        _replace(prompt, ctx, listed=False, list_asset=None, list_price=None),
    )


@_on(ev.PromptSold)
def _prompt_sold(state: State, e: ev.PromptSold, ctx: Ctx) -> Changes:
    prompt = _prompt(state, e.token_id, e.buyer, ctx)
    sale = Sale(
        token_id=e.token_id,
        listing_seq=prompt.listing_seq,
        seller=e.seller,
        buyer=e.buyer,
        asset=e.asset,
        price=e.price,
        fee=e.fee,
        royalty=e.royalty,
        royalty_receiver=e.royalty_receiver,
        seller_proceeds=e.seller_proceeds,
        sold_at=ctx.timestamp,
        **ctx.prov,
    )
    return (
        *_close_listing(state, prompt, "sold", ctx, buyer=e.buyer),
        sale,
        _replace(
            prompt,
            ctx,
            owner=e.buyer,
            listed=False,
            list_asset=None,
            list_price=None,
            sales_count=prompt.sales_count + 1,
        ),
    )


# ---------------------------------------------------------------- licences and ratings


@_on(ev.LicenseTermsSet)
def _licence_terms(state: State, e: ev.LicenseTermsSet, ctx: Ctx) -> Changes:
    prompt = state.get(Prompt, (e.token_id,))
    if prompt is None:
        return ()
    offered = e.price != 0
    return (
        _replace(
            prompt,
            ctx,
            licence_asset=e.asset if offered else None,
            licence_price=e.price if offered else None,
        ),
    )


@_on(ev.LicensePurchased)
def _licence_purchased(state: State, e: ev.LicensePurchased, ctx: Ctx) -> Changes:
    licence = Licence(
        license_id=e.license_id,
        token_id=e.token_id,
        buyer=e.buyer,
        seller=e.seller,
        asset=e.asset,
        price=e.price,
        delivery_deadline=e.delivery_deadline,
        state="pending",
        rated=False,
        encrypted_key=None,
        seller_proceeds=None,
        fee=None,
        refund=None,
        purchased_at=ctx.timestamp,
        settled_at=None,
        **ctx.prov,
    )
    prompt = state.get(Prompt, (e.token_id,))
    if prompt is None:
        return (licence,)
    return licence, _replace(prompt, ctx, licences_sold=prompt.licences_sold + 1)


@_on(ev.KeyDelivered)
def _key_delivered(state: State, e: ev.KeyDelivered, ctx: Ctx) -> Changes:
    licence = state.get(Licence, (e.license_id,))
    if licence is None:
        return ()
    return (
        _replace(
            licence,
            ctx,
            state="delivered",
            encrypted_key=e.encrypted_key,
            seller_proceeds=e.seller_proceeds,
            fee=e.fee,
            settled_at=ctx.timestamp,
        ),
    )


@_on(ev.LicenseRefunded)
def _licence_refunded(state: State, e: ev.LicenseRefunded, ctx: Ctx) -> Changes:
    licence = state.get(Licence, (e.license_id,))
    if licence is None:
        return ()
    return (_replace(licence, ctx, state="refunded", refund=e.refund, settled_at=ctx.timestamp),)


@_on(ev.PromptRated)
def _prompt_rated(state: State, e: ev.PromptRated, ctx: Ctx) -> Changes:
    out: list[Row] = [
        Rating(
            license_id=e.license_id,
            token_id=e.token_id,
            rater=e.rater,
            score=e.score,
            review_cid=e.review_cid,
            rated_at=ctx.timestamp,
            **ctx.prov,
        )
    ]
    licence = state.get(Licence, (e.license_id,))
    if licence is not None:
        out.append(_replace(licence, ctx, rated=True))
    prompt = state.get(Prompt, (e.token_id,))
    if prompt is not None:
        out.append(
            _replace(
                prompt, ctx, rating_count=prompt.rating_count + 1, rating_sum=prompt.rating_sum + e.score
            )
        )
    return tuple(out)


class MemoryState:
    """A `State` held in a dict: fold events in memory, e.g. `MemoryState().fold(events)`."""

    def __init__(self) -> None:
        self.rows: dict[tuple[type[Row], tuple[Any, ...]], Row] = {}

    def get(self, kind: type[R], key: tuple[Any, ...]) -> R | None:
        return self.rows.get((kind, key))  # type: ignore[return-value]

    def fold(self, events: list[LogIndexed]) -> MemoryState:
        for event in events:
            for row in apply(self, event):
                self.rows[(type(row), row.key())] = row
        return self

    def all(self, kind: type[R]) -> list[R]:
        return sorted((r for (k, _), r in self.rows.items() if k is kind), key=lambda r: r.key())  # type: ignore[misc]
