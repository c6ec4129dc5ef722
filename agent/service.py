"""Builds a running agent from its settings: the one place that wires chain, journal, content
store, resource monitor, sandbox and licence delivery together (`ascendnet agent run|register`,
`ascendnet dev`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.bidding import PricePolicy
from agent.capability import CapabilityDocument
from agent.capability import PricePolicy as QuotedPrices
from agent.delivery import DeliveryJournal, KeyDeliverer
from agent.journal import Journal
from agent.monitor import ResourceMonitor, Resources
from agent.sandbox import Sandbox
from agent.settings import AgentSettings
from agent.worker import Agent, AgentConfig
from ascendnet.log import get_logger
from ascendnet.prompts.seller_keys import SellerKeyStore
from ascendnet.storage import ContentStore, open_store
from chain import manifest
from chain.contracts import Protocol
from chain.rpc import connect
from chain.signer import resolve_signer
from chain.tx import SentTx, TxSender

log = get_logger("agent.service")


@dataclass
class Wiring:
    protocol: Protocol
    sender: TxSender
    store: ContentStore
    resources: Resources


def wire(settings: AgentSettings) -> Wiring:
    """Connect to the chain, load the deployment, unlock the key, open the content store."""
    w3 = connect(settings.rpc_url)
    path = settings.manifest or manifest.default_path(w3.eth.chain_id)
    deployment = manifest.read(Path(path))
    protocol = Protocol.load(w3, deployment)
    signer = resolve_signer(w3, settings.rpc_url, settings.keystore, settings.password_file)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.storage, settings.data_dir)
    resources = ResourceMonitor(settings.data_dir).snapshot()
    return Wiring(protocol, TxSender(w3, signer), store, resources)


def open_sandbox(settings: AgentSettings, resources: Resources, owner: str) -> Sandbox | None:
    """The Docker sandbox, or None (with a clear log line) when dockerd is not reachable."""
    if not resources.docker.reachable:
        log.warning("agent.no_docker", reason=resources.docker.reason, hint="jobs cannot run without dockerd")
        return None
    import docker

    from agent.images import ensure_busybox_image

    client = docker.from_env(timeout=60)
    helper = settings.helper_image or ensure_busybox_image(client).id
    return Sandbox(
        client,
        helper_image=helper,
        work_dir=settings.data_dir / "sandbox",
        host_gpus=resources.gpu.count,
        owner=owner,
    )


def build_agent(settings: AgentSettings) -> Agent:
    w = wire(settings)
    sandbox = open_sandbox(settings, w.resources, owner=f"agent-{w.sender.address[2:12].lower()}")
    config = AgentConfig(
        policy=settings.policy,
        prices=PricePolicy.from_names(settings.min_price_wei, settings.bid_share_bps, settings.assets),
        max_concurrent_jobs=settings.max_concurrent_jobs,
        max_open_bids=settings.max_open_bids,
        confirmations=settings.confirmations,
        poll_interval=settings.poll_interval,
        withdraw_threshold=settings.withdraw_threshold_wei,
        host_gpus=w.resources.gpu.count if sandbox is not None else 0,
    )
    deliverer = open_deliverer(settings, w)
    return Agent(
        protocol=w.protocol,
        sender=w.sender,
        journal=Journal(settings.journal_path),
        store=w.store,
        sandbox=sandbox,
        config=config,
        work_dir=settings.data_dir,
        services=[deliverer] if deliverer is not None else [],
        status_path=settings.status_path,
    )


def open_deliverer(settings: AgentSettings, w: Wiring) -> KeyDeliverer | None:
    """The licence key deliverer, when this operator has a seller key store (`prompt mint`)."""
    if not settings.seller_keys.exists():
        log.info("agent.no_seller_keys", path=str(settings.seller_keys), hint="licence delivery is off")
        return None
    keys = SellerKeyStore(settings.seller_keys, w.sender.account)
    log.info("agent.delivering_licences", path=str(settings.seller_keys), prompts=len(keys.entries()))
    return KeyDeliverer(
        protocol=w.protocol,
        sender=w.sender,
        keys=keys,
        journal=DeliveryJournal(settings.delivery_journal_path),
        confirmations=settings.confirmations,
    )


def register(settings: AgentSettings) -> tuple[str, SentTx]:
    """Publish the capability document and register (or update the metadata of) the provider."""
    w = wire(settings)
    doc = CapabilityDocument.from_resources(
        w.resources,
        price=QuotedPrices(min_job_price=settings.min_price_wei),
        endpoint=settings.endpoint,
    )
    cid = doc.publish(w.store)
    compute = w.protocol.compute
    if compute.functions.getProvider(w.sender.address).call()[3]:  # registered
        sent = w.sender.transact(compute.functions.updateProviderMetadata(cid))
    else:
        stake = settings.stake_wei or int(compute.functions.params().call()[0])
        sent = w.sender.transact(compute.functions.registerProvider(cid), value=stake)
    log.info("agent.registered", provider=w.sender.address, metadata_cid=cid, tx_hash=sent.tx_hash)
    return cid, sent
