"""Licence key delivery by the seller's agent.

For every `LicensePurchased` of a prompt whose content key is in the operator's seller key store
(written by `ascendnet prompt mint`), the `KeyDeliverer` recovers the buyer's public key from the
signature of the purchase transaction, encrypts the content key to it (ECIES over secp256k1) and
posts it with `deliverKey`, which releases the escrow.

Crash safety follows agent/journal.py: each licence has one row in its own SQLite journal whose
phase only moves forward. The encrypted key is committed (`delivering`) before the transaction
is sent, and the on-chain licence is read before every send: a restart after a kill -9 finds the
licence Delivered and records it, or finds it still Pending and sends the very same bytes again,
which the contract would refuse as a replay if the first had been mined. So each licence gets at
most one deliverKey that succeeds, and the agent never sends a second one while the chain already
shows the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agent.errors import AgentError
from agent.phased import PhasedJournal
from agent.watcher import ChainWatcher
from ascendnet.log import get_logger
from ascendnet.prompts.crypto import buyer_public_key, wrap_key
from ascendnet.prompts.errors import PromptError, PurchaseNotFound
from ascendnet.prompts.market import OnChainLicence, find_event, read_licence, read_prompt
from ascendnet.prompts.seller_keys import SellerKeyStore
from chain import events as ev
from chain.contracts import Protocol
from chain.errors import ChainError, ContractReverted
from chain.tx import TxSender


class Phase(StrEnum):
    SEEN = "seen"  # LicensePurchased of one of our prompts observed
    DELIVERING = "delivering"  # encrypted key committed; deliverKey maybe sent
    DELIVERED = "delivered"  # KeyDelivered on chain (by this agent, before or after a crash)
    REFUNDED = "refunded"  # the buyer was refunded before we delivered
    EXPIRED = "expired"  # the delivery deadline passed first
    SKIPPED = "skipped"  # not ours to deliver (no content key here, or another seller)
    FAILED = "failed"  # cannot deliver (e.g. the buyer's public key is not recoverable)


TERMINAL = frozenset({Phase.DELIVERED, Phase.REFUNDED, Phase.EXPIRED, Phase.SKIPPED, Phase.FAILED})
_ORDER = {Phase.SEEN: 0, Phase.DELIVERING: 1, **dict.fromkeys(TERMINAL, 2)}


class DeliveryJournalError(AgentError):
    """The delivery journal cannot be opened or refuses a transition."""


@dataclass(frozen=True)
class DeliveryRecord:
    licence_id: int
    phase: Phase
    updated_at: float
    token_id: int | None = None
    buyer: str | None = None
    purchase_tx: str | None = None
    #: 0x-hex ECIES ciphertext committed before the deliverKey that carries it.
    encrypted_key: str | None = None
    deliver_tx: str | None = None
    reason: str | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    licence_id INTEGER PRIMARY KEY,
    phase TEXT NOT NULL,
    updated_at REAL NOT NULL,
    token_id INTEGER,
    buyer TEXT,
    purchase_tx TEXT,
    encrypted_key TEXT,
    deliver_tx TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_phase ON deliveries (phase);
"""


class DeliveryJournal(PhasedJournal[DeliveryRecord]):
    """The durable record of this agent's licence deliveries (SQLite, its own file)."""

    record_type = DeliveryRecord
    phase_type = Phase
    table = "deliveries"
    schema = _SCHEMA
    terminal = TERMINAL
    order = _ORDER
    title = "delivery journal"
    noun = "licence"
    error = DeliveryJournalError


