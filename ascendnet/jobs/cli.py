"""`ascendnet job ...` and `ascendnet withdraw`: the client's side of compute jobs.

post (the spec is validated and stored by CID first), bids, accept, cancel, dispute, accept-result,
finalize, show. Each prints the transaction, the job's resulting on-chain state, and the job as
the API shows it once its indexer has reached the transaction's block (--api-url; 'off' for none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agent.jobspec import JobSpec, spec_hash
from ascendnet import apiview
from ascendnet.apiview import ApiView
from ascendnet.client import (
    NATIVE,
    ClientOptions,
    Session,
    client_options,
    load_protocol,
    open_session,
    parse_amount,
    parse_asset,
    when,
)
from ascendnet.validation import problems
from chain.contracts import Protocol, bind
from chain.states import JOB_STATES
from chain.tx import SentTx

job_app = typer.Typer(help="Compute jobs, as a client: post, accept a bid, cancel, dispute, finalize.",
                      no_args_is_help=True)  # fmt: skip
console = Console()


#: What the API's /jobs/{id} shows after a job command.
JOB_FIELDS = ("state", "amount", "bid_count", "provider", "price", "result.result_hash",
              "dispute.deadline", "settlement.provider_payout", "settlement.client_refund")  # fmt: skip


def _print_job(s: Session, job_id: int, sent: SentTx | None = None) -> None:
    if sent is not None:
        console.print(f"tx [bold]{sent.tx_hash}[/] mined in block {sent.block_number}")
    _print_state(s.protocol, s.api, job_id, sent.block_number if sent else None)


def _print_state(protocol: Protocol, api: ApiView | None, job_id: int, block: int | None) -> None:
    """The job's on-chain state, then the job as the API shows it once its indexer has reached
    `block` (the transaction's)."""
    j = protocol.compute.functions.getJob(job_id).call()
    (client, asset, provider, state, bid_deadline, accept_deadline, _timeout, exec_deadline,
     challenge_end, dispute_deadline, amount, _spec, result_hash) = j  # fmt: skip
    unit = "wei" if asset == NATIVE else f"of {asset}"
    line = f"job {job_id}: [bold]{JOB_STATES[state]}[/], escrow {amount} {unit}, client {client}"
    if provider != NATIVE:
        line += f", provider {provider}"
    console.print(line)
    if JOB_STATES[state] == "Open":
        console.print(f"  bids until {when(bid_deadline)}, acceptance until {when(accept_deadline)}")
    elif JOB_STATES[state] == "Assigned":
        console.print(f"  result due by {when(exec_deadline)}")
    elif JOB_STATES[state] == "Submitted":
        console.print(f"  result 0x{bytes(result_hash).hex()}; challenge window ends {when(challenge_end)}")
    elif JOB_STATES[state] == "Disputed":
        console.print(f"  arbiter has until {when(dispute_deadline)}")
    apiview.show(console, api, f"/jobs/{job_id}", block=block, fields=JOB_FIELDS)


def current_bids(protocol: Protocol, job_id: int) -> dict[str, int]:
    """Each bidder's current price on `job_id` (BidPlaced logs, confirmed by bidOf)."""
    c = protocol.compute
    logs = c.events.BidPlaced().get_logs(
        from_block=protocol.deployment.deploy_block, argument_filters={"jobId": job_id}
    )
    providers = {log["args"]["provider"] for log in logs}
    bids = {p: int(c.functions.bidOf(job_id, p).call()) for p in providers}
    return {p: price for p, price in bids.items() if price}


@job_app.command("post")
@client_options()
def post_command(
    spec: Annotated[Path, typer.Option("--spec", help="The job spec JSON file (docs/JOB_SPEC.md).")],
    max_price: Annotated[str, typer.Option("--max-price", help="Escrow: the most you pay, e.g. 0.01ether.")],
    asset: Annotated[str, typer.Option(help="'native' (ETH) or an allowed ERC-20 address.")] = "native",
    bid_window: Annotated[int, typer.Option(help="Seconds providers may bid.")] = 600,
    execution_timeout: Annotated[int, typer.Option(help="Seconds the provider has once assigned.")] = 3600,
    *,
    opts: ClientOptions,
) -> None:
    """Validate and store the spec, then post the job with its escrow."""
    from pydantic import ValidationError

    raw = spec.read_bytes()
    try:
        JobSpec.model_validate_json(raw)
    except ValidationError as exc:
        field, reason = problems(exc)[0]
        raise typer.BadParameter(f"{spec}: field `{field}`: {reason}") from None
    amount = parse_amount(max_price)
    token = parse_asset(asset)
    s = open_session(opts.settings())
    cid = s.store.put(raw)
    c = s.protocol.compute
    if token != NATIVE:
        # Any ERC-20 the admin allowed; TestToken's ABI is a plain ERC-20 one.
        erc20 = bind(s.w3, "TestToken", token)
        s.sender.transact(erc20.functions.approve(c.address, amount))
    deadline = int(s.w3.eth.get_block("latest")["timestamp"]) + bid_window
    sent = s.sender.transact(
        c.functions.postJob(token, amount, spec_hash(raw), cid, deadline, execution_timeout),
        value=amount if token == NATIVE else 0,
    )
    job_id = int(c.events.JobPosted().process_receipt(sent.receipt)[0]["args"]["jobId"])
    console.print(f"posted job [bold]{job_id}[/] (spec {cid})")
    _print_job(s, job_id, sent)


@job_app.command("bids")
@client_options(signs=False)
def bids_command(
    job_id: int,
    *,
    opts: ClientOptions,
) -> None:
    """List the current bids on a job, lowest first."""
    protocol = load_protocol(opts.settings())
    table = Table(title=f"Bids on job {job_id}")
    table.add_column("provider")
    table.add_column("price", justify="right")
    for provider, price in sorted(current_bids(protocol, job_id).items(), key=lambda kv: kv[1]):
        table.add_row(provider, str(price))
    console.print(table)


@job_app.command("accept")
@client_options()
def accept_command(
    job_id: int,
    provider: Annotated[str | None, typer.Option(help="Whose bid [default: the lowest].")] = None,
    *,
    opts: ClientOptions,
) -> None:
    """Accept a bid (the lowest by default); the escrow above its price comes back to you."""
    s = open_session(opts.settings())
    bids = current_bids(s.protocol, job_id)
    if provider is None:
        if not bids:
            raise typer.BadParameter(f"job {job_id} has no bids yet")
        provider = min(bids, key=lambda p: bids[p])
    chosen = s.w3.to_checksum_address(provider)
    price = bids.get(chosen, 0)
    sent = s.sender.transact(s.protocol.compute.functions.acceptBid(job_id, chosen, price))
    _print_job(s, job_id, sent)


def _simple(name: str, doc: str) -> None:
    @client_options()
    def command(job_id: int, *, opts: ClientOptions) -> None:
        s = open_session(opts.settings())
        fn = getattr(s.protocol.compute.functions, name)
        _print_job(s, job_id, s.sender.transact(fn(job_id)))

    command.__doc__ = doc
    job_app.command({"cancelJob": "cancel", "acceptResult": "accept-result"}.get(name, name))(command)


_simple("cancelJob", "Cancel an open job; the whole escrow comes back to you, with no fee.")
_simple("acceptResult", "Accept the posted result now; the provider is paid the price minus 3%.")
_simple("finalize", "Complete a job whose challenge window has closed (anyone may).")


@job_app.command("dispute")
@client_options()
def dispute_command(
    job_id: int,
    reason_cid: Annotated[str, typer.Option(help="CID of a document explaining the dispute.")] = "",
    *,
    opts: ClientOptions,
) -> None:
    """Dispute a posted result within the challenge window; the arbiter decides."""
    s = open_session(opts.settings())
    _print_job(s, job_id, s.sender.transact(s.protocol.compute.functions.dispute(job_id, reason_cid)))


@job_app.command("show")
@client_options(signs=False)
def show_command(
    job_id: int,
    *,
    opts: ClientOptions,
) -> None:
    """Print a job's on-chain state, and what the API shows of it."""
    settings = opts.settings()
    _print_state(load_protocol(settings), settings.api(), job_id, None)


@client_options()
def withdraw_command(
    asset: Annotated[str, typer.Option(help="'native' (ETH) or an ERC-20 address.")] = "native",
    *,
    opts: ClientOptions,
) -> None:
    """Withdraw everything both contracts owe you in one asset."""
    s = open_session(opts.settings())
    token = parse_asset(asset)
    total = 0
    block = None
    for name, contract in (("ComputeRental", s.protocol.compute), ("PromptMarketplace", s.protocol.market)):
        owed = int(contract.functions.owed(s.address, token).call())
        if owed == 0:
            continue
        sent = s.sender.transact(contract.functions.withdraw(token))
        total += owed
        block = sent.block_number
        console.print(f"withdrew {owed} from {name}: tx [bold]{sent.tx_hash}[/] mined in block {block}")
    if total == 0:
        console.print(f"nothing owed to {s.address} in {asset}")
    apiview.show(console, s.api, f"/accounts/{s.address}", block=block, fields=("owed_by_asset",))
