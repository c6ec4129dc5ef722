"""Binds the deployed contracts to Web3 contract objects."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3
from web3.contract import Contract

from chain import artifacts
from chain.manifest import Deployment

_NAMES: dict[str, str] = {}


def name_of_address(address: str) -> str | None:
    """The contract name bound at `address` in this process, if any (for error messages)."""
    return _NAMES.get(Web3.to_checksum_address(address))


def bind(w3: Web3, name: str, address: str) -> Contract:
    checksum = Web3.to_checksum_address(address)
    _NAMES[checksum] = name
    return w3.eth.contract(address=checksum, abi=artifacts.load(name).abi)


@dataclass(frozen=True)
class Protocol:
    """The AscendNet contracts of one deployment."""

    w3: Web3
    deployment: Deployment
    compute: Contract
    market: Contract
    token: Contract | None

    @classmethod
    def load(cls, w3: Web3, deployment: Deployment) -> Protocol:
        token = deployment.contracts.get("TestToken")
        return cls(
            w3=w3,
            deployment=deployment,
            compute=bind(w3, "ComputeRental", deployment.address("ComputeRental")),
            market=bind(w3, "PromptMarketplace", deployment.address("PromptMarketplace")),
            token=bind(w3, "TestToken", token) if token else None,
        )

    def has_code(self) -> bool:
        """Whether both protocol contracts exist on the connected chain."""
        return all(len(self.w3.eth.get_code(c.address)) > 0 for c in (self.compute, self.market))
