"""The pure folds, without a database: `apply(state, event)` -> the rows the event changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chain import events as E
from indexer.domain import LogIndexed
from indexer.folds import MemoryState, apply, day_of, reads
from indexer.models import (
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
    Sale,
)
from tests.indexer.synthetic import (
    CLIENT,
    ETH,
    NATIVE,
    PARAMS,
    PROVIDER,
    TREASURY,
    Builder,
    credited,
    job_posted,
)

CREATOR = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
BUYER = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
READER = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
TOKEN = "0x8464135c8F25Da09e49BC8782676a84730C318bC"


def _events(b: Builder) -> list[LogIndexed]:
    return [
        LogIndexed.from_chain_event(e, block_timestamp=ref.timestamp) for ref, logs in b.blocks for e in logs
    ]


def _fold(b: Builder) -> MemoryState:
    return MemoryState().fold(_events(b))


def _job(state: MemoryState, job_id: int = 1) -> Job:
    job = state.get(Job, (job_id,))
    assert job is not None
    return job


def _provider(state: MemoryState, address: str = PROVIDER) -> Provider:
    p = state.get(Provider, (address,))
    assert p is not None
    return p


def _assigned(b: Builder, job: int = 1, price: int = 6 * ETH // 10) -> None:
    b.block(job_posted(job))
    b.block((E.BidPlaced, {"job_id": job, "provider": PROVIDER, "price": price}))
    b.block(
        credited(CLIENT, ETH - price),
        (
            E.JobAssigned,
            {
                "job_id": job,
                "provider": PROVIDER,
                "price": price,
                "refund": ETH - price,
                "execution_deadline": 1_800_003_600,
            },
        ),
    )


def _submitted(b: Builder, job: int = 1) -> None:
    _assigned(b, job)
    b.block(
        (
            E.ResultSubmitted,
            {
                "job_id": job,
                "provider": PROVIDER,
                "result_hash": b"\x11" * 32,
                "result_cid": "bafkres",
                "challenge_end": 1_800_000_005,
            },
        )
    )


def _chain() -> Builder:
    b = Builder()
    b.block(
        (E.ParamsUpdated, {"params": PARAMS}), (E.TreasuryUpdated, {"previous": NATIVE, "current": TREASURY})
    )
    b.block((E.ProviderRegistered, {"provider": PROVIDER, "stake": 2 * ETH, "metadata_cid": "bafkp"}))
    return b


class TestJobs:
    def test_posting_snapshots_the_accept_window_in_force(self) -> None:
        b = _chain()
        b.block(job_posted(1, bid_deadline=1_800_000_000))
        b.block((E.ParamsUpdated, {"params": {**PARAMS, "accept_window": 900}}))
        b.block(job_posted(2, bid_deadline=1_800_000_000))
        s = _fold(b)
        assert _job(s, 1).accept_deadline == 1_800_000_000 + 300
        assert _job(s, 2).accept_deadline == 1_800_000_000 + 900
        config = s.get(ContractState, ("ComputeRental",))
        assert config is not None and config.accept_window == 900 and config.treasury == TREASURY

    def test_a_job_posted_before_any_params_has_no_accept_deadline(self) -> None:
        b = Builder()
        b.block(job_posted(1))
        assert _job(_fold(b)).accept_deadline is None

    def test_completed(self) -> None:
        b = _chain()
        _submitted(b)
        fee = 18 * ETH // 1000
        b.block(
            credited(TREASURY, fee),
            (E.FeeCharged, {"asset": NATIVE, "treasury": TREASURY, "amount": fee}),
            credited(PROVIDER, 6 * ETH // 10 - fee),
            (
                E.JobCompleted,
                {
                    "job_id": 1,
                    "provider": PROVIDER,
                    "payout": 6 * ETH // 10 - fee,
                    "fee": fee,
                    "by_client": True,
                },
            ),
        )
        s = _fold(b)
        job = _job(s)
        assert (job.state, job.price, job.amount, job.max_amount) == (
            "completed",
            6 * ETH // 10,
            6 * ETH // 10,
            ETH,
        )
        assert (job.fee, job.provider_payout, job.completed_by_client) == (fee, 6 * ETH // 10 - fee, True)
        assert (job.result_hash, job.result_cid, job.client_refund) == (
            "0x" + "11" * 32,
            "bafkres",
            4 * ETH // 10,
        )
        assert job.settled_at == b.blocks[-1][0].timestamp
        p = _provider(s)
        assert (p.active_jobs, p.jobs_done) == (0, 1)
        earned = s.get(ProviderEarning, (PROVIDER, NATIVE))
        assert earned is not None and (earned.amount, earned.jobs) == (6 * ETH // 10 - fee, 1)
        bid = s.get(Bid, (1, PROVIDER))
        assert bid is not None and bid.accepted

    def test_a_later_bid_replaces_the_earlier_one(self) -> None:
        b = _chain()
        b.block(job_posted(1))
        b.block((E.BidPlaced, {"job_id": 1, "provider": PROVIDER, "price": 9}))
        b.block((E.BidPlaced, {"job_id": 1, "provider": PROVIDER, "price": 7}))
        s = _fold(b)
        bid = s.get(Bid, (1, PROVIDER))
        assert bid is not None and (bid.price, bid.placed_count, bid.accepted) == (7, 2, False)
        assert bid.first_placed_at == b.blocks[-2][0].timestamp and bid.placed_at == b.blocks[-1][0].timestamp
        assert _job(s).bid_count == 2

    def test_dispute_resolved_by_the_arbiter(self) -> None:
        b = _chain()
        _submitted(b)
        b.block(
            (E.JobDisputed, {"job_id": 1, "client": CLIENT, "reason_cid": "bafkwhy", "dispute_deadline": 9})
        )
        b.block(
            (
                E.DisputeResolved,
                {
                    "job_id": 1,
                    "arbiter": TREASURY,
                    "provider_bps": 5000,
                    "provider_payout": 291,
                    "fee": 9,
                    "client_refund": 300,
                },
            )
        )
        s = _fold(b)
        job = _job(s)
        assert (job.state, job.dispute_reason_cid, job.dispute_deadline, job.arbiter) == (
            "resolved",
            "bafkwhy",
            9,
            TREASURY,
        )
        assert (job.provider_bps, job.provider_payout, job.fee) == (5000, 291, 9)
        assert job.client_refund == 4 * ETH // 10 + 300
        p = _provider(s)
        assert (p.active_jobs, p.disputes, p.jobs_done) == (0, 1, 0)
        earned = s.get(ProviderEarning, (PROVIDER, NATIVE))
        assert earned is not None and earned.amount == 291

    def test_dispute_timed_out(self) -> None:
        b = _chain()
        _submitted(b)
        b.block(
            (E.JobDisputed, {"job_id": 1, "client": CLIENT, "reason_cid": "bafkwhy", "dispute_deadline": 9})
        )
        b.block((E.DisputeTimedOut, {"job_id": 1, "refund": 6 * ETH // 10}))
        s = _fold(b)
        assert (_job(s).state, _job(s).client_refund) == ("resolved", ETH)
        assert _provider(s).active_jobs == 0 and s.get(ProviderEarning, (PROVIDER, NATIVE)) is None

    def test_failed_job_slashes_the_provider(self) -> None:
        b = _chain()
        _assigned(b)
        b.block(
            credited(CLIENT, 6 * ETH // 10),
            credited(CLIENT, ETH // 5),
            (
                E.ProviderSlashed,
                {"provider": PROVIDER, "job_id": 1, "amount": ETH // 5, "beneficiary": CLIENT},
            ),
            (E.JobFailed, {"job_id": 1, "provider": PROVIDER, "refund": 6 * ETH // 10, "slashed": ETH // 5}),
        )
        s = _fold(b)
        job = _job(s)
        assert (job.state, job.slashed, job.client_refund) == ("failed", ETH // 5, ETH)
        p = _provider(s)
        assert (p.stake, p.slashed_total, p.failures, p.active_jobs) == (2 * ETH - ETH // 5, ETH // 5, 1, 0)

    @pytest.mark.parametrize("event, state", [(E.JobCancelled, "cancelled"), (E.JobExpired, "expired")])
    def test_refunded_before_assignment(self, event: type, state: str) -> None:
        b = _chain()
        b.block(job_posted(1))
        b.block(credited(CLIENT, ETH), (event, {"job_id": 1, "refund": ETH}))
        job = _job(_fold(b))
        assert (job.state, job.client_refund, job.provider) == (state, ETH, None)


class TestProviders:
    def test_unbond_and_register_again(self) -> None:
        b = _chain()
        b.block((E.StakeAdded, {"provider": PROVIDER, "amount": ETH, "stake": 3 * ETH}))
        b.block((E.ProviderMetadataUpdated, {"provider": PROVIDER, "metadata_cid": "bafkp2"}))
        b.block((E.UnbondingRequested, {"provider": PROVIDER, "available_at": 1_800_000_060}))
        s = _fold(b)
        p = _provider(s)
        assert (p.status, p.stake, p.metadata_cid, p.unbonding_at) == (
            "unbonding",
            3 * ETH,
            "bafkp2",
            1_800_000_060,
        )
        b.block(credited(PROVIDER, 3 * ETH), (E.ProviderUnbonded, {"provider": PROVIDER, "stake": 3 * ETH}))
        p = _provider(_fold(b))
        assert (p.status, p.stake, p.unbonding_at) == ("left", 0, None)
        b.block((E.ProviderRegistered, {"provider": PROVIDER, "stake": ETH, "metadata_cid": "bafkp3"}))
        p = _provider(_fold(b))
        assert (p.status, p.stake, p.metadata_cid, p.registered_at) == (
            "active",
            ETH,
            "bafkp3",
            b.blocks[-1][0].timestamp,
        )


class TestMarketplace:
    def _minted(self) -> Builder:
        b = Builder()
        b.shared_contract = "PromptMarketplace"
        b.block(
            (E.Transfer, {"from_": NATIVE, "to": CREATOR, "token_id": 1}),
            (
                E.PromptMinted,
                {
                    "token_id": 1,
                    "creator": CREATOR,
                    "metadata_cid": "bafkmeta",
                    "content_hash": b"\x22" * 32,
                    "royalty_bps": 500,
                },
            ),
        )
        return b

    def test_mint(self) -> None:
        p = _fold(self._minted()).get(Prompt, (1,))
        assert p is not None
        assert (p.owner, p.creator, p.metadata_cid, p.content_hash, p.royalty_bps) == (
            CREATOR,
            CREATOR,
            "bafkmeta",
            "0x" + "22" * 32,
            500,
        )
        assert not p.listed and p.licence_price is None

    def test_list_replace_cancel_list_sell(self) -> None:
        b = self._minted()
        b.block((E.PromptListed, {"token_id": 1, "seller": CREATOR, "asset": NATIVE, "price": 5}))
        b.block((E.PromptListed, {"token_id": 1, "seller": CREATOR, "asset": TOKEN, "price": 6}))
        b.block((E.ListingCancelled, {"token_id": 1, "seller": CREATOR}))
        b.block((E.PromptListed, {"token_id": 1, "seller": CREATOR, "asset": NATIVE, "price": ETH}))
        b.block((E.LicenseTermsSet, {"token_id": 1, "asset": NATIVE, "price": 7}))
        b.block(
            credited(TREASURY, 3 * ETH // 100),
            (E.FeeCharged, {"asset": NATIVE, "treasury": TREASURY, "amount": 3 * ETH // 100}),
            credited(CREATOR, 5 * ETH // 100),
            credited(CREATOR, 92 * ETH // 100),
            (E.Transfer, {"from_": CREATOR, "to": BUYER, "token_id": 1}),
            (E.LicenseTermsSet, {"token_id": 1, "asset": NATIVE, "price": 0}),
            (
                E.PromptSold,
                {
                    "token_id": 1,
                    "seller": CREATOR,
                    "buyer": BUYER,
                    "asset": NATIVE,
                    "price": ETH,
                    "seller_proceeds": 92 * ETH // 100,
                    "royalty": 5 * ETH // 100,
                    "royalty_receiver": CREATOR,
                    "fee": 3 * ETH // 100,
                },
            ),
        )
        s = _fold(b)
        listings = s.all(Listing)
        assert [(x.seq, x.state, x.asset, x.price) for x in listings] == [
            (1, "replaced", NATIVE, 5),
            (2, "cancelled", TOKEN, 6),
            (3, "sold", NATIVE, ETH),
        ]
        assert listings[-1].buyer == BUYER and listings[-1].closed_at == b.blocks[-1][0].timestamp
        p = s.get(Prompt, (1,))
        assert p is not None
        assert (p.owner, p.listed, p.list_price, p.listing_seq, p.sales_count, p.licence_price) == (
            BUYER,
            False,
            None,
            3,
            1,
            None,
        )
        (sale,) = s.all(Sale)
        assert (sale.price, sale.fee, sale.royalty, sale.seller_proceeds, sale.listing_seq) == (
            ETH,
            3 * ETH // 100,
            5 * ETH // 100,
            92 * ETH // 100,
            3,
        )
        owed = s.get(Owed, (CREATOR, NATIVE, "PromptMarketplace"))
        assert owed is not None and owed.owed == 97 * ETH // 100

    def test_licence_delivered_and_rated(self) -> None:
        b = self._minted()
        b.block((E.LicenseTermsSet, {"token_id": 1, "asset": NATIVE, "price": 100}))
        b.block(
            (
                E.LicensePurchased,
                {
                    "license_id": 1,
                    "token_id": 1,
                    "buyer": READER,
                    "seller": CREATOR,
                    "asset": NATIVE,
                    "price": 100,
                    "delivery_deadline": 1_800_000_600,
                },
            )
        )
        b.block(
            (
                E.KeyDelivered,
                {
                    "license_id": 1,
                    "token_id": 1,
                    "buyer": READER,
                    "seller": CREATOR,
                    "encrypted_key": b"\x04key",
                    "seller_proceeds": 97,
                    "fee": 3,
                },
            )
        )
        b.block(
            (
                E.PromptRated,
                {"token_id": 1, "license_id": 1, "rater": READER, "score": 5, "review_cid": "bafkr"},
            )
        )
        s = _fold(b)
        lic = s.get(Licence, (1,))
        assert lic is not None
        assert (lic.state, lic.encrypted_key, lic.seller_proceeds, lic.fee, lic.rated) == (
            "delivered",
            b"\x04key",
            97,
            3,
            True,
        )
        rating = s.get(Rating, (1,))
        assert rating is not None and (rating.score, rating.review_cid, rating.rater) == (5, "bafkr", READER)
        p = s.get(Prompt, (1,))
        assert p is not None and (p.rating_count, p.rating_sum, p.licences_sold, p.licence_price) == (
            1,
            5,
            1,
            100,
        )

    def test_licence_refunded(self) -> None:
        b = self._minted()
        b.block(
            (
                E.LicensePurchased,
                {
                    "license_id": 1,
                    "token_id": 1,
                    "buyer": READER,
                    "seller": CREATOR,
                    "asset": NATIVE,
                    "price": 100,
                    "delivery_deadline": 1,
                },
            )
        )
        b.block(
            credited(READER, 100),
            (E.LicenseRefunded, {"license_id": 1, "token_id": 1, "buyer": READER, "refund": 100}),
        )
        lic = _fold(b).get(Licence, (1,))
        assert lic is not None and (lic.state, lic.refund, lic.encrypted_key) == ("refunded", 100, None)


class TestMoney:
    def test_owed_follows_credits_and_withdrawals_per_contract(self) -> None:
        b = Builder()
        b.block(credited(CLIENT, 5), credited(CLIENT, 7))
        b.block((E.Withdrawn, {"account": CLIENT, "asset": NATIVE, "amount": 12}))
        b.block(credited(CLIENT, 1))
        s = _fold(b)
        owed = s.get(Owed, (CLIENT, NATIVE, "ComputeRental"))
        assert owed is not None and (owed.owed, owed.credited_total, owed.withdrawn_total) == (1, 13, 12)
        assert s.get(Owed, (CLIENT, NATIVE, "PromptMarketplace")) is None

    def test_fees_are_summed_per_asset_per_utc_day(self) -> None:
        midnight = 1_700_006_400  # 2023-11-15T00:00:00Z
        b = Builder(t0=midnight - 24)  # block 1 at 23:59:48, block 2 at 00:00:00
        fee = (E.FeeCharged, {"asset": NATIVE, "treasury": TREASURY, "amount": 3})
        b.block(fee, fee)
        b.block(fee)
        b.block((E.FeeCharged, {"asset": TOKEN, "treasury": TREASURY, "amount": 4}))
        s = _fold(b)
        assert [
            (f.asset, f.day, f.amount, f.count) for f in sorted(s.all(FeeDay), key=lambda f: (f.day, f.asset))
        ] == [
            (NATIVE, "2023-11-14", 6, 2),
            (NATIVE, "2023-11-15", 3, 1),
            (TOKEN, "2023-11-15", 4, 1),
        ]
        assert day_of(midnight) == "2023-11-15" and day_of(midnight - 1) == "2023-11-14"


class TestPurity:
    def test_apply_is_a_function_of_state_and_event(self) -> None:
        b = _chain()
        _submitted(b)
        events = _events(b)
        state = MemoryState().fold(events[:-1])
        snapshot = copy.copy(state.rows)
        first = apply(state, events[-1])
        second = apply(state, events[-1])
        assert first == second and first  # same inputs, same rows
        assert state.rows == snapshot  # the state was not touched
        for row in first:
            with pytest.raises(AttributeError):
                row.block_number = 0  # type: ignore[misc]

    def test_every_changed_row_names_the_log(self) -> None:
        b = _chain()
        _submitted(b)
        state = MemoryState()
        for event in _events(b):
            for row in apply(state, event):
                assert (row.block_number, row.tx_hash, row.log_index) == (  # type: ignore[attr-defined]
                    event.block_number,
                    event.tx_hash,
                    event.log_index,
                )
                state.rows[(type(row), row.key())] = row

    def test_events_about_unknown_rows_change_nothing(self) -> None:
        b = Builder()
        b.block(
            (
                E.JobAssigned,
                {"job_id": 9, "provider": PROVIDER, "price": 1, "refund": 0, "execution_deadline": 1},
            ),
            (
                E.KeyDelivered,
                {
                    "license_id": 9,
                    "token_id": 9,
                    "buyer": READER,
                    "seller": CREATOR,
                    "encrypted_key": b"k",
                    "seller_proceeds": 1,
                    "fee": 0,
                },
            ),
            (E.StakeAdded, {"provider": PROVIDER, "amount": 1, "stake": 1}),
            (E.Approval, {"owner": CREATOR, "approved": BUYER, "token_id": 9}),
        )
        assert _fold(b).rows == {}

    def test_reads_name_the_rows_apply_looks_up(self) -> None:
        b = _chain()
        _submitted(b)
        looked: list[Any] = []

        class Spy(MemoryState):
            def get(self, kind: Any, key: Any) -> Any:
                looked.append((kind, key))
                return super().get(kind, key)

        state = Spy()
        for event in _events(b):
            looked.clear()
            for row in apply(state, event):
                state.rows[(type(row), row.key())] = row
            assert set(looked) <= set(reads(event)) | {(ContractState, ("ComputeRental",))}
