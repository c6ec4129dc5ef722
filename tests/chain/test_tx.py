"""The transaction sender against a real anvil: simulation, nonces, EIP-1559 fees, and reverts
decoded into the contract's custom error with its arguments."""

from __future__ import annotations

import threading

import pytest
from eth_abi import encode
from eth_utils import keccak
from web3 import Web3

from chain.contracts import Protocol
from chain.errors import ContractReverted
from chain.revert import decode_revert
from chain.tx import TxSender
from tests.chain.flows import JobFlow


def _automine(w3: Web3, on: bool) -> None:
    w3.provider.make_request("evm_setAutomine", [on])  # type: ignore[arg-type]


def test_revert_is_decoded_before_sending(protocol: Protocol, senders: list[TxSender], w3: Web3) -> None:
    flow = JobFlow(protocol, client=senders[1], provider=senders[2])
    job_id, _ = flow.post()
    nonce_before = w3.eth.get_transaction_count(senders[6].address)
    with pytest.raises(ContractReverted) as info:
        senders[6].transact(protocol.compute.functions.cancelJob(job_id))
    err = info.value
    assert err.error == "NotClient"
    assert err.args_by_name == {"jobId": job_id, "caller": senders[6].address}
    assert err.contract == "ComputeRental" and err.function == "cancelJob"
    assert f"NotClient(jobId={job_id}, caller={senders[6].address})" in str(err)
    # Nothing was sent: the simulation caught it.
    assert w3.eth.get_transaction_count(senders[6].address) == nonce_before


def test_openzeppelin_errors_are_decoded_too(protocol: Protocol, senders: list[TxSender]) -> None:
    with pytest.raises(ContractReverted) as info:
        senders[5].transact(protocol.compute.functions.pause())
    assert info.value.error == "AccessControlUnauthorizedAccount"
    assert info.value.args_by_name["account"] == senders[5].address
    assert info.value.args_by_name["neededRole"] == keccak(text="PAUSER_ROLE")


def test_mined_revert_is_replayed_and_decoded(protocol: Protocol, senders: list[TxSender], w3: Web3) -> None:
    """Both transactions simulate fine, but the cancel is mined first, so the bid reverts on
    chain; the sender recovers the custom error from the mined failure."""
    flow = JobFlow(protocol, client=senders[1], provider=senders[2])
    flow.ensure_provider()
    job_id, _ = flow.post()
    errors: list[BaseException] = []
    results: list[object] = []

    def run(fn, sender: TxSender) -> None:
        try:
            results.append(sender.transact(fn))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    _automine(w3, False)
    try:
        t1 = threading.Thread(target=run, args=(protocol.compute.functions.cancelJob(job_id), senders[1]))
        t1.start()
        _wait_pending(w3, 1)
        t2 = threading.Thread(
            target=run, args=(protocol.compute.functions.placeBid(job_id, 10**17), senders[2])
        )
        t2.start()
        _wait_pending(w3, 2)
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        t1.join(30)
        t2.join(30)
    finally:
        _automine(w3, True)
    assert len(results) == 1 and len(errors) == 1
    err = errors[0]
    assert isinstance(err, ContractReverted)
    assert err.error == "WrongJobState"
    assert err.args_by_name == {"jobId": job_id, "state": 5}  # Cancelled
    assert err.tx_hash is not None
    assert w3.eth.get_transaction_receipt(err.tx_hash)["status"] == 0


def test_concurrent_sends_from_one_account_get_distinct_nonces(
    protocol: Protocol, senders: list[TxSender], w3: Web3
) -> None:
    sender = senders[7]
    start = w3.eth.get_transaction_count(sender.address)
    results: list[object] = []
    _automine(w3, False)
    try:
        threads = [
            threading.Thread(target=lambda: results.append(sender.send_value(senders[8].address, 1)))
            for _ in range(5)
        ]
        for t in threads:
            t.start()
        _wait_pending(w3, 5)
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        for t in threads:
            t.join(30)
    finally:
        _automine(w3, True)
    assert len(results) == 5
    assert w3.eth.get_transaction_count(sender.address) == start + 5


def test_eip1559_fields_are_used(protocol: Protocol, senders: list[TxSender], w3: Web3) -> None:
    sent = senders[7].send_value(senders[8].address, 1)
    tx = w3.eth.get_transaction(sent.tx_hash)
    assert tx["type"] == 2
    base_fee = w3.eth.get_block(sent.block_number)["baseFeePerGas"]
    assert tx["maxFeePerGas"] >= base_fee


def test_decode_revert_of_builtin_errors_and_garbage() -> None:
    err = decode_revert(keccak(text="Error(string)")[:4] + encode(["string"], ["nope"]))
    assert err.error == "Error" and err.args_by_name == {"message": "nope"}
    panic = decode_revert(keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11]))
    assert panic.error == "Panic" and panic.args_by_name["reason"] == "arithmetic overflow or underflow"
    assert decode_revert(b"\xde\xad\xbe\xef").error == "UnknownRevert"
    assert decode_revert(None).error == "UnknownRevert"
    assert decode_revert("0xzz").error == "UnknownRevert"
    truncated = decode_revert(keccak(text="NotClient(uint256,address)")[:4] + b"\x00" * 5)
    assert truncated.error == "NotClient" and "undecodable" in truncated.args_by_name


def _wait_pending(w3: Web3, count: int, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        block = w3.eth.get_block("pending", full_transactions=False)
        if len(block["transactions"]) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} transactions never reached the mempool")
