"""`agent register`: the capability document is published to the content store and the
provider is registered with stake (then only its metadata is updated)."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account

from agent.capability import CapabilityDocument
from agent.service import register
from agent.settings import AgentSettings
from ascendnet.storage import LocalContentStore
from chain import manifest
from chain.anvil import Anvil
from chain.contracts import Protocol
from chain.tx import TxSender
from tests.chain.flows import PARAMS


def test_register_publishes_capabilities_and_stakes(
    anvil: Anvil, protocol: Protocol, senders: list[TxSender], tmp_path: Path
) -> None:
    operator = senders[8]
    keystore = tmp_path / "operator.json"
    keystore.write_text(json.dumps(Account.encrypt(operator.account.key, "operator password")))
    password = tmp_path / "pw"
    password.write_text("operator password")
    settings = AgentSettings(
        rpc_url=anvil.rpc_url,
        manifest=manifest.write(protocol.deployment, tmp_path / "m.json"),
        keystore=keystore,
        password_file=password,
        data_dir=tmp_path / "agent",
        min_price_wei=123,
    )
    c = protocol.compute
    assert not c.functions.isActiveProvider(operator.address).call()

    cid, sent = register(settings)
    stake, _unbonding, _active, registered, metadata_cid = c.functions.getProvider(operator.address).call()
    assert registered and metadata_cid == cid and stake == PARAMS.min_stake
    doc = CapabilityDocument.model_validate_json(LocalContentStore(tmp_path / "agent" / "content").get(cid))
    assert doc.cpus >= 1 and doc.price.min_job_price == 123
    assert doc.gpu_count == len(doc.gpus)  # 0 here: this machine has no GPU

    again, _ = register(settings)  # already registered: only the metadata is updated
    assert again == cid
    assert c.functions.getProvider(operator.address).call()[0] == stake
    logs = c.events.ProviderRegistered().get_logs(
        from_block=0, argument_filters={"provider": operator.address}
    )
    assert len(logs) == 1
    assert len(c.events.ProviderMetadataUpdated().get_logs(from_block=0)) >= 1
