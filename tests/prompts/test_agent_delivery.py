"""End to end: `ascendnet prompt ...` as the seller and buyers run it, and the REAL
`ascendnet agent run` process delivering licence keys, against a real anvil.

- mint, buy, automatic delivery, decrypt: the exact original text, for two buyers with their
  own keys;
- no delivery by the deadline: a refund in full, no fee, withdrawn; the restarted agent leaves it;
- a key encrypted to the wrong key: `decrypt` fails naming the licence (the buyer's evidence);
- kill -9 of the agent at random points of its deliveries, several times: every licence is
  delivered exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import typer
from eth_keys.datatypes import PrivateKey
from typer.testing import CliRunner, Result

from agent.delivery import DeliveryJournal, Phase
from ascendnet.jobs.cli import withdraw_command
from ascendnet.prompt_metadata import InvalidMetadata
from ascendnet.prompts.cli import prompt_app
from ascendnet.prompts.crypto import wrap_key
from ascendnet.prompts.market import PromptMarket, find_event, read_licence
from ascendnet.prompts.seller_keys import SellerKeyStore
from ascendnet.storage import LocalContentStore
from chain import events as ev
from chain import manifest
from chain.anvil import Anvil
from chain.contracts import Protocol
from chain.tx import TxSender
from tests.chain.flows import NATIVE, PARAMS, advance
from tests.prompts.conftest import PASSWORD, PROMPT_TEXT, calls_by, draft, write_keystore

PRICE = 2 * 10**16
SELLER, ALICE, BOB = 3, 4, 5


@dataclass
class Market:
    """One marketplace deployment with a seller, two buyers and their files."""

    anvil: Anvil
    protocol: Protocol
    root: Path
    manifest: Path
    password_file: Path
    keystores: dict[int, Path]
    senders: list[TxSender]

    @property
    def content_dir(self) -> Path:
        # NOTE: the local content store stands for IPFS here: seller and buyers share it.
        return self.root / "market"

    @property
    def seller_keys(self) -> Path:
        return self.root / "seller-keys.json"

    @property
    def agent_dir(self) -> Path:
        return self.root / "agent"

    @property
    def agent_log(self) -> Path:
        return self.root / "agent.log"

    def cli(self, who: int, *args: str) -> Result:
        """`ascendnet prompt ARGS` (or `ascendnet withdraw`) in process, signed by dev account
        `who`'s keystore."""
        app = typer.Typer()
        app.add_typer(prompt_app, name="prompt")
        app.command("withdraw")(withdraw_command)
        common = [
            "--rpc-url", self.anvil.rpc_url,
            "--manifest", str(self.manifest),
            "--keystore", str(self.keystores[who]),
            "--password-file", str(self.password_file),
            "--data-dir", str(self.content_dir),
        ]  # fmt: skip
        if args[0] == "mint":
            common += ["--seller-keys", str(self.seller_keys)]
        argv = [*args, *common] if args[0] == "withdraw" else ["prompt", *args, *common]
        return CliRunner().invoke(app, argv, env={"COLUMNS": "250", "ASCENDNET_API_URL": "off"})

    def market(self, who: int) -> PromptMarket:
        store = LocalContentStore(self.content_dir / "content")
        return PromptMarket(self.protocol, self.senders[who], store)

    def agent_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ASCENDNET_RPC_URL": self.anvil.rpc_url,
            "ASCENDNET_MANIFEST": str(self.manifest),
            "ASCENDNET_KEYSTORE": str(self.keystores[SELLER]),
            "ASCENDNET_PASSWORD_FILE": str(self.password_file),
            "ASCENDNET_SELLER_KEYS": str(self.seller_keys),
            "ASCENDNET_CONFIRMATIONS": "0",
            "ASCENDNET_POLL_INTERVAL": "0.05",
            "ASCENDNET_WITHDRAW_THRESHOLD_WEI": str(10**30),
            "ASCENDNET_LOG_FORMAT": "json",
            # Delivery needs no Docker: the agent runs without a sandbox, and says so.
            "DOCKER_HOST": f"unix://{self.root / 'no-docker.sock'}",
        }

    def start_agent(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "ascendnet.cli", "agent", "run", "--data-dir", str(self.agent_dir)],
            env=self.agent_env(),
            stdout=subprocess.DEVNULL,
            stderr=open(self.agent_log, "ab"),  # noqa: SIM115 - the child owns it
            stdin=subprocess.DEVNULL,
        )

    def starts_logged(self) -> int:
        if not self.agent_log.exists():
            return 0
        return self.agent_log.read_text(errors="replace").count('"event": "agent.started"')

    def log_tail(self) -> str:
        return self.agent_log.read_text(errors="replace")[-4000:] if self.agent_log.exists() else ""

    def licence_count(self) -> int:
        return int(self.protocol.market.functions.licenseCount().call())

    def state(self, licence_id: int) -> str:
        return read_licence(self.protocol.market, licence_id).state


