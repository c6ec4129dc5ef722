"""Follows ComputeRental's job events from the chain with the agent's own cursor.

The cursor (in the journal) only ever advances to `head - confirmations`, so a block that a reorg
can still replace is read again on the next poll. Events in that unconfirmed window can therefore
be delivered more than once, and after a reorg an event can vanish; the agent's handlers are
idempotent (the journal plus an on-chain check before every transaction), so both are harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol as TypingProtocol

from eth_utils.crypto import keccak
from web3 import Web3

from chain import artifacts
from chain.codegen import event_signature
from chain.contracts import Protocol
from chain.decoder import LogDecoder
from chain.provenance import ChainEvent

#: The ComputeRental events the agent acts on.
WATCHED = (
    "JobPosted",
    "JobAssigned",
    "ResultSubmitted",
    "JobCompleted",
    "JobCancelled",
    "JobExpired",
    "JobFailed",
    "JobDisputed",
    "DisputeResolved",
    "DisputeTimedOut",
)


@dataclass(frozen=True)
class Poll:
    head: int
    events: list[ChainEvent]
    #: The block (number, hash) the cursor may move to once these events are handled.
    confirmed: tuple[int, str] | None = None


class CursorStore(TypingProtocol):
    """Where a watcher keeps its confirmed cursor (the agent's journal, the delivery journal)."""

    def cursor(self) -> tuple[int, str] | None: ...

    def set_cursor(self, block: int, block_hash: str) -> None: ...


class ChainWatcher:
    """Follows `watched` events of one protocol contract (by default ComputeRental's job events)."""

    def __init__(
        self,
        w3: Web3,
        protocol: Protocol,
        journal: CursorStore,
        *,
        start_block: int,
        confirmations: int = 2,
        max_span: int = 2_000,
        contract: str = "ComputeRental",
        watched: Sequence[str] = WATCHED,
    ) -> None:
        self.w3 = w3
        self.protocol = protocol
        self.journal = journal
        self.start_block = start_block
        self.confirmations = confirmations
        self.max_span = max_span
        d = protocol.deployment
        self._address = Web3.to_checksum_address(d.address(contract))
        self._decoder = LogDecoder({contract: self._address}, d.chain_id)
        abi = {e["name"]: e for e in artifacts.load(contract).abi if e.get("type") == "event"}
        self._topics = ["0x" + keccak(text=event_signature(abi[name])).hex() for name in watched]

    def poll(self) -> Poll:
        """Events from the block after the confirmed cursor up to the head (at most max_span
        blocks per call, so a long backlog is worked through in bounded steps)."""
        head = int(self.w3.eth.block_number)
        from_block = self._resume_from()
        if from_block > head:
            return Poll(head, [])
        to_block = min(head, from_block + self.max_span - 1)
        logs = self.w3.eth.get_logs(
            {
                "fromBlock": from_block,
                "toBlock": to_block,
                "address": self._address,
                "topics": [self._topics],
            }
        )
        events = self._decoder.decode_all(logs)
        confirmed_number = min(to_block, head - self.confirmations)
        confirmed = None
        if confirmed_number >= from_block:
            block = self.w3.eth.get_block(confirmed_number)
            confirmed = (confirmed_number, "0x" + bytes(block["hash"]).hex())
        return Poll(head, sorted(events, key=lambda e: (e.block_number, e.log_index)), confirmed)

    def commit(self, poll: Poll) -> None:
        """Move the cursor once a poll's events are handled: a crash before this re-reads them."""
        if poll.confirmed is not None:
            self.journal.set_cursor(*poll.confirmed)

    def _resume_from(self) -> int:
        cursor = self.journal.cursor()
        if cursor is None:
            return self.start_block
        number, block_hash = cursor
        try:
            canonical = "0x" + bytes(self.w3.eth.get_block(number)["hash"]).hex()
        except Exception:  # the node does not have it (a rollback deeper than confirmations)
            canonical = None
        if canonical == block_hash:
            return number + 1
        # NOTE: a reorg deeper than our confirmations replaced the cursor block. Step back a
        # whole window and re-read: handlers are idempotent, so re-seeing events is safe.
        return max(self.start_block, number - max(self.confirmations, 1) * 4)
