"""The pure bidding decision: price, capacity, deadlines and policy."""

from __future__ import annotations

from agent.bidding import NATIVE, Bid, Capacity, PricePolicy, Skip, decide
from agent.jobspec import AgentPolicy, JobSpec
from chain.events import JobPosted

IMAGE = "sha256:" + "ab" * 32
SPEC = JobSpec.model_validate(
    {"schema_version": "ascendnet.job/v1", "image": IMAGE, "command": ["true"], "timeout_seconds": 60}
)
POLICY = AgentPolicy(allowed_images=[IMAGE])
FREE = Capacity(open_bids=0, running=0, max_open_bids=2, max_running=1, host_gpus=0)


def job(
    amount: int = 1000, bid_deadline: int = 100, execution_timeout: int = 3600, asset: str = NATIVE
) -> JobPosted:
    return JobPosted(
        contract="ComputeRental", address=NATIVE, chain_id=1, block_number=1, block_hash="0x", tx_hash="0x",
        log_index=0, job_id=1, client=NATIVE, asset=asset, amount=amount, spec_hash=b"\0" * 32, spec_cid="x",
        bid_deadline=bid_deadline, execution_timeout=execution_timeout,
    )  # fmt: skip


def test_price_is_the_share_of_escrow_but_never_below_the_minimum() -> None:
    prices = PricePolicy.from_names(300, 5_000, ["native"])
    assert decide(job(1000), SPEC, policy=POLICY, prices=prices, capacity=FREE, now=50) == Bid(500)
    assert decide(job(400), SPEC, policy=POLICY, prices=prices, capacity=FREE, now=50) == Bid(300)
    skip = decide(job(200), SPEC, policy=POLICY, prices=prices, capacity=FREE, now=50)
    assert isinstance(skip, Skip) and "minimum price" in skip.reason


def test_skips_closed_bidding_other_assets_full_bid_slots_and_tight_timeouts() -> None:
    prices = PricePolicy.from_names(1, 10_000, ["native"])

    def reason(**kw: object) -> str:
        capacity = kw.pop("capacity", FREE)
        now = kw.pop("now", 50)
        d = decide(job(**kw), SPEC, policy=POLICY, prices=prices, capacity=capacity, now=now)  # type: ignore[arg-type]
        assert isinstance(d, Skip)
        return d.reason

    assert "bidding closed" in reason(now=101)
    assert "asset" in reason(asset="0x" + "11" * 20)
    full = Capacity(open_bids=2, running=0, max_open_bids=2, max_running=1, host_gpus=0)
    assert "open bids" in reason(capacity=full)
    assert "margin" in reason(execution_timeout=70)
    other = AgentPolicy(allowed_images=[])
    d = decide(job(), SPEC, policy=other, prices=prices, capacity=FREE, now=50)
    assert isinstance(d, Skip) and "allowed_images" in d.reason