@pytest.fixture(scope="module")
def m(
    anvil: Anvil, protocol: Protocol, senders: list[TxSender], tmp_path_factory: pytest.TempPathFactory
) -> Market:
    root = tmp_path_factory.mktemp("prompt-market")
    password_file = root / "password"
    password_file.write_text(PASSWORD + "\n")
    keystores = {
        who: write_keystore(root / f"account-{who}.json", bytes(senders[who].account.key))
        for who in (SELLER, ALICE, BOB)
    }
    path = manifest.write(protocol.deployment, root / "deployment.json")
    return Market(anvil, protocol, root, path, password_file, keystores, senders)


@pytest.fixture()
def agent(m: Market) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts the real agent process (at most one at a time) and stops it cleanly afterwards."""
    running: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        assert not [p for p in running if p.poll() is None], "an agent is already running"
        running.append(m.start_agent())
        return running[-1]

    yield start
    for proc in running:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def wait_for(what: str, predicate: Callable[[], Any], m: Market, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; agent log:\n{m.log_tail()}")


def started_since(m: Market, starts: int) -> bool:
    return m.starts_logged() > starts


def mint(m: Market, title: str) -> int:
    draft_file = m.root / f"draft-{title.replace(' ', '-')}.json"
    draft_file.write_text(json.dumps({k: v for k, v in draft().items() if k != "title"}))
    text_file = m.root / "prompt.txt"
    text_file.write_bytes(PROMPT_TEXT)
    result = m.cli(
        SELLER, "mint", "--text-file", str(text_file), "--metadata-file", str(draft_file),
        "--title", title, "--licence-price", str(PRICE), "--royalty-bps", "250",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    token_id = int(m.protocol.market.functions.promptCount().call())
    assert f"minted prompt {token_id}" in result.stdout
    assert f"licences offered at {PRICE} wei" in result.stdout
    return token_id


def buy(m: Market, who: int, token_id: int) -> int:
    result = m.cli(who, "buy-licence", str(token_id), "--expected-price", str(PRICE))
    assert result.exit_code == 0, result.output
    licence_id = m.licence_count()
    assert f"bought licence {licence_id}" in result.stdout and "Pending" in result.stdout
    return licence_id


def test_bought_licences_are_delivered_and_decrypt_to_the_exact_text(
    m: Market, agent: Callable[[], subprocess.Popen[bytes]]
) -> None:
    start_block = m.protocol.w3.eth.block_number
    seller = m.senders[SELLER].address
    owed_before = m.market(SELLER).owed(NATIVE, seller)
    token_id = mint(m, "Haiku writer")
    proc = agent()
    alice = buy(m, ALICE, token_id)
    bob = buy(m, BOB, token_id)
    wait_for("both deliveries", lambda: m.state(alice) == m.state(bob) == "Delivered", m)

    out = m.root / "alice.txt"
    result = m.cli(ALICE, "decrypt", str(alice), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == PROMPT_TEXT
    assert f"licence {alice} (prompt {token_id}, 'Haiku writer')" in result.stderr
    assert "sha256 matches the on-chain contentHash" in result.stderr

    app = typer.Typer()
    app.add_typer(prompt_app, name="prompt")
    args = ["prompt", "licence", str(alice), "--rpc-url", m.anvil.rpc_url, "--manifest", str(m.manifest)]
    shown = CliRunner().invoke(app, args)  # reads only: no keystore
    assert shown.exit_code == 0, shown.output
    assert f"licence {alice}: prompt {token_id}, Delivered, price {PRICE} wei" in shown.stdout

    result = m.cli(BOB, "decrypt", str(bob))  # to stdout, byte for byte
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == PROMPT_TEXT

    # The second buyer received their own encryption of the key.
    (ka,) = find_event(m.protocol, ev.KeyDelivered, alice)
    (kb,) = find_event(m.protocol, ev.KeyDelivered, bob)
    assert isinstance(ka, ev.KeyDelivered) and isinstance(kb, ev.KeyDelivered)
    assert ka.encrypted_key != kb.encrypted_key
    assert ka.buyer == m.senders[ALICE].address and kb.buyer == m.senders[BOB].address

    result = m.cli(ALICE, "rate", str(alice), "--score", "5", "--review-cid", "bafkreireview")
    assert result.exit_code == 0, result.output
    assert "rated licence" in result.stdout and "rated" in result.stdout
    result = m.cli(ALICE, "rate", str(alice), "--score", "4")
    assert isinstance(result.exception, Exception) and "AlreadyRated" in str(result.exception)

    stop(proc)
    calls = calls_by(m.protocol.w3, m.protocol.market, seller, start_block + 1)
    assert calls[("deliverKey", alice)] == calls[("deliverKey", bob)] == 1
    fee = -(-PRICE * 300 // 10_000)  # 3%, rounded up
    assert m.market(SELLER).owed(NATIVE, seller) - owed_before == 2 * (PRICE - fee)


def test_undelivered_licence_is_refunded_in_full_and_a_bad_key_is_evidence(
    m: Market, agent: Callable[[], subprocess.Popen[bytes]]
) -> None:
    """With the agent stopped: one licence gets no delivery at all, another a key encrypted to a
    stranger. Then the agent comes back and must touch neither."""
    w3, market = m.protocol.w3, m.protocol.market
    start_block = w3.eth.block_number
    token_id = mint(m, "Refund case")
    treasury = m.senders[9].address  # tests/conftest.py deploys with account 9 as the treasury
    fees_before = int(market.functions.owed(treasury, NATIVE).call())
    seller_before = int(market.functions.owed(m.senders[SELLER].address, NATIVE).call())

    unpaid = buy(m, ALICE, token_id)
    result = m.cli(ALICE, "refund", str(unpaid))
    assert isinstance(result.exception, Exception) and "DeliveryDeadlineNotReached" in str(result.exception)

    # The seller posts a key for Bob's licence, encrypted to some other key.
    bad = buy(m, BOB, token_id)
    keys = SellerKeyStore(m.seller_keys, m.senders[SELLER].account)
    (entry,) = [e for e in keys.entries() if e.token_id == token_id]
    content_key = keys.content_key(entry.metadata_cid)
    assert content_key is not None
    stranger = PrivateKey(b"\x09" * 32).public_key.to_bytes()
    sent = m.senders[SELLER].transact(market.functions.deliverKey(bad, wrap_key(content_key, stranger)))
    # The real command, as the buyer runs it: exit code 2 and the licence named.
    done = subprocess.run(
        [
            sys.executable, "-m", "ascendnet.cli", "prompt", "decrypt", str(bad),
            "--rpc-url", m.anvil.rpc_url, "--manifest", str(m.manifest), "--keystore", str(m.keystores[BOB]),
            "--password-file", str(m.password_file), "--data-dir", str(m.content_dir),
        ],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"licence {bad} (prompt {token_id})" in done.stderr
    assert f"does not decrypt with {m.senders[BOB].address}'s key" in done.stderr
    assert sent.tx_hash in done.stderr and done.stdout == ""

    # Nobody delivered Alice's key before the deadline: she is refunded in full, without fee.
    advance(w3, PARAMS.delivery_window + 1)
    result = m.cli(ALICE, "refund", str(unpaid))
    assert result.exit_code == 0, result.output
    assert f"refunded licence {unpaid}" in result.stdout and "Refunded" in result.stdout
    assert int(market.functions.owed(m.senders[ALICE].address, NATIVE).call()) == PRICE
    assert int(market.functions.owed(treasury, NATIVE).call()) - fees_before == -(-PRICE * 300 // 10_000)
    # (that fee is Bob's delivered licence; the refund itself added none)
    assert int(market.functions.owed(m.senders[SELLER].address, NATIVE).call()) > seller_before
    alice_address = m.senders[ALICE].account.address
    balance = w3.eth.get_balance(alice_address)
    result = m.cli(ALICE, "withdraw")
    assert result.exit_code == 0, result.output
    assert f"withdrew {PRICE} from PromptMarketplace" in result.stdout
    (withdrawal,) = market.events.Withdrawn().get_logs(from_block=w3.eth.block_number)
    receipt = w3.eth.get_transaction_receipt(withdrawal["transactionHash"])
    gas = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert w3.eth.get_balance(alice_address) == balance + PRICE - gas
    assert int(market.functions.owed(m.senders[ALICE].address, NATIVE).call()) == 0

    # The agent comes back: it records both licences and sends nothing for either.
    proc = agent()
    journal = DeliveryJournal(m.agent_dir / "deliveries.db")

    def phases() -> tuple[Phase | None, Phase | None]:
        a, b = journal.get(unpaid), journal.get(bad)
        return (a.phase if a else None, b.phase if b else None)

    wait_for("the agent to record both", lambda: phases() == (Phase.REFUNDED, Phase.DELIVERED), m)
    stop(proc)
    calls = calls_by(w3, market, m.senders[SELLER].address, start_block + 1)
    assert ("deliverKey", unpaid) not in calls and calls[("deliverKey", bad)] == 1


def test_kill_9_mid_delivery_delivers_every_licence_exactly_once(
    m: Market, agent: Callable[[], subprocess.Popen[bytes]]
) -> None:
    w3, market = m.protocol.w3, m.protocol.market
    start_block = w3.eth.block_number
    token_id = mint(m, "Crash case")
    buyers = {ALICE: m.market(ALICE), BOB: m.market(BOB)}
    bought: dict[int, int] = {}  # licence id -> buyer
    rng = random.Random(20261124)
    interrupted = 0

    for round_ in range(6):
        for n in range(3):  # bought while the agent is down: delivered right after it starts
            who = (ALICE, BOB)[(round_ + n) % 2]
            bought[buyers[who].buy_licence(token_id).licence_id] = who
        starts = m.starts_logged()
        proc = agent()
        wait_for("the agent to start", partial(started_since, m, starts), m)
        time.sleep(rng.uniform(0.0, 0.8))  # within its first deliveries (about 0.15 s each)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if any(m.state(lic) == "Pending" for lic in bought):
            interrupted += 1

    proc = agent()
    who = ALICE
    bought[buyers[who].buy_licence(token_id).licence_id] = who  # one more while it runs
    wait_for("every delivery", lambda: all(m.state(lic) == "Delivered" for lic in bought), m, timeout=60)
    stop(proc)

    calls = calls_by(w3, market, m.senders[SELLER].address, start_block + 1)
    # Exactly one deliverKey per licence, and nothing else ever sent by the agent.
    assert {k for k in calls if k[0] != "mint" and k[0] != "setLicenseTerms"} == {
        ("deliverKey", lic) for lic in bought
    }, calls
    assert all(calls[("deliverKey", lic)] == 1 for lic in bought), calls
    for lic, who in bought.items():
        assert buyers[who].decrypt(lic).plaintext == PROMPT_TEXT
    journal = DeliveryJournal(m.agent_dir / "deliveries.db")
    assert all(r.phase is Phase.DELIVERED for r in journal.all() if r.licence_id in bought)
    # The random kills did cut deliveries short (not only idle agents).
    assert interrupted >= 2, interrupted


def test_mint_refuses_a_bad_draft_naming_the_field_and_sends_nothing(m: Market) -> None:
    text_file = m.root / "prompt.txt"
    text_file.write_bytes(PROMPT_TEXT)
    count = int(m.protocol.market.functions.promptCount().call())
    result = m.cli(
        SELLER, "mint", "--text-file", str(text_file), "--title", " padded title",
        "--description", "d", "--model", "gpt-4o", "--licence-terms", "Personal use.",
    )  # fmt: skip
    assert isinstance(result.exception, InvalidMetadata), result.output
    assert result.exception.field == "title" and "whitespace" in str(result.exception)
    assert int(m.protocol.market.functions.promptCount().call()) == count

    # Without --licence-price nothing is offered, until `offer`.
    good = m.cli(
        SELLER, "mint", "--text-file", str(text_file), "--title", "Offered later",
        "--description", "d", "--model", "gpt-4o", "--licence-terms", "Personal use.",
    )  # fmt: skip
    assert good.exit_code == 0, good.output
    token_id = count + 1
    assert f"no licence terms yet: `ascendnet prompt offer {token_id} --price ...`" in good.stdout
    offered = m.cli(SELLER, "offer", str(token_id), "--price", "0.01ether")
    assert offered.exit_code == 0, offered.output
    assert f"licences to prompt {token_id} are offered at {10**16} wei" in offered.stdout
    stopped = m.cli(SELLER, "offer", str(token_id), "--price", "0")
    assert stopped.exit_code == 0 and "are not offered" in stopped.stdout
    refused = m.cli(ALICE, "buy-licence", str(token_id))
    assert "LicenseNotOffered" in str(refused.exception)
    assert m.cli(BOB, "offer", str(token_id), "--price", "1").exception is not None  # not the owner
