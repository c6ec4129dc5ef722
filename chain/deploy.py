"""Deploys the AscendNet contracts from the shipped artifacts and writes the manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3

from chain import artifacts, manifest
from chain.contracts import bind
from chain.errors import ManifestExists
from chain.manifest import Deployment
from chain.tx import TxSender

ETHER = 10**18
HOUR = 3600
DAY = 24 * HOUR


class ProtocolParams(BaseModel):
    """Constructor parameters of both contracts. Field names follow ComputeRental.Params."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_stake: int = Field(ETHER // 10, ge=0, description="wei of ETH a provider must stake")
    unbonding_delay: int = Field(7 * DAY, ge=0)
    slash_bps: int = Field(1_000, ge=0, le=10_000, description="share of stake slashed on failure")
    challenge_window: int = Field(DAY, gt=0)
    arbiter_timeout: int = Field(7 * DAY, gt=0)
    accept_window: int = Field(DAY, ge=0)
    min_execution_timeout: int = Field(60, gt=0)
    max_execution_timeout: int = Field(7 * DAY, gt=0)
    max_bid_window: int = Field(7 * DAY, gt=0)
    delivery_window: int = Field(DAY, gt=0, description="PromptMarketplace licence key delivery")

    @classmethod
    def local(cls) -> ProtocolParams:
        """Short windows for a local dev chain, so a demo finishes in seconds."""
        return cls(
            min_stake=ETHER,
            unbonding_delay=60,
            challenge_window=5,
            arbiter_timeout=300,
            accept_window=300,
            min_execution_timeout=10,
            max_execution_timeout=DAY,
            max_bid_window=DAY,
            delivery_window=600,
        )

    def compute_tuple(self) -> tuple[int, ...]:
        return (
            self.min_stake,
            self.unbonding_delay,
            self.slash_bps,
            self.challenge_window,
            self.arbiter_timeout,
            self.accept_window,
            self.min_execution_timeout,
            self.max_execution_timeout,
            self.max_bid_window,
        )


@dataclass(frozen=True)
class DeployOptions:
    admin: str | None = None
    treasury: str | None = None
    params: ProtocolParams = ProtocolParams()
    #: Also deploy TestToken and allow it as a payment asset (local dev chains only).
    with_test_token: bool = False


def deploy(w3: Web3, sender: TxSender, options: DeployOptions) -> Deployment:
    """Deploy ComputeRental and PromptMarketplace (and TestToken when asked)."""
    admin = Web3.to_checksum_address(options.admin or sender.address)
    treasury = Web3.to_checksum_address(options.treasury or admin)
    p = options.params
    sent: dict[str, Any] = {}

    def _deploy(name: str, *args: Any) -> str:
        art = artifacts.load(name)
        factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        tx = sender.deploy(factory.constructor(*args), name=name)
        sent[name] = tx
        assert tx.contract_address is not None
        return tx.contract_address

    addresses = {
        "ComputeRental": _deploy("ComputeRental", admin, treasury, p.compute_tuple()),
        "PromptMarketplace": _deploy("PromptMarketplace", admin, treasury, p.delivery_window),
    }
    if options.with_test_token:
        addresses["TestToken"] = _deploy("TestToken")
        if admin == sender.address:
            for name in artifacts.PROTOCOL_CONTRACTS:
                contract = bind(w3, name, addresses[name])
                sender.transact(contract.functions.setAssetAllowed(addresses["TestToken"], True))

    return Deployment(
        chain_id=w3.eth.chain_id,
        contracts=addresses,
        deploy_block=min(tx.block_number for tx in sent.values()),
        abi_hash=artifacts.protocol_abi_hash(),
        deployer=sender.address,
        deployed_at=manifest.now_iso(),
        tx_hashes={name: tx.tx_hash for name, tx in sent.items()},
        params={**p.model_dump(), "admin": admin, "treasury": treasury},
    )


def deploy_and_record(
    w3: Web3, sender: TxSender, options: DeployOptions, path: Path | None, *, overwrite: bool = False
) -> tuple[Deployment, Path]:
    """Deploy and write the manifest; refuses before deploying if one exists already."""
    target = path or manifest.default_path(w3.eth.chain_id)
    if target.exists() and not overwrite:
        raise ManifestExists(str(target), w3.eth.chain_id)
    deployment = deploy(w3, sender, options)
    manifest.write(deployment, target, overwrite=True)
    return deployment, target
