"""`ascendnet demo`: the whole marketplace, step by step, against a running `ascendnet dev` stack.

Prompt market, with the agent (dev account 1) as the seller so that it delivers the key:
mint an encrypted prompt, list the NFT, sell a licence to account 2, wait for the agent's key
delivery, decrypt and check the text, rate it, and sell the NFT to account 4.

Compute, with account 3 as the client: post a job whose spec runs in a real container, accept
the agent's bid, wait for the result, read the output back from the content store, finalize
after the challenge window, and withdraw what everyone is owed.

Every step prints its transaction hash and what the read-only API shows once its indexer has
reached the transaction's block. The dev keys are public anvil keys, refused on any other chain.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from eth_account.signers.local import LocalAccount
from rich.console import Console

from agent.packing import entries_from_tar
from ascendnet.apiview import DEFAULT_API_URL, ApiView, show
from ascendnet.errors import AscendNetError
from ascendnet.prompts.market import PromptMarket
from ascendnet.prompts.seller_keys import SellerKeyStore
from ascendnet.status import probe_agent
from ascendnet.storage import ContentStore, StorageConfig, open_store
from chain import manifest
from chain.anvil import dev_accounts
from chain.contracts import Protocol
from chain.errors import ContractReverted
from chain.rpc import connect, is_local_dev_chain
from chain.states import JOB_STATES
from chain.tx import SentTx, TxSender

console = Console(soft_wrap=True, highlight=False)
NATIVE = "0x0000000000000000000000000000000000000000"
ETHER = 10**18
T = TypeVar("T")

SELLER, BUYER, CLIENT, COLLECTOR = 1, 2, 3, 4
PROMPT_TEXT = (
    "You are a haiku master. Write one haiku about {{topic}}: 5-7-5 syllables, one image from "
    "nature, no rhyme, and end on a turn that surprises."
)
DRAFT: dict[str, Any] = {
    "title": "Haiku master",
    "description": "Writes one surprising haiku about any topic.",
    "target_models": ["gpt-4o", "llama-3.1-70b-instruct"],
    "template_variables": [{"name": "topic", "description": "What the haiku is about."}],
    "licence": {"kind": "personal", "terms": "Personal use only. Do not resell the prompt."},
    "tags": ["poetry", "haiku", "demo"],
    "language": "en",
}
JOB_SCRIPT = (
    "cd /inputs && wc -w poem.txt > /outputs/word-count.txt && "
    "tr a-z A-Z < poem.txt > /outputs/shout.txt && echo done > /outputs/status.txt"
)


class DemoFailed(AscendNetError):
    """A demo step did not reach the state it waits for."""


@dataclass
class Demo:
    protocol: Protocol
    store: ContentStore
    api: ApiView | None
    data_dir: Path
    timeout: float
    step_no: int = 0

    # ---------------------------------------------------------------- plumbing

    def sender(self, index: int) -> TxSender:
        account: LocalAccount = dev_accounts(index + 1)[index]
        return TxSender(self.protocol.w3, account)

    def step(self, title: str) -> None:
        self.step_no += 1
        console.print(f"\n[bold cyan]{self.step_no}. {title}[/]")

    def tx(self, what: str, sent: SentTx) -> SentTx:
        console.print(f"  {what}: tx [bold]{sent.tx_hash}[/] (block {sent.block_number})")
        return sent

    def api_shows(self, path: str, block: int | None, *fields: str, **params: Any) -> dict[str, Any] | None:
        return show(console, self.api, path, block=block, fields=fields, **params)

    def wait(self, what: str, probe: Callable[[], T | None]) -> T:
        console.print(f"  waiting for {what} ...")
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            value = probe()
            if value:
                return value
            time.sleep(0.25)
        raise DemoFailed(f"timed out after {self.timeout:.0f} s waiting for {what}")

    def require_agent(self, *, sandbox: bool) -> str:
        """The dev agent's address; DemoFailed, saying what to do, when it is not running."""
        agent = probe_agent(self.data_dir / "agent-status.json")
        if not agent.get("running"):
            raise DemoFailed(
                f"the dev stack runs no agent ({agent.get('why')}); `ascendnet dev` runs one when "
                "dockerd is reachable: start dockerd, then restart `ascendnet dev`"
            )
        if sandbox and not agent.get("sandbox"):
            raise DemoFailed("the dev agent has no Docker sandbox; start dockerd and restart `ascendnet dev`")
        return str(agent["provider"])

    # ---------------------------------------------------------------- prompt market

    def prompts(self) -> tuple[int, int]:
        """Returns (token id, licence id)."""
        seller_account = dev_accounts(SELLER + 1)[SELLER]
        keys = SellerKeyStore(self.data_dir / "seller-keys.json", seller_account)
        seller = PromptMarket(self.protocol, self.sender(SELLER), self.store, keys)
        buyer = PromptMarket(self.protocol, self.sender(BUYER), self.store)

        self.step(f"Mint an encrypted prompt as the agent's account {seller.me}")
        minted = seller.mint(PROMPT_TEXT.encode(), DRAFT, royalty_bps=500, licence_price=ETHER // 100)
        console.print(f"  minted prompt {minted.token_id}: metadata {minted.metadata_cid}")
        console.print(f"  ciphertext {minted.ciphertext_cid}, content hash {minted.content_hash}")
        console.print(
            f"  mint tx [bold]{minted.mint_tx}[/]; licences offered at 0.01 ETH in tx {minted.terms_tx}"
        )
        block = self._block_of(minted.terms_tx or minted.mint_tx)
        self.api_shows(
            f"/prompts/{minted.token_id}",
            block,
            "token_id",
            "creator",
            "owner",
            "licence_terms",
            "listed",
            "metadata.status",
            "metadata.title",
        )
        token = minted.token_id

        self.step("List the prompt NFT for sale at 0.05 ETH")
        sent = self.tx("listed", seller.list_for_sale(token, ETHER // 20))
        self.api_shows(f"/prompts/{token}", sent.block_number, "listed", "listing")

        self.step(f"Buy a licence as account {buyer.me}")
        bought = buyer.buy_licence(token, expected_price=ETHER // 100)
        console.print(
            f"  licence {bought.licence_id} bought: tx [bold]{bought.tx_hash}[/]; escrow held until delivery"
        )
        self.api_shows(
            "/licences",
            self._block_of(bought.tx_hash),
            "license_id",
            "state",
            "price",
            buyer=buyer.me,
            token_id=token,
        )

        self.step("The seller's agent delivers the content key, encrypted to the buyer")
        lic = self.wait(
            "the agent's key delivery",
            lambda: x if (x := buyer.licence(bought.licence_id)).state == "Delivered" else None,
        )
        decrypted = buyer.decrypt(bought.licence_id)
        console.print(f"  key delivered in tx [bold]{decrypted.delivery_tx}[/]; licence is {lic.state}")
        self.api_shows(
            "/licences", self._block_of(decrypted.delivery_tx),
            "license_id", "state", "seller_proceeds", "fee", buyer=buyer.me, token_id=token,
        )  # fmt: skip

        self.step("Decrypt the licence and check it against the on-chain content hash")
        if decrypted.plaintext != PROMPT_TEXT.encode():
            raise DemoFailed(f"licence {bought.licence_id} decrypted to something else than the minted text")
        console.print(f"  decrypted {len(decrypted.plaintext)} bytes, identical to the minted text:")
        console.print(f"  [italic]{decrypted.plaintext.decode()}[/]")

        self.step("Rate the licence 5/5")
        sent = self.tx("rated", buyer.rate(bought.licence_id, 5))
        self.api_shows("/ratings", sent.block_number, "license_id", "score", token_id=token)
        self.api_shows(f"/prompts/{token}", sent.block_number, "rating", "licences_sold")

        self.step(f"Sell the NFT to account {dev_accounts(COLLECTOR + 1)[COLLECTOR].address}")
        collector = PromptMarket(self.protocol, self.sender(COLLECTOR), self.store)
        sent = self.tx("bought", collector.buy(token, max_price=ETHER // 20))
        self.api_shows(f"/prompts/{token}", sent.block_number, "owner", "listed", "sales_count")
        self.api_shows("/sales", sent.block_number, "token_id", "price", "royalty", "fee", token_id=token)
        return token, bought.licence_id

    # ---------------------------------------------------------------- compute

    def compute(self) -> int:
        provider = self.require_agent(sandbox=True)
        client = self.sender(CLIENT)
        c = self.protocol.compute

        self.step(f"Post a compute job as account {client.address}")
        image = _busybox_image()
        poem = b"an old silent pond\na frog jumps into the pond\nsplash silence again\n"
        spec = {
            "schema_version": "ascendnet.job/v1",
            "image": image,
            "command": ["sh", "-c", JOB_SCRIPT],
            "inputs": [{"cid": self.store.put(poem), "path": "poem.txt"}],
            "resources": {"cpus": 0.5, "memory_mb": 64, "disk_mb": 16},
            "timeout_seconds": 60,
        }
        raw = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
        spec_cid = self.store.put(raw)
        console.print(f"  spec {spec_cid}: busybox image {image[:19]}..., counts the words of an input")
        escrow = ETHER // 100
        now = int(self.protocol.w3.eth.get_block("latest")["timestamp"])
        sent = self.tx(
            "posted with 0.01 ETH in escrow",
            client.transact(
                c.functions.postJob(NATIVE, escrow, hashlib.sha256(raw).digest(), spec_cid, now + 300, 120),
                value=escrow,
            ),
        )
        job_id = int(c.events.JobPosted().process_receipt(sent.receipt)[0]["args"]["jobId"])
        console.print(f"  job {job_id}")
        self.api_shows(f"/jobs/{job_id}", sent.block_number, "state", "max_amount", "bid_count")

        self.step(f"Accept the agent's bid ({provider})")
        price = self.wait("the agent's bid", lambda: int(c.functions.bidOf(job_id, provider).call()))
        console.print(f"  the agent bid {price} wei")
        sent = self.tx("accepted", client.transact(c.functions.acceptBid(job_id, provider, price)))
        self.api_shows(f"/jobs/{job_id}", sent.block_number, "state", "provider", "price")

        self.step("The agent runs the job in its sandbox and posts the result hash")
        self.wait("the result", lambda: JOB_STATES[c.functions.getJob(job_id).call()[3]] != "Assigned")
        state = JOB_STATES[c.functions.getJob(job_id).call()[3]]
        if state not in ("Submitted", "Completed"):
            raise DemoFailed(f"job {job_id} ended {state} instead of getting a result")
        (submitted,) = c.events.ResultSubmitted().get_logs(
            from_block=self.protocol.deployment.deploy_block, argument_filters={"jobId": job_id}
        )
        result_hash = "0x" + bytes(submitted["args"]["resultHash"]).hex()
        result_cid = str(submitted["args"]["resultCid"])
        console.print(f"  result posted in tx [bold]0x{bytes(submitted['transactionHash']).hex()}[/]")
        self.api_shows(f"/jobs/{job_id}", submitted["blockNumber"], "state", "result")
        tar = self.store.get(result_cid)
        if "0x" + hashlib.sha256(tar).hexdigest() != result_hash:
            raise DemoFailed(f"job {job_id}: the output at {result_cid} does not hash to the on-chain result")
        for entry in entries_from_tar([tar]):
            if entry.data is not None:
                text = entry.data.decode(errors="replace").strip().replace("\n", " / ")
                console.print(f"  output {entry.path}: {text}")

        self.step("Finalize after the challenge window")
        challenge_end = int(c.functions.getJob(job_id).call()[8])
        w3 = self.protocol.w3
        self.wait(
            "the challenge window to close",
            lambda: int(w3.eth.get_block("latest")["timestamp"]) > challenge_end,
        )
        block: int | None = None
        if JOB_STATES[c.functions.getJob(job_id).call()[3]] == "Submitted":
            try:
                block = self.tx(
                    "finalized by the client", client.transact(c.functions.finalize(job_id))
                ).block_number
            except ContractReverted as exc:
                # The agent finalizes its own jobs too: whoever is first wins, the other is refused.
                console.print(f"  the client's finalize was refused ({exc.error}); the agent was first")
        if block is None:
            done = self.wait(
                "the agent's finalize",
                lambda: c.events.JobCompleted().get_logs(
                    from_block=self.protocol.deployment.deploy_block, argument_filters={"jobId": job_id}
                ),
            )
            block = int(done[0]["blockNumber"])
            console.print(
                f"  finalized by the agent in tx [bold]0x{bytes(done[0]['transactionHash']).hex()}[/]"
            )
        self.api_shows(f"/jobs/{job_id}", block, "state", "price", "settlement")
        return job_id

    def withdraw_all(self) -> None:
        self.step("Withdraw what the contracts owe (seller, client, treasury)")
        treasury = str(self.protocol.compute.functions.treasury().call())
        for who in (SELLER, CLIENT, treasury):
            sender = self.sender(who) if isinstance(who, int) else self._treasury_sender(treasury)
            if sender is None:
                console.print(f"  the treasury {treasury} is not a dev account; skipped")
                continue
            for name, contract in (
                ("ComputeRental", self.protocol.compute),
                ("PromptMarketplace", self.protocol.market),
            ):
                owed = int(contract.functions.owed(sender.address, NATIVE).call())
                if not owed:
                    continue
                try:
                    sent = sender.transact(contract.functions.withdraw(NATIVE))
                except ContractReverted as exc:
                    if exc.error != "NothingOwed":
                        raise
                    # The agent withdraws its own earnings too; it was first.
                    console.print(f"  {sender.address}: {name} already paid out (by the agent)")
                    continue
                self.tx(f"{sender.address} withdrew {owed} wei from {name}", sent)
            block = int(self.protocol.w3.eth.block_number)
            self.api_shows(f"/accounts/{sender.address}", block, "owed_by_asset")

    # ---------------------------------------------------------------- helpers

    def _block_of(self, tx_hash: str) -> int:
        return int(self.protocol.w3.eth.get_transaction_receipt(tx_hash)["blockNumber"])  # type: ignore[arg-type]

    def _treasury_sender(self, treasury: str) -> TxSender | None:
        for i, account in enumerate(dev_accounts(10)):
            if account.address.lower() == treasury.lower():
                return self.sender(i)
        return None


def _busybox_image() -> str:
    """The ID of the busybox image the agent's sandbox uses (built offline from busybox-static)."""
    import docker

    from agent.images import ensure_busybox_image

    return str(ensure_busybox_image(docker.from_env(timeout=60)).id)


def demo_command(
    rpc_url: Annotated[str, typer.Option("--rpc-url", help="The dev chain.")] = "http://127.0.0.1:8545",
    api_url: Annotated[str, typer.Option("--api-url", help="The dev API.")] = DEFAULT_API_URL,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="`ascendnet dev`'s data dir.")] = Path(
        ".data/dev"
    ),
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each asynchronous step.")] = 120.0,
    compute: Annotated[bool, typer.Option(help="Run the compute part (needs the dev agent).")] = True,
) -> None:
    """Walk through the marketplace against a running `ascendnet dev`: sell a prompt licence
    with key delivery, then run a compute job in a real container, finalize and withdraw."""
    w3 = connect(rpc_url)
    if not is_local_dev_chain(w3, rpc_url):
        raise typer.BadParameter(f"{rpc_url} is not a local anvil chain; the demo signs with public dev keys")
    manifest_path = data_dir / "deployments" / f"{w3.eth.chain_id}.json"
    if not manifest_path.exists():
        raise typer.BadParameter(
            f"no deployment at {manifest_path}: is `ascendnet dev --data-dir {data_dir}` running?"
        )
    protocol = Protocol.load(w3, manifest.read(manifest_path))
    demo = Demo(
        protocol, open_store(StorageConfig(), data_dir), ApiView(api_url, timeout=timeout), data_dir, timeout
    )
    console.print(f"AscendNet demo on chain {w3.eth.chain_id} ({rpc_url}), API {api_url}")
    demo.require_agent(sandbox=compute)  # it delivers the licence key and runs the job
    token, licence = demo.prompts()
    job = demo.compute() if compute else None
    demo.withdraw_all()
    summary = {"prompt": token, "licence": licence, "job": job}
    console.print("\n[bold green]demo complete[/]: " + json.dumps(summary))
