"""agent/delivery.py in process: a crash at each point of a delivery, and a restart, never
delivers twice and never loses the delivery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.delivery import DeliveryJournal, DeliveryJournalError, KeyDeliverer, Phase
from ascendnet.prompts.errors import BuyerKeyUnavailable, PurchaseNotFound
from ascendnet.prompts.market import PromptMarket, find_event, read_licence
from ascendnet.prompts.seller_keys import SellerKeyStore
from ascendnet.storage import LocalContentStore
from chain import events as ev
from chain.contracts import Protocol
from chain.tx import TransactionTimeout, TxSender
from tests.prompts.conftest import PROMPT_TEXT, calls_by, draft

PRICE = 10**16


class Killed(BaseException):
    """Stands for a kill -9: nothing after it runs, and no handler catches it."""


@pytest.fixture()
def seller(
    protocol: Protocol, senders: list[TxSender], store: LocalContentStore, tmp_path: Path
) -> PromptMarket:
    return PromptMarket(
        protocol, senders[3], store, SellerKeyStore(tmp_path / "keys.json", senders[3].account)
    )


@pytest.fixture()
def licence(
    protocol: Protocol, seller: PromptMarket, senders: list[TxSender], store: LocalContentStore
) -> int:
    minted = seller.mint(PROMPT_TEXT, draft(), licence_price=PRICE)
    return PromptMarket(protocol, senders[4], store).buy_licence(minted.token_id).licence_id


def deliverer(
    protocol: Protocol, seller: PromptMarket, path: Path, sender: TxSender | None = None
) -> KeyDeliverer:
    """A fresh deliverer on the journal at `path`, as a restarted agent builds it."""
    assert seller.seller_keys is not None
    keys = SellerKeyStore(seller.seller_keys.path, seller.sender.account)
    return KeyDeliverer(
        protocol=protocol,
        sender=sender or TxSender(protocol.w3, seller.sender.account),
        keys=keys,
        journal=DeliveryJournal(path),
        confirmations=0,
    )


def test_killed_after_the_intent_the_same_bytes_are_sent_once(
    protocol: Protocol, seller: PromptMarket, licence: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = protocol.w3.eth.block_number
    first = deliverer(protocol, seller, tmp_path / "d.db")

    def killed(self: KeyDeliverer, rec: Any) -> None:
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(KeyDeliverer, "_send", killed)
        with pytest.raises(Killed):
            first.step()
    rec = first.journal.get(licence)
    assert rec is not None and rec.phase is Phase.DELIVERING and rec.encrypted_key
    assert read_licence(protocol.market, licence).state == "Pending"

    restarted = deliverer(protocol, seller, tmp_path / "d.db")
    restarted.recover()
    done = restarted.journal.get(licence)
    assert done is not None and done.phase is Phase.DELIVERED
    (delivered,) = find_event(protocol, ev.KeyDelivered, licence)
    assert isinstance(delivered, ev.KeyDelivered)
    assert "0x" + delivered.encrypted_key.hex() == rec.encrypted_key  # the committed bytes
    assert calls_by(protocol.w3, protocol.market, seller.me, start + 1) == {("deliverKey", licence): 1}


def test_killed_after_the_transaction_nothing_is_sent_again(
    protocol: Protocol, seller: PromptMarket, licence: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = protocol.w3.eth.block_number
    first = deliverer(protocol, seller, tmp_path / "d.db")
    advance = DeliveryJournal.advance

    def advance_until_delivered(self: DeliveryJournal, licence_id: int, phase: Phase, **values: Any) -> Any:
        if phase is Phase.DELIVERED:
            raise Killed  # the receipt came back; the outcome was never written
        return advance(self, licence_id, phase, **values)

    with monkeypatch.context() as m:
        m.setattr(DeliveryJournal, "advance", advance_until_delivered)
        with pytest.raises(Killed):
            first.step()
    assert read_licence(protocol.market, licence).state == "Delivered"

    restarted = deliverer(protocol, seller, tmp_path / "d.db")
    restarted.recover()
    restarted.step()
    rec = restarted.journal.get(licence)
    assert rec is not None and rec.phase is Phase.DELIVERED and rec.reason == "found delivered on chain"
    assert calls_by(protocol.w3, protocol.market, seller.me, start + 1) == {("deliverKey", licence): 1}


@pytest.fixture()
def manual_mining(protocol: Protocol) -> Iterator[None]:
    w3 = protocol.w3
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        yield
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def test_a_delivery_still_in_the_mempool_is_not_sent_again(
    protocol: Protocol, seller: PromptMarket, licence: int, tmp_path: Path, manual_mining: None
) -> None:
    w3 = protocol.w3
    start = w3.eth.block_number
    impatient = TxSender(w3, seller.sender.account, receipt_timeout=0.3)
    first = deliverer(protocol, seller, tmp_path / "d.db", sender=impatient)
    with pytest.raises(TransactionTimeout):
        first.step()  # sent, not mined: the agent's loop would log it and poll again
    restarted = deliverer(protocol, seller, tmp_path / "d.db")
    for _ in range(3):
        restarted.step()  # Pending on chain, but our transaction is in the mempool: wait
    rec = restarted.journal.get(licence)
    assert rec is not None and rec.phase is Phase.DELIVERING
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    restarted.step()
    rec = restarted.journal.get(licence)
    assert rec is not None and rec.phase is Phase.DELIVERED
    assert calls_by(w3, protocol.market, seller.me, start + 1) == {("deliverKey", licence): 1}


def test_the_journal_refuses_to_go_back_or_to_mix_deployments(tmp_path: Path) -> None:
    journal = DeliveryJournal(tmp_path / "d.db")
    journal.bind(31337, "0x" + "11" * 20, "0x" + "22" * 20)
    journal.observe(1, token_id=1)
    journal.advance(1, Phase.DELIVERING, encrypted_key="0x01")
    journal.advance(1, Phase.DELIVERED, deliver_tx="0xab")
    with pytest.raises(DeliveryJournalError, match="refuses delivered -> delivering"):
        journal.advance(1, Phase.DELIVERING)
    assert journal.observe(1).phase is Phase.DELIVERED  # seeing it again changes nothing
    with pytest.raises(DeliveryJournalError, match="belongs to"):
        journal.bind(31337, "0x" + "11" * 20, "0x" + "33" * 20)


def test_an_unrecoverable_buyer_key_fails_the_licence_but_a_missing_purchase_waits(
    protocol: Protocol, seller: PromptMarket, licence: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.delivery

    d = deliverer(protocol, seller, tmp_path / "d.db")

    def not_found(w3: Any, tx_hash: str, buyer: str) -> bytes:
        raise PurchaseNotFound(tx_hash, buyer)

    monkeypatch.setattr(agent.delivery, "buyer_public_key", not_found)
    d.step()
    d.step()
    rec = d.journal.get(licence)
    assert rec is not None and rec.phase is Phase.SEEN  # a lagging node: retried, not given up

    def contract_wallet(w3: Any, tx_hash: str, buyer: str) -> bytes:
        raise BuyerKeyUnavailable(
            tx_hash, buyer, "it was signed by 0xabc, not the buyer (a contract wallet?)"
        )

    monkeypatch.setattr(agent.delivery, "buyer_public_key", contract_wallet)
    d.step()
    rec = d.journal.get(licence)
    assert rec is not None and rec.phase is Phase.FAILED and "contract wallet" in (rec.reason or "")
    assert read_licence(protocol.market, licence).state == "Pending"  # refunded after the deadline
