"""Typed decoding of real logs from anvil into chain/events.py dataclasses."""

from __future__ import annotations

import hashlib

import pytest
from web3 import Web3

from chain import events
from chain.contracts import Protocol
from chain.decoder import LogDecoder, UnknownEvent
from chain.tx import TxSender
from tests.chain.flows import NATIVE, PARAMS, JobFlow, advance


def _decoder(protocol: Protocol) -> LogDecoder:
    d = protocol.deployment
    return LogDecoder({n: d.contracts[n] for n in ("ComputeRental", "PromptMarketplace")}, d.chain_id)


def _logs(w3: Web3, protocol: Protocol, from_block: int) -> list:
    return w3.eth.get_logs(
        {
            "fromBlock": from_block,
            "toBlock": "latest",
            "address": [protocol.compute.address, protocol.market.address],
        }
    )


def test_job_lifecycle_events_decode_with_values(
    w3: Web3, protocol: Protocol, senders: list[TxSender]
) -> None:
    start = w3.eth.block_number + 1
    flow = JobFlow(protocol, client=senders[1], provider=senders[2])
    job_id = flow.complete(price=6 * 10**17)
    senders[2].transact(protocol.compute.functions.withdraw(NATIVE))

    decoded = _decoder(protocol).decode_all(_logs(w3, protocol, start))
    by_name = {}
    for ev in decoded:
        by_name.setdefault(ev.name, []).append(ev)

    registered = by_name["ProviderRegistered"][0]
    assert isinstance(registered, events.ProviderRegistered)
    assert registered.provider == senders[2].address
    assert registered.stake == PARAMS.min_stake

    posted = by_name["JobPosted"][0]
    assert isinstance(posted, events.JobPosted)
    assert posted.job_id == job_id
    assert posted.client == senders[1].address
    assert posted.asset == NATIVE
    assert posted.amount == 10**18
    assert posted.spec_hash == hashlib.sha256(b"{}").digest()
    assert posted.spec_cid == "bafkreispec"
    assert posted.execution_timeout == 3600

    assigned = by_name["JobAssigned"][0]
    assert (assigned.price, assigned.refund) == (6 * 10**17, 4 * 10**17)
    submitted = by_name["ResultSubmitted"][0]
    assert submitted.result_hash == b"\x11" * 32 and submitted.result_cid == "bafkreiresult"
    completed = by_name["JobCompleted"][0]
    assert completed.fee == 18 * 10**15 and completed.payout == 6 * 10**17 - 18 * 10**15
    assert completed.by_client is False
    fee = by_name["FeeCharged"][0]
    assert fee.treasury == protocol.deployment.params["treasury"] and fee.amount == 18 * 10**15
    withdrawn = by_name["Withdrawn"][0]
    assert withdrawn.account == senders[2].address and withdrawn.amount == completed.payout

    # Provenance: every event names its block, tx and log, in chain order.
    for ev in decoded:
        receipt = w3.eth.get_transaction_receipt(ev.tx_hash)
        assert receipt["blockNumber"] == ev.block_number
        assert "0x" + bytes(receipt["blockHash"]).hex() == ev.block_hash
        assert ev.chain_id == 31337
    keys = [(e.block_number, e.log_index) for e in decoded]
    assert keys == sorted(keys)
    assert by_name["JobPosted"][0].args()["spec_hash"] == "0x" + hashlib.sha256(b"{}").hexdigest()


def test_marketplace_events_decode(w3: Web3, protocol: Protocol, senders: list[TxSender]) -> None:
    start = w3.eth.block_number + 1
    m = protocol.market
    creator, buyer = senders[3], senders[4]
    content_hash = hashlib.sha256(b"prompt text").digest()
    creator.transact(m.functions.mint("bafkreimeta", content_hash, 250))
    token_id = int(m.functions.promptCount().call())
    creator.transact(m.functions.setLicenseTerms(token_id, NATIVE, 10**17))
    buyer.transact(m.functions.buyLicense(token_id, 10**17), value=10**17)
    license_id = int(m.functions.licenseCount().call())
    creator.transact(m.functions.deliverKey(license_id, b"sealed-key-bytes"))
    buyer.transact(m.functions.rate(license_id, 4, "bafkreireview"))
    buyer.transact(m.functions.buyLicense(token_id, 10**17), value=10**17)
    advance(w3, PARAMS.delivery_window + 1)
    senders[5].transact(m.functions.refundLicense(license_id + 1))

    decoded = _decoder(protocol).decode_all(_logs(w3, protocol, start))
    names = [e.name for e in decoded]
    for expected in ("PromptMinted", "Transfer", "LicenseTermsSet", "LicensePurchased", "KeyDelivered",
                     "PromptRated", "LicenseRefunded", "Credited", "FeeCharged"):  # fmt: skip
        assert expected in names
    minted = next(e for e in decoded if isinstance(e, events.PromptMinted))
    assert (minted.token_id, minted.creator) == (token_id, creator.address)
    assert minted.metadata_cid == "bafkreimeta"
    assert (minted.content_hash, minted.royalty_bps) == (content_hash, 250)
    transfer = next(e for e in decoded if isinstance(e, events.Transfer))
    assert transfer.from_ == "0x0000000000000000000000000000000000000000" or transfer.to == creator.address
    delivered = next(e for e in decoded if isinstance(e, events.KeyDelivered))
    assert delivered.encrypted_key == b"sealed-key-bytes"
    assert delivered.buyer == buyer.address
    rated = next(e for e in decoded if isinstance(e, events.PromptRated))
    assert (rated.score, rated.review_cid, rated.rater) == (4, "bafkreireview", buyer.address)
    refunded = next(e for e in decoded if isinstance(e, events.LicenseRefunded))
    assert refunded.refund == 10**17 and refunded.license_id == license_id + 1


def test_params_tuple_event_decodes_to_named_fields(
    w3: Web3, protocol: Protocol, senders: list[TxSender]
) -> None:
    start = w3.eth.block_number + 1
    params = protocol.compute.functions.params().call()
    senders[0].transact(protocol.compute.functions.setParams(params))
    (ev,) = _decoder(protocol).decode_all(_logs(w3, protocol, start))
    assert isinstance(ev, events.ParamsUpdated)
    assert ev.params["min_stake"] == PARAMS.min_stake
    assert ev.params["challenge_window"] == PARAMS.challenge_window


def test_unknown_contract_and_topic_are_rejected(protocol: Protocol) -> None:
    decoder = _decoder(protocol)
    base = {
        "blockNumber": 1,
        "blockHash": "0x" + "00" * 32,
        "transactionHash": "0x" + "00" * 32,
        "logIndex": 0,
        "data": "0x",
    }
    with pytest.raises(UnknownEvent, match="unknown contract"):
        decoder.decode({**base, "address": "0x" + "12" * 20, "topics": ["0x" + "00" * 32]})
    with pytest.raises(UnknownEvent, match="unknown event topic"):
        decoder.decode({**base, "address": protocol.compute.address, "topics": ["0x" + "ab" * 32]})
    with pytest.raises(UnknownEvent, match="anonymous"):
        decoder.decode({**base, "address": protocol.compute.address, "topics": []})
