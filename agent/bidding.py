"""Whether to bid on a posted job, and at what price: a pure decision, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from agent.errors import PolicyViolation
from agent.jobspec import AgentPolicy, JobSpec, check_policy
from chain.events import JobPosted

NATIVE = "0x0000000000000000000000000000000000000000"
#: Seconds kept free between the job's own timeout and the on-chain execution deadline, for
#: staging, packing, storing and the submitResult transaction.
SUBMIT_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class Bid:
    price: int


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Capacity:
    """What the agent has free now."""

    open_bids: int
    running: int
    max_open_bids: int
    max_running: int
    host_gpus: int


@dataclass(frozen=True)
class PricePolicy:
    min_price: int
    share_bps: int
    assets: frozenset[str]  # lower-case addresses; NATIVE for ETH

    @classmethod
    def from_names(cls, min_price: int, share_bps: int, assets: list[str]) -> PricePolicy:
        resolved = {NATIVE if a.lower() == "native" else a.lower() for a in assets}
        return cls(min_price=min_price, share_bps=share_bps, assets=frozenset(resolved))


def decide(
    job: JobPosted,
    spec: JobSpec,
    *,
    policy: AgentPolicy,
    prices: PricePolicy,
    capacity: Capacity,
    now: int,
) -> Bid | Skip:
    """Bid or skip `job`, whose spec has already been fetched and verified against specHash."""
    if now > job.bid_deadline:
        return Skip(f"bidding closed at {job.bid_deadline}")
    if job.asset.lower() not in prices.assets:
        return Skip(f"asset {job.asset} is not one this agent accepts")
    try:
        check_policy(spec, policy)
    except PolicyViolation as exc:
        return Skip(str(exc))
    if spec.resources.gpus > capacity.host_gpus:
        return Skip(f"the job needs {spec.resources.gpus} GPU(s); this host has {capacity.host_gpus}")
    if spec.timeout_seconds + SUBMIT_MARGIN_SECONDS > job.execution_timeout:
        return Skip(
            f"the spec's timeout ({spec.timeout_seconds}s) leaves no margin before the on-chain "
            f"execution timeout ({job.execution_timeout}s)"
        )
    # NOTE: running jobs do not block bidding; accepted bids queue in the executor.
    if capacity.open_bids >= capacity.max_open_bids:
        return Skip(f"already {capacity.open_bids} open bids")
    price = max(prices.min_price, job.amount * prices.share_bps // 10_000)
    if price > job.amount:
        return Skip(f"escrow {job.amount} is below this agent's minimum price {prices.min_price}")
    return Bid(price)
