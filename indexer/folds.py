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

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import msgspec

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
)

R = TypeVar("R", bound=Row)
Changes = tuple[Row, ...]
RowRef = tuple[type[Row], tuple[Any, ...]]


class State(Protocol):
    """Read-only access to the current read-model rows."""

    def get(self, kind: type[R], key: tuple[Any, ...]) -> R | None: ...


class Log(Protocol):
    """A stored log as the folds see it: where it happened, which event, and its arguments as
    stored (`ChainEvent.args()`: bytes as 0x-hex). `LogIndexed` and `IndexedLog` are both."""

    @property
    def contract(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def block_number(self) -> int: ...
    @property
    def block_timestamp(self) -> int: ...
    @property
    def tx_hash(self) -> str: ...
    @property
    def log_index(self) -> int: ...
    @property
    def event(self) -> str: ...
    @property
    def args(self) -> dict[str, Any]: ...


#: A fold: (state, the event's arguments as its `<Name>Args` TypedDict, the log) -> changes.
Handler = Callable[[State, Any, Log], Changes]
F = TypeVar("F", bound=Handler)
_HANDLERS: dict[str, Handler] = {}


def _on(cls: type[ChainEvent]) -> Callable[[F], F]:
    def register(fn: F) -> F:
        _HANDLERS[cls.NAME] = fn
        return fn

    return register


def apply(state: State, log: Log) -> Changes:
    """The rows `log` changes, given `state`, as their new values (pure).

    NOTE: a fold reads the arguments as stored (a typed dict) rather than a `chain.events`
    object: building one per log cost a tenth of a rebuild."""
    handler = _HANDLERS.get(log.event)
    if handler is None:
        return ()
    return handler(state, log.args, log)


def handled_events() -> frozenset[str]:
    """Names of the events that change read models beyond the raw event log."""
    return frozenset(_HANDLERS)


def reads(event: Log) -> Iterator[RowRef]:
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


def reads_through(state: State, event: Log) -> Iterator[RowRef]:
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


def _replace(row: R, log: Log, **changes: Any) -> R:
    """`row` with `changes`, stamped with the log's provenance."""
    return msgspec.structs.replace(
        row, block_number=log.block_number, tx_hash=log.tx_hash, log_index=log.log_index, **changes
    )


def _prov(log: Log) -> dict[str, Any]:
    """The provenance fields of a new row."""
    return {"block_number": log.block_number, "tx_hash": log.tx_hash, "log_index": log.log_index}


# ---------------------------------------------------------------- admin state (both contracts)


def _contract(state: State, log: Log) -> ContractState:
    return state.get(ContractState, (log.contract,)) or ContractState(
        contract=log.contract, address=log.address
    )


@_on(ev.ParamsUpdated)
def _params_updated(state: State, a: ev.ParamsUpdatedArgs, log: Log) -> Changes:
    params = json.dumps(a["params"], sort_keys=True, separators=(",", ":"))
    return (
        _replace(_contract(state, log), log, params=params, accept_window=int(a["params"]["accept_window"])),
    )


@_on(ev.DeliveryWindowUpdated)
def _delivery_window(state: State, a: ev.DeliveryWindowUpdatedArgs, log: Log) -> Changes:
    return (_replace(_contract(state, log), log, delivery_window=a["delivery_window"]),)


@_on(ev.TreasuryUpdated)
def _treasury(state: State, a: ev.TreasuryUpdatedArgs, log: Log) -> Changes:
    return (_replace(_contract(state, log), log, treasury=a["current"]),)


@_on(ev.Paused)
def _paused(state: State, a: ev.PausedArgs, log: Log) -> Changes:
    return (_replace(_contract(state, log), log, paused=True),)


@_on(ev.Unpaused)
def _unpaused(state: State, a: ev.UnpausedArgs, log: Log) -> Changes:
    return (_replace(_contract(state, log), log, paused=False),)


@_on(ev.AssetAllowanceSet)
def _asset_allowance(state: State, a: ev.AssetAllowanceSetArgs, log: Log) -> Changes:
    return (AssetAllowance(contract=log.contract, asset=a["asset"], allowed=a["allowed"], **_prov(log)),)


@_on(ev.RoleGranted)
def _role_granted(state: State, a: ev.RoleGrantedArgs, log: Log) -> Changes:
    return (
        RoleMember(contract=log.contract, role=a["role"], account=a["account"], active=True, **_prov(log)),
    )


@_on(ev.RoleRevoked)
def _role_revoked(state: State, a: ev.RoleRevokedArgs, log: Log) -> Changes:
    return (
        RoleMember(contract=log.contract, role=a["role"], account=a["account"], active=False, **_prov(log)),
    )


# ---------------------------------------------------------------- money


@_on(ev.Credited)
def _credited(state: State, a: ev.CreditedArgs, log: Log) -> Changes:
    owed = state.get(Owed, (a["account"], a["asset"], log.contract))
    if owed is None:
        owed = Owed(a["account"], a["asset"], log.contract, 0, 0, 0, 0, "", 0)
    return (
        _replace(owed, log, owed=owed.owed + a["amount"], credited_total=owed.credited_total + a["amount"]),
    )


@_on(ev.Withdrawn)
def _withdrawn(state: State, a: ev.WithdrawnArgs, log: Log) -> Changes:
    owed = state.get(Owed, (a["account"], a["asset"], log.contract))
    if owed is None:
        return ()
    return (
        _replace(owed, log, owed=owed.owed - a["amount"], withdrawn_total=owed.withdrawn_total + a["amount"]),
    )


@_on(ev.FeeCharged)
def _fee_charged(state: State, a: ev.FeeChargedArgs, log: Log) -> Changes:
    day = day_of(log.block_timestamp)
    fees = state.get(FeeDay, (a["asset"], day)) or FeeDay(a["asset"], day, 0, 0, 0, "", 0)
    return (_replace(fees, log, amount=fees.amount + a["amount"], count=fees.count + 1),)


# ---------------------------------------------------------------- providers


@_on(ev.ProviderRegistered)
def _provider_registered(state: State, a: ev.ProviderRegisteredArgs, log: Log) -> Changes:
    p = state.get(Provider, (a["provider"],))
    if p is None:
        return (
            Provider(
                address=a["provider"],
                status="active",
                stake=a["stake"],
                metadata_cid=a["metadata_cid"],
                registered_at=log.block_timestamp,
                **_prov(log),
            ),
        )
    # A provider that left may register again; its history (slashes, jobs) carries over.
    return (
        _replace(
            p,
            log,
            status="active",
            stake=a["stake"],
            metadata_cid=a["metadata_cid"],
            registered_at=log.block_timestamp,
            unbonding_at=None,
            active_jobs=0,
        ),
    )


@_on(ev.StakeAdded)
def _stake_added(state: State, a: ev.StakeAddedArgs, log: Log) -> Changes:
    p = state.get(Provider, (a["provider"],))
    return () if p is None else (_replace(p, log, stake=a["stake"]),)


@_on(ev.ProviderMetadataUpdated)
def _provider_metadata(state: State, a: ev.ProviderMetadataUpdatedArgs, log: Log) -> Changes:
    p = state.get(Provider, (a["provider"],))
    return () if p is None else (_replace(p, log, metadata_cid=a["metadata_cid"]),)


@_on(ev.UnbondingRequested)
def _unbonding_requested(state: State, a: ev.UnbondingRequestedArgs, log: Log) -> Changes:
    p = state.get(Provider, (a["provider"],))
    return () if p is None else (_replace(p, log, status="unbonding", unbonding_at=a["available_at"]),)


@_on(ev.ProviderUnbonded)
def _provider_unbonded(state: State, a: ev.ProviderUnbondedArgs, log: Log) -> Changes:
    p = state.get(Provider, (a["provider"],))
    return () if p is None else (_replace(p, log, status="left", stake=0, unbonding_at=None),)


@_on(ev.ProviderSlashed)
def _provider_slashed(state: State, a: ev.ProviderSlashedArgs, log: Log) -> Changes:
    p = state.get(Provider, (a["provider"],))
    if p is None:
        return ()
    return (_replace(p, log, stake=p.stake - a["amount"], slashed_total=p.slashed_total + a["amount"]),)


def _provider_done(state: State, address: str | None, log: Log, **counts: int) -> Changes:
    """The provider with one job fewer in flight, and `counts` added to its counters."""
    p = state.get(Provider, (address,)) if address else None
    if p is None:
        return ()
    changes: dict[str, Any] = {"active_jobs": p.active_jobs - 1}
    for name, n in counts.items():
        changes[name] = getattr(p, name) + n
    return (_replace(p, log, **changes),)


def _earned(state: State, provider: str | None, asset: str, amount: int, log: Log) -> Changes:
    if provider is None or amount == 0:
        return ()
    got = state.get(ProviderEarning, (provider, asset)) or ProviderEarning(provider, asset, 0, 0, 0, "", 0)
    return (_replace(got, log, amount=got.amount + amount, jobs=got.jobs + 1),)


# ---------------------------------------------------------------- jobs


@_on(ev.JobPosted)
def _job_posted(state: State, a: ev.JobPostedArgs, log: Log) -> Changes:
    config = state.get(ContractState, (log.contract,))
    window = None if config is None else config.accept_window
    return (
        Job(
            job_id=a["job_id"],
            client=a["client"],
            asset=a["asset"],
            max_amount=a["amount"],
            amount=a["amount"],
            spec_hash=a["spec_hash"],
            spec_cid=a["spec_cid"],
            bid_deadline=a["bid_deadline"],
            # NOTE: the contract snapshots acceptDeadline at posting with the acceptWindow then in
            # force; ParamsUpdated folds into contract_state, so this is the same snapshot.
            accept_deadline=None if window is None else a["bid_deadline"] + window,
            execution_timeout=a["execution_timeout"],
            state="open",
            posted_at=log.block_timestamp,
            **_prov(log),
        ),
    )


@_on(ev.BidPlaced)
def _bid_placed(state: State, a: ev.BidPlacedArgs, log: Log) -> Changes:
    job = state.get(Job, (a["job_id"],))
    bid = state.get(Bid, (a["job_id"], a["provider"]))
    if bid is None:
        bid = Bid(
            a["job_id"],
            a["provider"],
            a["price"],
            1,
            log.block_timestamp,
            log.block_timestamp,
            False,
            **_prov(log),
        )
    else:
        bid = _replace(
            bid, log, price=a["price"], placed_count=bid.placed_count + 1, placed_at=log.block_timestamp
        )
    if job is None:
        return (bid,)
    return bid, _replace(job, log, bid_count=job.bid_count + 1)


@_on(ev.JobAssigned)
def _job_assigned(state: State, a: ev.JobAssignedArgs, log: Log) -> Changes:
    job = state.get(Job, (a["job_id"],))
    if job is None:
        return ()
    out: list[Row] = [
        _replace(
            job,
            log,
            state="assigned",
            provider=a["provider"],
            price=a["price"],
            amount=a["price"],
            execution_deadline=a["execution_deadline"],
            client_refund=job.client_refund + a["refund"],
        )
    ]
    bid = state.get(Bid, (a["job_id"], a["provider"]))
    if bid is not None:
        out.append(_replace(bid, log, accepted=True))
    p = state.get(Provider, (a["provider"],))
    if p is not None:
        out.append(_replace(p, log, active_jobs=p.active_jobs + 1))
    return tuple(out)


@_on(ev.ResultSubmitted)
def _result_submitted(state: State, a: ev.ResultSubmittedArgs, log: Log) -> Changes:
    job = state.get(Job, (a["job_id"],))
    result = Result(
        job_id=a["job_id"],
        provider=a["provider"],
        result_hash=a["result_hash"],
        result_cid=a["result_cid"],
        challenge_end=a["challenge_end"],
        submitted_at=log.block_timestamp,
        **_prov(log),
    )
    if job is None:
        return (result,)
    return (
        _replace(
            job,
            log,
            state="submitted",
            result_hash=result.result_hash,
            result_cid=a["result_cid"],
            challenge_end=a["challenge_end"],
        ),
        result,
    )


@_on(ev.JobCompleted)
def _job_completed(state: State, a: ev.JobCompletedArgs, log: Log) -> Changes:
    job = state.get(Job, (a["job_id"],))
    if job is None:
        return ()
    return (
        _replace(
            job,
            log,
            state="completed",
            provider_payout=a["payout"],
            fee=a["fee"],
            completed_by_client=a["by_client"],
            settled_at=log.block_timestamp,
        ),
        *_provider_done(state, a["provider"], log, jobs_done=1),
        *_earned(state, a["provider"], job.asset, a["payout"], log),
    )


def _refunded(state: State, job_id: int, refund: int, new_state: str, log: Log) -> Job | None:
    job = state.get(Job, (job_id,))
    if job is None:
        return None
    return _replace(
        job, log, state=new_state, client_refund=job.client_refund + refund, settled_at=log.block_timestamp
    )


@_on(ev.JobCancelled)
def _job_cancelled(state: State, a: ev.JobCancelledArgs, log: Log) -> Changes:
    job = _refunded(state, a["job_id"], a["refund"], "cancelled", log)
    return () if job is None else (job,)


@_on(ev.JobExpired)
def _job_expired(state: State, a: ev.JobExpiredArgs, log: Log) -> Changes:
    job = _refunded(state, a["job_id"], a["refund"], "expired", log)
    return () if job is None else (job,)


@_on(ev.JobFailed)
def _job_failed(state: State, a: ev.JobFailedArgs, log: Log) -> Changes:
    job = _refunded(state, a["job_id"], a["refund"], "failed", log)
    if job is None:
        return ()
    # The stake itself is lowered by ProviderSlashed, emitted just before.
    return (
        msgspec.structs.replace(job, slashed=a["slashed"]),
        *_provider_done(state, a["provider"], log, failures=1),
    )


@_on(ev.JobDisputed)
def _job_disputed(state: State, a: ev.JobDisputedArgs, log: Log) -> Changes:
    job = state.get(Job, (a["job_id"],))
    if job is None:
        return ()
    out: list[Row] = [
        _replace(
            job,
            log,
            state="disputed",
            dispute_reason_cid=a["reason_cid"],
            dispute_deadline=a["dispute_deadline"],
        )
    ]
    p = state.get(Provider, (job.provider,)) if job.provider else None
    if p is not None:
        out.append(_replace(p, log, disputes=p.disputes + 1))
    return tuple(out)


@_on(ev.DisputeResolved)
def _dispute_resolved(state: State, a: ev.DisputeResolvedArgs, log: Log) -> Changes:
    job = state.get(Job, (a["job_id"],))
    if job is None:
        return ()
    return (
        _replace(
            job,
            log,
            state="resolved",
            arbiter=a["arbiter"],
            provider_bps=a["provider_bps"],
            provider_payout=a["provider_payout"],
            fee=a["fee"],
            client_refund=job.client_refund + a["client_refund"],
            settled_at=log.block_timestamp,
        ),
        *_provider_done(state, job.provider, log),
        *_earned(state, job.provider, job.asset, a["provider_payout"], log),
    )


@_on(ev.DisputeTimedOut)
def _dispute_timed_out(state: State, a: ev.DisputeTimedOutArgs, log: Log) -> Changes:
    job = _refunded(state, a["job_id"], a["refund"], "resolved", log)
    if job is None:
        return ()
    return (job, *_provider_done(state, job.provider, log))


# ---------------------------------------------------------------- prompts and listings


def _prompt(state: State, token_id: int, owner: str, log: Log) -> Prompt:
    return state.get(Prompt, (token_id,)) or Prompt(token_id=token_id, owner=owner, **_prov(log))


@_on(ev.Transfer)
def _transfer(state: State, a: ev.TransferArgs, log: Log) -> Changes:
    # The mint's Transfer comes before PromptMinted; a transfer's listing and licence-terms
    # clearing arrive as their own ListingCancelled / LicenseTermsSet events.
    return (_replace(_prompt(state, a["token_id"], a["to"], log), log, owner=a["to"]),)


@_on(ev.PromptMinted)
def _prompt_minted(state: State, a: ev.PromptMintedArgs, log: Log) -> Changes:
    prompt = _prompt(state, a["token_id"], a["creator"], log)
    return (
        _replace(
            prompt,
            log,
            creator=a["creator"],
            metadata_cid=a["metadata_cid"],
            content_hash=a["content_hash"],
            royalty_bps=a["royalty_bps"],
            minted_at=log.block_timestamp,
        ),
    )


def _close_listing(
    state: State, prompt: Prompt, new_state: str, log: Log, buyer: str | None = None
) -> Changes:
    if not prompt.listed:
        return ()
    listing = state.get(Listing, (prompt.token_id, prompt.listing_seq))
    if listing is None:
        return ()
    return (_replace(listing, log, state=new_state, closed_at=log.block_timestamp, buyer=buyer),)


@_on(ev.PromptListed)
def _prompt_listed(state: State, a: ev.PromptListedArgs, log: Log) -> Changes:
    prompt = _prompt(state, a["token_id"], a["seller"], log)
    seq = prompt.listing_seq + 1
    listing = Listing(
        token_id=a["token_id"],
        seq=seq,
        seller=a["seller"],
        asset=a["asset"],
        price=a["price"],
        state="active",
        listed_at=log.block_timestamp,
        closed_at=None,
        buyer=None,
        **_prov(log),
    )
    return (
        *_close_listing(state, prompt, "replaced", log),
        listing,
        _replace(prompt, log, listed=True, listing_seq=seq, list_asset=a["asset"], list_price=a["price"]),
    )


@_on(ev.ListingCancelled)
def _listing_cancelled(state: State, a: ev.ListingCancelledArgs, log: Log) -> Changes:
    prompt = state.get(Prompt, (a["token_id"],))
    if prompt is None:
        return ()
    return (
        *_close_listing(state, prompt, "cancelled", log),
        _replace(prompt, log, listed=False, list_asset=None, list_price=None),
    )


@_on(ev.PromptSold)
def _prompt_sold(state: State, a: ev.PromptSoldArgs, log: Log) -> Changes:
    prompt = _prompt(state, a["token_id"], a["buyer"], log)
    sale = Sale(
        token_id=a["token_id"],
        listing_seq=prompt.listing_seq,
        seller=a["seller"],
        buyer=a["buyer"],
        asset=a["asset"],
        price=a["price"],
        fee=a["fee"],
        royalty=a["royalty"],
        royalty_receiver=a["royalty_receiver"],
        seller_proceeds=a["seller_proceeds"],
        sold_at=log.block_timestamp,
        **_prov(log),
    )
    return (
        *_close_listing(state, prompt, "sold", log, buyer=a["buyer"]),
        sale,
        _replace(
            prompt,
            log,
            owner=a["buyer"],
            listed=False,
            list_asset=None,
            list_price=None,
            sales_count=prompt.sales_count + 1,
        ),
    )


# ---------------------------------------------------------------- licences and ratings


@_on(ev.LicenseTermsSet)
def _licence_terms(state: State, a: ev.LicenseTermsSetArgs, log: Log) -> Changes:
    prompt = state.get(Prompt, (a["token_id"],))
    if prompt is None:
        return ()
    offered = a["price"] != 0
    return (
        _replace(
            prompt,
            log,
            licence_asset=a["asset"] if offered else None,
            licence_price=a["price"] if offered else None,
        ),
    )


@_on(ev.LicensePurchased)
def _licence_purchased(state: State, a: ev.LicensePurchasedArgs, log: Log) -> Changes:
    licence = Licence(
        license_id=a["license_id"],
        token_id=a["token_id"],
        buyer=a["buyer"],
        seller=a["seller"],
        asset=a["asset"],
        price=a["price"],
        delivery_deadline=a["delivery_deadline"],
        state="pending",
        rated=False,
        encrypted_key=None,
        seller_proceeds=None,
        fee=None,
        refund=None,
        purchased_at=log.block_timestamp,
        settled_at=None,
        **_prov(log),
    )
    prompt = state.get(Prompt, (a["token_id"],))
    if prompt is None:
        return (licence,)
    return licence, _replace(prompt, log, licences_sold=prompt.licences_sold + 1)


@_on(ev.KeyDelivered)
def _key_delivered(state: State, a: ev.KeyDeliveredArgs, log: Log) -> Changes:
    licence = state.get(Licence, (a["license_id"],))
    if licence is None:
        return ()
    return (
        _replace(
            licence,
            log,
            state="delivered",
            encrypted_key=bytes.fromhex(a["encrypted_key"][2:]),
            seller_proceeds=a["seller_proceeds"],
            fee=a["fee"],
            settled_at=log.block_timestamp,
        ),
    )


@_on(ev.LicenseRefunded)
def _licence_refunded(state: State, a: ev.LicenseRefundedArgs, log: Log) -> Changes:
    licence = state.get(Licence, (a["license_id"],))
    if licence is None:
        return ()
    return (_replace(licence, log, state="refunded", refund=a["refund"], settled_at=log.block_timestamp),)


@_on(ev.PromptRated)
def _prompt_rated(state: State, a: ev.PromptRatedArgs, log: Log) -> Changes:
    out: list[Row] = [
        Rating(
            license_id=a["license_id"],
            token_id=a["token_id"],
            rater=a["rater"],
            score=a["score"],
            review_cid=a["review_cid"],
            rated_at=log.block_timestamp,
            **_prov(log),
        )
    ]
    licence = state.get(Licence, (a["license_id"],))
    if licence is not None:
        out.append(_replace(licence, log, rated=True))
    prompt = state.get(Prompt, (a["token_id"],))
    if prompt is not None:
        out.append(
            _replace(
                prompt, log, rating_count=prompt.rating_count + 1, rating_sum=prompt.rating_sum + a["score"]
            )
        )
    return tuple(out)


class MemoryState:
    """A `State` held in a dict: fold events in memory, a["g"]. `MemoryState().fold(events)`."""

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
