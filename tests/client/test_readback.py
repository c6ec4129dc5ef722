"""The write-side client commands read their result back through a REAL indexer and API.

One deployment on the session's anvil; `ascendnet indexer run` and `ascendnet api serve` follow
it as subprocesses on free loopback ports, over one SQLite file. Every command runs as a user
runs it (`python -m ascendnet.cli ...` in a subprocess), signing as a funded dev account
(`--dev-account N`), and the tests read what it printed: the transaction, the on-chain state and
the `API ...` line, which must show the new state. A call that would revert is refused naming
the contract's custom error, with nothing sent.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_typing import ChecksumAddress
from web3 import Web3

from chain.anvil import Anvil, dev_accounts
from chain.contracts import Protocol
from chain.tx import TxSender
from tests.chain.flows import NATIVE, PARAMS, advance
from tests.client.test_job_cli import SPEC
from tests.conftest import free_port, stop_process
from tests.indexer.harness import REPO, cli_command, cli_env, wait_for, write_manifest

pytestmark = pytest.mark.anvil

SELLER, BUYER, STRANGER, CLIENT = 5, 6, 7, 8


@dataclass
class Stack:
    anvil: Anvil
    protocol: Protocol
    manifest: Path
    root: Path
    api_url: str

    def run(self, who: int, *args: str, api_url: str | None = None) -> subprocess.CompletedProcess[str]:
        """`ascendnet ARGS --dev-account WHO` against this stack (who=-1: no --dev-account)."""
        env = cli_env(
            ASCENDNET_RPC_URL=self.anvil.rpc_url,
            ASCENDNET_MANIFEST=str(self.manifest),
            ASCENDNET_DATA_DIR=str(self.root / "data"),
            ASCENDNET_SELLER_KEYS=str(self.root / f"seller-keys-{who}.json"),
            ASCENDNET_API_URL=api_url or self.api_url,
            COLUMNS="400",
        )
        argv = [*args, "--dev-account", str(who)] if who >= 0 else list(args)
        return subprocess.run(
            cli_command(*argv), capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def ok(self, who: int, *args: str, api_url: str | None = None) -> str:
        out = self.run(who, *args, api_url=api_url)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    @property
    def w3(self) -> Web3:
        return self.protocol.w3


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(cli_command(*args), stdout=out, stderr=out, cwd=REPO, env=cli_env())


@pytest.fixture(scope="module")
def stack(anvil: Anvil, protocol: Protocol, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("readback")
    manifest = write_manifest(protocol.deployment, root)
    db = f"sqlite:///{root / 'indexer.sqlite3'}"
    port = free_port()
    log = root / "indexer.log"
    follow = ["--rpc-url", anvil.rpc_url, "--manifest", str(manifest), "--poll-interval", "0.2"]
    indexer = _start(["indexer", "run", "--database-url", db, *follow, "--no-progress"], log)
    api = None
    try:
        # The API opens the indexer's database read-only: wait until the indexer created it.
        wait_for(lambda: "indexer_start" in log.read_text() or indexer.poll() is not None, timeout=90)
        assert indexer.poll() is None, log.read_text()
        api = _start(["api", "serve", "--port", str(port), "--database-url", db], root / "api.log")
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert api is not None and api.poll() is None, (root / "api.log").read_text()
            try:
                return httpx.get(url + "/status", timeout=2).json()["meta"]["indexed_head"] is not None
            except (httpx.TransportError, ValueError, KeyError):
                return False

        wait_for(up, timeout=90)
        yield Stack(anvil, protocol, manifest, root, url)
    finally:
        if api is not None:
            stop_process(api)
        stop_process(indexer)


def api_line(stdout: str, path: str) -> str:
    """The line the command printed for what the API shows at `path`."""
    lines = [line for line in stdout.splitlines() if line.strip().startswith(f"API {path}")]
    assert len(lines) == 1, stdout
    return lines[0]


def refused(out: subprocess.CompletedProcess[str], error: str) -> None:
    """Exit 2 with a one-line message naming `error`, and no traceback."""
    assert out.returncode == 2, out.stdout + out.stderr
    assert error in out.stderr and "Traceback" not in out.stderr + out.stdout, out.stderr


def _address(who: int) -> ChecksumAddress:
    return dev_accounts(who + 1)[who].address


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, text
    return int(found.group(1))


def nonce(stack: Stack, who: int) -> int:
    return int(stack.w3.eth.get_transaction_count(_address(who)))


def mint(stack: Stack, *extra: str) -> int:
    text = stack.root / "prompt.txt"
    text.write_text("You are a careful reviewer. Find the bug.")
    metadata = ["--title", "Reviewer", "--description", "Finds bugs", "--model", "any"]
    out = stack.ok(SELLER, "prompt", "mint", "--text-file", str(text), *metadata,
                   "--licence-terms", "Personal use.", *extra)  # fmt: skip
    token = number(r"minted prompt (\d+)", out)
    line = api_line(out, f"/prompts/{token}")
    assert f"owner={_address(SELLER)}" in line and "listed=False" in line
    return token


# ------------------------------------------------------------------ jobs


def test_job_post_and_cancel_show_the_new_state_through_the_api(stack: Stack, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    out = stack.ok(CLIENT, "job", "post", "--spec", str(spec), "--max-price", "0.25ether")
    job_id = number(r"posted job (\d+)", out)
    line = api_line(out, f"/jobs/{job_id}")
    assert "state=open" in line and f"amount={25 * 10**16}" in line and "bid_count=0" in line

    # Someone else's job: the contract's NotClient, before anything is sent.
    before = nonce(stack, STRANGER)
    refused(
        stack.run(STRANGER, "job", "cancel", str(job_id)), "ComputeRental.cancelJob reverted with NotClient("
    )
    assert nonce(stack, STRANGER) == before

    out = stack.ok(CLIENT, "job", "cancel", str(job_id))
    assert "Cancelled" in out  # the on-chain line stays
    assert "state=cancelled" in api_line(out, f"/jobs/{job_id}")
    # `job show` signs nothing and reads the API as it is.
    shown = stack.ok(-1, "job", "show", str(job_id))
    assert "state=cancelled" in api_line(shown, f"/jobs/{job_id}")

    # The escrow came back as a credit; withdraw takes it out and the API shows nothing owed.
    assert stack.protocol.compute.functions.owed(_address(CLIENT), NATIVE).call() > 0
    out = stack.ok(CLIENT, "withdraw")
    assert "withdrew" in out
    line = api_line(out, f"/accounts/{_address(CLIENT)}")
    assert f"owed_by_asset=[{{asset: {NATIVE}, owed: 0}}]" in line
    assert stack.protocol.compute.functions.owed(_address(CLIENT), NATIVE).call() == 0


def test_job_accept_shows_the_provider_and_price(
    stack: Stack, senders: list[TxSender], tmp_path: Path
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    out = stack.ok(CLIENT, "job", "post", "--spec", str(spec), "--max-price", "1000")
    job_id = number(r"posted job (\d+)", out)
    c = stack.protocol.compute
    provider = senders[STRANGER]
    if not c.functions.isActiveProvider(provider.address).call():
        provider.transact(c.functions.registerProvider("bafkreicli"), value=PARAMS.min_stake)
    provider.transact(c.functions.placeBid(job_id, 700))
    out = stack.ok(CLIENT, "job", "accept", str(job_id))
    line = api_line(out, f"/jobs/{job_id}")
    assert "state=assigned" in line and f"provider={provider.address}" in line and "price=700" in line


# ------------------------------------------------------------------ prompts


def test_prompt_list_unlist_and_buy_show_the_listing_and_owner_through_the_api(stack: Stack) -> None:
    token = mint(stack)

    out = stack.ok(SELLER, "prompt", "list", str(token), "--price", "5000")
    line = api_line(out, f"/prompts/{token}")
    assert "listed=True" in line and "listing.price=5000" in line and f"listing.asset={NATIVE}" in line

    out = stack.ok(SELLER, "prompt", "unlist", str(token))
    assert "not listed" in out
    line = api_line(out, f"/prompts/{token}")
    assert "listed=False" in line and "listing.price" not in line

    # Not listed any more: the contract's NotListed, and the buyer sends nothing.
    before = nonce(stack, BUYER)
    refused(stack.run(BUYER, "prompt", "buy", str(token)), f"reverted with NotListed(tokenId={token})")
    assert nonce(stack, BUYER) == before

    stack.ok(SELLER, "prompt", "list", str(token), "--price", "8000")
    # Above the buyer's --max-price: refused before anything is sent.
    refused(stack.run(BUYER, "prompt", "buy", str(token), "--max-price", "7999"), "above your --max-price")
    assert nonce(stack, BUYER) == before
    # The seller cannot buy its own listing (SellerCannotBuy).
    refused(stack.run(SELLER, "prompt", "buy", str(token)), "SellerCannotBuy")

    out = stack.ok(BUYER, "prompt", "buy", str(token), "--max-price", "8000")
    line = api_line(out, f"/prompts/{token}")
    assert f"owner={_address(BUYER)}" in line and "listed=False" in line and "sales_count=1" in line
    assert stack.protocol.market.functions.ownerOf(token).call() == _address(BUYER)

    # The seller's proceeds are withdrawn; the API shows nothing owed in ETH.
    out = stack.ok(SELLER, "withdraw")
    assert "withdrew" in out and "PromptMarketplace" in out
    assert f"{{asset: {NATIVE}, owed: 0}}" in api_line(out, f"/accounts/{_address(SELLER)}")


def test_prompt_buy_in_an_erc20_approves_first(stack: Stack, senders: list[TxSender]) -> None:
    assert stack.protocol.token is not None
    token_address = stack.protocol.token.address
    token = mint(stack)
    out = stack.ok(SELLER, "prompt", "list", str(token), "--price", "3000", "--asset", token_address)
    assert f"listing.asset={token_address}" in api_line(out, f"/prompts/{token}")
    balance = stack.protocol.token.functions.balanceOf
    senders[0].transact(stack.protocol.token.functions.mint(_address(BUYER), 3000))
    before = balance(_address(BUYER)).call()
    out = stack.ok(BUYER, "prompt", "buy", str(token))
    assert f"owner={_address(BUYER)}" in api_line(out, f"/prompts/{token}")
    assert balance(_address(BUYER)).call() == before - 3000


def test_licence_buy_refund_and_rate_show_the_licence_through_the_api(
    stack: Stack, senders: list[TxSender]
) -> None:
    token = mint(stack, "--licence-price", "600")
    out = stack.ok(BUYER, "prompt", "buy-licence", str(token))
    licence = number(r"bought licence (\d+)", out)
    line = api_line(out, "/licences?")
    assert f"license_id={licence}" in line and "state=pending" in line and "price=600" in line

    # Too early to refund: DeliveryDeadlineNotReached, nothing sent.
    before = nonce(stack, STRANGER)
    refused(stack.run(STRANGER, "prompt", "refund", str(licence)), "DeliveryDeadlineNotReached")
    assert nonce(stack, STRANGER) == before

    advance(stack.w3, PARAMS.delivery_window + 1)
    out = stack.ok(STRANGER, "prompt", "refund", str(licence))
    line = api_line(out, "/licences?")
    assert f"license_id={licence}" in line and "state=refunded" in line and "refund=600" in line
    shown = stack.ok(-1, "prompt", "licence", str(licence))
    assert "state=refunded" in api_line(shown, "/licences?")

    # A second licence, delivered (by the seller's account directly), then rated.
    second = number(r"bought licence (\d+)", stack.ok(BUYER, "prompt", "buy-licence", str(token)))
    senders[SELLER].transact(stack.protocol.market.functions.deliverKey(second, b"\x04" + bytes(64)))
    out = stack.ok(BUYER, "prompt", "rate", str(second), "--score", "4")
    line = api_line(out, "/licences?")
    assert f"license_id={second}" in line and "state=delivered" in line and "rated=True" in line
    line = api_line(out, f"/prompts/{token}")
    assert "rating.count=1" in line and "rating.average=4" in line


# ------------------------------------------------------------------ options and refusals


def test_api_url_off_shows_no_api_line_and_a_down_api_is_said_not_fatal(stack: Stack) -> None:
    token = mint(stack)
    out = stack.ok(SELLER, "prompt", "list", str(token), "--price", "1000", "--api-url", "off")
    assert "listed prompt" in out and "API" not in out

    down = f"http://127.0.0.1:{free_port()}"
    run = stack.run(SELLER, "prompt", "list", str(token), "--price", "2000", api_url=down)
    assert run.returncode == 0, run.stderr
    assert "listed at 2000" in run.stdout  # the on-chain state is still printed
    assert "API: not shown" in run.stdout and "/status" in run.stdout


def test_dev_account_out_of_range_is_refused(stack: Stack) -> None:
    out = stack.run(11, "job", "cancel", "1")
    refused(out, "--dev-account must be 0-9")


def test_dev_account_on_a_chain_that_is_not_local_anvil_is_refused(stack: Stack) -> None:
    other = Anvil(port=free_port(), chain_id=1337).start()
    try:
        out = stack.run(3, "job", "cancel", "1", "--rpc-url", other.rpc_url)
        refused(out, "--dev-account is for a local anvil chain only")
        assert "--keystore" in out.stderr
        assert (
            other.rpc_url
            and Web3(Web3.HTTPProvider(other.rpc_url)).eth.get_transaction_count(_address(3)) == 0
        )
    finally:
        other.stop()