class KeyDeliverer:
    """Delivers the content keys of this seller's prompts to their licence buyers.

    Driven by the agent's loop (agent/worker.py): `recover()` once at start, `step()` on every
    poll. Connection errors propagate to the loop, which retries; a licence that cannot be
    delivered is recorded with its reason and never blocks the others.
    """

    def __init__(
        self,
        *,
        protocol: Protocol,
        sender: TxSender,
        keys: SellerKeyStore,
        journal: DeliveryJournal,
        confirmations: int = 2,
    ) -> None:
        self.protocol = protocol
        self.market = protocol.market
        self.w3 = protocol.w3
        self.sender = sender
        self.me = sender.address
        self.keys = keys
        self.journal = journal
        self.log = get_logger("agent.delivery").bind(seller=self.me)
        self._waiting: set[int] = set()
        journal.bind(protocol.deployment.chain_id, self.me, self.market.address)
        self.watcher = ChainWatcher(
            self.w3,
            protocol,
            journal,
            start_block=protocol.deployment.deploy_block,
            confirmations=confirmations,
            contract="PromptMarketplace",
            watched=("LicensePurchased",),
        )

    def recover(self) -> None:
        """Reconcile every unfinished delivery with the chain after a (re)start. A failure here
        is only logged: `step` moves the same deliveries forward on the next poll."""
        for rec in self.journal.active():
            try:
                self._process(rec)
            except (ChainError, ConnectionError, TimeoutError, OSError) as exc:
                self.log.warning("licence.recover_failed", licence_id=rec.licence_id, error=str(exc))

    def step(self) -> int:
        """Read new purchases, then move every unfinished delivery forward. Returns events seen."""
        self.keys.refresh()
        poll = self.watcher.poll()
        for event in poll.events:
            if isinstance(event, ev.LicensePurchased):
                self._on_purchased(event)
        self.watcher.commit(poll)
        for rec in self.journal.active():
            self._process(rec)
        return len(poll.events)

    # ---------------------------------------------------------------- events

    def _on_purchased(self, e: ev.LicensePurchased) -> None:
        if e.seller != self.me or self.journal.get(e.license_id) is not None:
            return
        values: dict[str, Any] = {"token_id": e.token_id, "buyer": e.buyer, "purchase_tx": e.tx_hash}
        prompt = read_prompt(self.market, e.token_id)
        if self.keys.entry(prompt.metadata_cid) is None:
            reason = f"the content key of prompt {e.token_id} is not in the seller key store {self.keys.path}"
            self.journal.observe(e.license_id, Phase.SKIPPED, reason=reason, **values)
            self.log.warning("licence.not_deliverable_here", licence_id=e.license_id, reason=reason)
            return
        self.journal.observe(e.license_id, **values)
        self.log.info(
            "licence.purchased",
            licence_id=e.license_id,
            token_id=e.token_id,
            buyer=e.buyer,
            tx_hash=e.tx_hash,
        )

    # ---------------------------------------------------------------- delivery

    def _process(self, rec: DeliveryRecord) -> None:
        try:
            self._advance(rec)
        except PurchaseNotFound as exc:
            # NOTE: maybe a lagging node; retried on every poll until the deadline expires it.
            if rec.licence_id not in self._waiting:
                self._waiting.add(rec.licence_id)
                self.log.warning("licence.purchase_not_found", licence_id=rec.licence_id, error=str(exc))
        except PromptError as exc:
            self._end(rec.licence_id, Phase.FAILED, str(exc))

    def _advance(self, rec: DeliveryRecord) -> None:
        lic = read_licence(self.market, rec.licence_id)
        if lic.state == "None":
            return  # not on the canonical chain (yet, or any more): the watcher will re-read it
        if lic.seller != self.me:
            self._end(rec.licence_id, Phase.SKIPPED, f"sold by {lic.seller}")
        elif lic.state == "Delivered":
            self._end(rec.licence_id, Phase.DELIVERED, "found delivered on chain")
        elif lic.state == "Refunded":
            self._end(rec.licence_id, Phase.REFUNDED, "refunded before delivery")
        elif self._now() > lic.delivery_deadline:
            self._end(rec.licence_id, Phase.EXPIRED, "the delivery deadline passed")
        elif rec.phase is Phase.SEEN:
            wrapped = self._encrypt_for(lic, rec)
            if wrapped is not None:
                rec = self.journal.advance(
                    rec.licence_id, Phase.DELIVERING, encrypted_key="0x" + wrapped.hex()
                )
                self._send(rec)
        elif not self._tx_in_flight():
            # DELIVERING after a restart or a timeout, and the chain still says Pending: the
            # transaction was never mined, so send the same committed bytes again.
            self._send(rec)

    def _encrypt_for(self, lic: OnChainLicence, rec: DeliveryRecord) -> bytes | None:
        """The content key encrypted to the licence's buyer; None when it is not ours to deliver
        (the record is then ended as skipped)."""
        prompt = read_prompt(self.market, lic.token_id)
        key = self.keys.content_key(prompt.metadata_cid)
        if key is None:
            self._end(rec.licence_id, Phase.SKIPPED, f"the content key of prompt {lic.token_id} is not here")
            return None
        purchase_tx = rec.purchase_tx
        if purchase_tx is None or rec.buyer != lic.buyer or rec.token_id != lic.token_id:
            # NOTE: a reorg replaced the purchase we saw; find the canonical one.
            found = find_event(self.protocol, ev.LicensePurchased, lic.licence_id)
            purchase_tx = found[-1].tx_hash if found else None
        if purchase_tx is None:
            raise PurchaseNotFound("(no LicensePurchased event yet)", lic.buyer)
        public_key = buyer_public_key(self.w3, purchase_tx, lic.buyer)
        return wrap_key(key, public_key)

    def _send(self, rec: DeliveryRecord) -> None:
        assert rec.encrypted_key is not None
        try:
            sent = self.sender.transact(
                self.market.functions.deliverKey(rec.licence_id, bytes.fromhex(rec.encrypted_key[2:]))
            )
        except ContractReverted as exc:
            lic = read_licence(self.market, rec.licence_id)
            if lic.state == "Delivered":
                self._end(rec.licence_id, Phase.DELIVERED, "found delivered on chain")
            elif lic.state == "Refunded":
                self._end(rec.licence_id, Phase.REFUNDED, "refunded before delivery")
            elif exc.error == "DeliveryDeadlinePassed":
                self._end(rec.licence_id, Phase.EXPIRED, "the delivery deadline passed")
            else:
                self._end(rec.licence_id, Phase.FAILED, f"deliverKey refused: {exc}")
            return
        self.journal.advance(rec.licence_id, Phase.DELIVERED, deliver_tx=sent.tx_hash, reason="delivered")
        self.log.info("licence.delivered", licence_id=rec.licence_id, tx_hash=sent.tx_hash, buyer=rec.buyer)

    # ---------------------------------------------------------------- helpers

    def _tx_in_flight(self) -> bool:
        """Whether this account has transactions in the mempool (maybe our deliverKey)."""
        pending = self.w3.eth.get_transaction_count(self.me, "pending")  # type: ignore[arg-type]
        latest = self.w3.eth.get_transaction_count(self.me, "latest")  # type: ignore[arg-type]
        return pending > latest

    def _end(self, licence_id: int, phase: Phase, reason: str) -> None:
        self.journal.advance(licence_id, phase, reason=reason)
        log = self.log.warning if phase is Phase.FAILED else self.log.info
        log(f"licence.{phase.value}", licence_id=licence_id, reason=reason)

    def _now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])


__all__ = ["DeliveryJournal", "DeliveryRecord", "KeyDeliverer", "Phase"]
