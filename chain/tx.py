"""Transaction sending: nonce management, EIP-1559 fees, receipt wait, and reverts decoded
into ContractReverted naming the custom error and its arguments."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.types import TxReceipt

from chain.errors import ChainError
from chain.revert import decode_revert

DEFAULT_TIP_WEI = 1_000_000_000  # 1 gwei, when the node has no eth_maxPriorityFeePerGas


class TransactionTimeout(ChainError, TimeoutError):
    def __init__(self, tx_hash: str, timeout: float) -> None:
        self.tx_hash = tx_hash
        self.timeout = timeout
        super().__init__(
            f"Transaction {tx_hash} was sent but not mined within {timeout:.0f}s. It may still be "
            "mined: check it before sending again."
        )


@dataclass(frozen=True)
class SentTx:
    tx_hash: str
    receipt: TxReceipt

    @property
    def block_number(self) -> int:
        return int(self.receipt["blockNumber"])

    @property
    def contract_address(self) -> str | None:
        addr = self.receipt.get("contractAddress")
        return str(addr) if addr else None


class TxSender:
    """Signs and sends transactions from one local account.

    Before sending, every call is simulated with eth_estimateGas, so a call that would revert
    raises ContractReverted without spending gas.
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        receipt_timeout: float = 120.0,
        poll_interval: float = 0.05,
        gas_margin: float = 1.2,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.gas_margin = gas_margin
        self._lock = threading.Lock()
        self._next_nonce: int | None = None

    @property
    def address(self) -> str:
        return str(self.account.address)

    def transact(self, fn: ContractFunction, *, value: int = 0) -> SentTx:
        contract = _contract_name(fn)
        base = {"from": self.address, "value": value}
        try:
            gas = fn.estimate_gas(base)  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise decode_revert(_revert_data(exc), contract=contract, function=fn.fn_name) from exc
        tx = fn.build_transaction({**base, **self._fees(), "gas": int(gas * self.gas_margin)})  # type: ignore[arg-type]
        return self._send(dict(tx), contract=contract, function=fn.fn_name)

    def deploy(self, ctor: ContractConstructor, *, name: str) -> SentTx:
        base = {"from": self.address}
        try:
            gas = ctor.estimate_gas(base)
        except ContractLogicError as exc:
            raise decode_revert(_revert_data(exc), contract=name, function="constructor") from exc
        tx = ctor.build_transaction({**base, **self._fees(), "gas": int(gas * self.gas_margin)})
        return self._send(dict(tx), contract=name, function="constructor")

    def send_value(self, to: str, value: int) -> SentTx:
        tx = {"from": self.address, "to": Web3.to_checksum_address(to), "value": value, "gas": 21_000}
        return self._send({**tx, **self._fees()}, contract=None, function="transfer")

    # ---------------------------------------------------------------- internals

    def _fees(self) -> dict[str, int]:
        block = self.w3.eth.get_block("latest")
        base_fee = int(block.get("baseFeePerGas", 0) or 0)
        try:
            tip = int(self.w3.eth.max_priority_fee)
        except Exception:
            tip = DEFAULT_TIP_WEI
        return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base_fee + tip}

    def _send(self, tx: dict[str, Any], *, contract: str | None, function: str) -> SentTx:
        with self._lock:
            pending = self.w3.eth.get_transaction_count(self.account.address, "pending")
            nonce = pending if self._next_nonce is None else max(pending, self._next_nonce)
            tx["nonce"] = nonce
            tx["chainId"] = self.w3.eth.chain_id
            tx.pop("from", None)
            signed = self.account.sign_transaction(tx)
            tx_hash = "0x" + self.w3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")
            self._next_nonce = nonce + 1
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash,  # type: ignore[arg-type]
                timeout=self.receipt_timeout,
                poll_latency=self.poll_interval,
            )
        except TimeExhausted as exc:
            raise TransactionTimeout(tx_hash, self.receipt_timeout) from exc
        if receipt["status"] != 1:
            raise self._revert_of(tx, receipt, tx_hash, contract, function)
        return SentTx(tx_hash, receipt)

    def _revert_of(
        self, tx: dict[str, Any], receipt: TxReceipt, tx_hash: str, contract: str | None, function: str
    ) -> ChainError:
        """Recovers the revert data of a mined, failed transaction: from the node's call tracer
        when it has one (exact), else by replaying it as a call on the block's final state."""
        data = self._traced_revert_data(tx_hash)
        if data is None:
            call: dict[str, Any] = {k: tx[k] for k in ("to", "data", "value") if k in tx}
            call["from"] = self.address
            try:
                self.w3.eth.call(call, block_identifier=int(receipt["blockNumber"]))  # type: ignore[arg-type]
            except ContractLogicError as exc:
                data = _revert_data(exc)
            except Exception:  # the replay itself failed: report an unknown revert
                data = None
        return decode_revert(data, contract=contract, function=function, tx_hash=tx_hash)

    def _traced_revert_data(self, tx_hash: str) -> str | None:
        try:
            resp = self.w3.provider.make_request(
                "debug_traceTransaction",  # type: ignore[arg-type]
                [tx_hash, {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}}],
            )
        except Exception:
            return None
        result = resp.get("result") if isinstance(resp, dict) else None
        output = result.get("output") if isinstance(result, dict) else None
        return output if isinstance(output, str) and len(output) >= 10 else None


def _revert_data(exc: ContractLogicError) -> str | None:
    return exc.data if isinstance(exc.data, str) else None


def _contract_name(fn: ContractFunction) -> str | None:
    from chain.contracts import name_of_address

    return name_of_address(fn.address) if fn.address else None
