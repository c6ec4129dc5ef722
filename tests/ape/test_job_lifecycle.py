"""A whole compute job, driven from Python through ape on anvil: post with escrow, bid, accept
(excess refunded), submit, accept/finalize, pay out minus 3%, withdraw."""

import hashlib

import ape
import pytest

from tests.ape.conftest import PARAMS

SPEC = b'{"image":"sha256:abc","command":["echo","hi"]}'
SPEC_HASH = hashlib.sha256(SPEC).digest()
NATIVE = "0x0000000000000000000000000000000000000000"
MAX_PRICE = 10**18
PRICE = 6 * 10**17


@pytest.fixture(scope="module")
def client(accounts):
    return accounts[1]


@pytest.fixture(scope="module")
def provider(accounts, compute):
    p = accounts[2]
    compute.registerProvider("bafkrei-provider-caps", sender=p, value=PARAMS.min_stake)
    return p


def _post(compute, client, chain):
    deadline = chain.pending_timestamp + 600
    tx = compute.postJob(
        NATIVE, MAX_PRICE, SPEC_HASH, "bafkrei-spec", deadline, 3600, sender=client, value=MAX_PRICE
    )
    (posted,) = tx.decode_logs(compute.JobPosted)
    return posted.jobId


def test_whole_job_finalized_after_challenge_window(compute, client, provider, treasury, chain, accounts):
    job_id = _post(compute, client, chain)
    compute.placeBid(job_id, PRICE, sender=provider)

    tx = compute.acceptBid(job_id, provider, PRICE, sender=client)
    (assigned,) = tx.decode_logs(compute.JobAssigned)
    assert assigned.refund == MAX_PRICE - PRICE
    assert compute.owed(client, NATIVE) == MAX_PRICE - PRICE

    result_hash = hashlib.sha256(b"outputs").digest()
    compute.submitResult(job_id, result_hash, "bafkrei-result", sender=provider)
    job = compute.getJob(job_id)
    assert job.resultHash == result_hash
    assert job.state == 3  # Submitted

    with ape.reverts(compute.ChallengeWindowOpen):
        compute.finalize(job_id, sender=accounts[5])
    chain.pending_timestamp += PARAMS.challenge_window + 1
    tx = compute.finalize(job_id, sender=accounts[5])  # anyone may finalize
    (completed,) = tx.decode_logs(compute.JobCompleted)
    fee = -(-PRICE * 300 // 10_000)
    assert completed.fee == fee
    assert completed.payout == PRICE - fee
    assert compute.getJob(job_id).state == 4  # Completed

    before = provider.balance
    tx = compute.withdraw(NATIVE, sender=provider)
    assert provider.balance == before + PRICE - fee - tx.total_fees_paid
    assert compute.owed(treasury, NATIVE) >= fee
    # Solvency: what the contract holds is exactly what it escrows plus what it owes.
    assert compute.balance == compute.totalEscrowed(NATIVE) + compute.totalOwed(NATIVE)


def test_client_accepts_result_early_and_cannot_pay_twice(compute, client, provider, chain):
    job_id = _post(compute, client, chain)
    compute.placeBid(job_id, PRICE, sender=provider)
    compute.acceptBid(job_id, provider, PRICE, sender=client)
    compute.submitResult(job_id, b"\x01" * 32, "bafkrei-result", sender=provider)
    compute.acceptResult(job_id, sender=client)
    with ape.reverts(compute.WrongJobState):
        compute.acceptResult(job_id, sender=client)
    chain.pending_timestamp += PARAMS.challenge_window + 1
    with ape.reverts(compute.WrongJobState):
        compute.finalize(job_id, sender=client)


def test_only_client_accepts_a_bid(compute, client, provider, chain, accounts):
    job_id = _post(compute, client, chain)
    compute.placeBid(job_id, PRICE, sender=provider)
    with ape.reverts(compute.NotClient):
        compute.acceptBid(job_id, provider, PRICE, sender=accounts[6])
    with ape.reverts(compute.BidMismatch):
        compute.acceptBid(job_id, provider, PRICE + 1, sender=client)


def test_missed_deadline_fails_refunds_and_slashes(compute, client, provider, chain, accounts):
    job_id = _post(compute, client, chain)
    compute.placeBid(job_id, PRICE, sender=provider)
    compute.acceptBid(job_id, provider, PRICE, sender=client)
    stake_before = compute.getProvider(provider).stake
    owed_before = compute.owed(client, NATIVE)
    chain.pending_timestamp += 3600 + 1
    tx = compute.failJob(job_id, sender=accounts[7])
    (failed,) = tx.decode_logs(compute.JobFailed)
    slashed = stake_before * PARAMS.slash_bps // 10_000
    assert failed.slashed == slashed
    assert compute.getProvider(provider).stake == stake_before - slashed
    assert compute.owed(client, NATIVE) == owed_before + PRICE + slashed
