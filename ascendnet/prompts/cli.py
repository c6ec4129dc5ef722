"""`ascendnet prompt ...`: mint encrypted prompts; list, unlist and buy the NFTs; offer, buy,
decrypt, refund and rate licences.

Every command signs with `--keystore` (or, on a local anvil only, a funded dev account), prints
the transaction hash, the resulting on-chain state and what the API shows once its indexer has
reached the transaction (--api-url; 'off' for none), and refuses a call that would revert with
the contract's custom error, sending nothing.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ascendnet import apiview
from ascendnet.apiview import ApiView
from ascendnet.client import (
    NATIVE,
    ClientOptions,
    ClientSettings,
    client_options,
    load_protocol,
    open_session,
    parse_amount,
    parse_asset,
    when,
)
from ascendnet.prompt_metadata import InvalidMetadata
from ascendnet.prompts.crypto import DEFAULT_ALGORITHM, Algorithm
from ascendnet.prompts.errors import LicenceNotFound
from ascendnet.prompts.market import OnChainLicence, PromptMarket, read_licence
from ascendnet.prompts.seller_keys import DEFAULT_PATH, SellerKeyStore
from chain.tx import SentTx

prompt_app = typer.Typer(
    help="Encrypted prompts: mint; list, unlist or buy the NFT; buy a licence, decrypt, refund or rate it.",
    no_args_is_help=True,
)
# NOTE: soft_wrap, so hashes and CIDs are never broken across lines when the output is piped.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class PromptSettings(ClientSettings):
    """Settings of `ascendnet prompt ...`: the client's, plus where the seller keeps content keys."""

    #: Shared with `ascendnet agent run`, which delivers the keys it holds.
    seller_keys: Path = DEFAULT_PATH


SellerKeysOpt = Annotated[
    Path | None,
    typer.Option(
        "--seller-keys", help=f"The encrypted seller key store [$ASCENDNET_SELLER_KEYS or {DEFAULT_PATH}]."
    ),
]


#: What the API's /prompts/{id} and /licences show after a prompt command.
PROMPT_FIELDS = (
    "metadata.title",
    "owner",
    "listed",
    "listing.price",
    "listing.asset",
    "licence_terms.price",
    "licence_terms.asset",
    "licences_sold",
    "sales_count",
    "rating.count",
    "rating.average",
)
LICENCE_FIELDS = ("license_id", "state", "price", "rated", "seller_proceeds", "refund")


@dataclass
class _Session:
    settings: PromptSettings
    market: PromptMarket
    api: ApiView | None


def _session(
    opts: ClientOptions, seller_keys: Path | None = None, *, with_seller_keys: bool = False
) -> _Session:
    settings = opts.settings(PromptSettings, seller_keys=seller_keys)
    assert isinstance(settings, PromptSettings)
    s = open_session(settings)
    keys = SellerKeyStore(settings.seller_keys, s.account) if with_seller_keys else None
    return _Session(settings, PromptMarket(s.protocol, s.sender, s.store, keys), s.api)


def _print_licence(
    lic: OnChainLicence, api: ApiView | None = None, block: int | None = None, *, to: Console = console
) -> None:
    """The licence's on-chain state, then what the API shows of it once it reached `block`."""
    asset = "wei" if lic.asset == NATIVE else f"of {lic.asset}"
    to.print(
        f"licence {lic.licence_id}: prompt {lic.token_id}, [bold]{lic.state}[/], price {lic.price} {asset}, "
        f"buyer {lic.buyer}, seller {lic.seller}, delivery deadline {when(lic.delivery_deadline)}"
        + (", rated" if lic.rated else "")
    )
    mine = {"buyer": lic.buyer, "token_id": lic.token_id}
    apiview.show(
        to, api, "/licences", block=block, fields=LICENCE_FIELDS, where={"license_id": lic.licence_id}, **mine
    )


def _show_prompt(s: _Session, token_id: int, block: int | None) -> None:
    apiview.show(console, s.api, f"/prompts/{token_id}", block=block, fields=PROMPT_FIELDS)


def _print_listing(s: _Session, verb: str, token_id: int, sent: SentTx) -> None:
    """The transaction, the NFT's owner and listing on-chain, then as the API shows them."""
    console.print(f"{verb} prompt [bold]{token_id}[/] in tx {sent.tx_hash} (block {sent.block_number})")
    listing = s.market.listing(token_id)
    owner = s.market.owner_of(token_id)
    if listing.listed:
        unit = "wei" if listing.asset == NATIVE else f"of {listing.asset}"
        state = f"listed at [bold]{listing.price}[/] {unit} by {listing.seller}"
    else:
        state = "[bold]not listed[/]"
    console.print(f"prompt {token_id}: owner {owner}, {state}")
    _show_prompt(s, token_id, sent.block_number)


# ================================================================ commands


@prompt_app.command("mint")
@client_options()
def mint_command(
    text_file: Annotated[Path, typer.Option("--text-file", help="The prompt text (UTF-8 or any bytes).")],
    metadata_file: Annotated[
        Path | None,
        typer.Option(
            "--metadata-file",
            help="JSON draft of the metadata (docs/PROMPT_SCHEMA.md) without the fields mint fills in.",
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(help="One-line title.")] = None,
    description: Annotated[str | None, typer.Option(help="Public description.")] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="A target model; repeat for more.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A search tag; repeat for more.")] = None,
    language: Annotated[str | None, typer.Option(help="BCP 47 language tag [en].")] = None,
    licence_kind: Annotated[
        str | None, typer.Option("--licence-kind", help="personal or commercial [personal].")
    ] = None,
    licence_terms: Annotated[str | None, typer.Option("--licence-terms", help="The licence text.")] = None,
    licence_terms_cid: Annotated[
        str | None, typer.Option("--licence-terms-cid", help="CID of the licence text.")
    ] = None,
    royalty_bps: Annotated[int, typer.Option(help="ERC-2981 royalty on NFT sales, in basis points.")] = 0,
    licence_price: Annotated[
        str | None,
        typer.Option("--licence-price", help="Also offer licences at this price, e.g. 0.01ether or 1000."),
    ] = None,
    asset: Annotated[
        str, typer.Option(help="Licence payment asset: native or an ERC-20 address.")
    ] = "native",
    cipher: Annotated[str, typer.Option(help="AES-256-GCM or ChaCha20-Poly1305.")] = DEFAULT_ALGORITHM,
    seller_keys: SellerKeysOpt = None,
    *,
    opts: ClientOptions,
) -> None:
    """Encrypt a prompt, store it and its metadata, keep its key, and mint it."""
    if cipher not in ("AES-256-GCM", "ChaCha20-Poly1305"):
        raise typer.BadParameter(f"unknown cipher {cipher!r}", param_hint="--cipher")
    algorithm: Algorithm = "AES-256-GCM" if cipher == "AES-256-GCM" else "ChaCha20-Poly1305"
    draft = _draft(
        metadata_file,
        title=title,
        description=description,
        models=model,
        tags=tag,
        language=language,
        licence_kind=licence_kind,
        licence_terms=licence_terms,
        licence_terms_cid=licence_terms_cid,
    )
    try:
        plaintext = text_file.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(str(exc), param_hint="--text-file") from None
    s = _session(opts, seller_keys, with_seller_keys=True)
    minted = s.market.mint(
        plaintext,
        draft,
        royalty_bps=royalty_bps,
        licence_price=parse_amount(licence_price) if licence_price is not None else None,
        asset=parse_asset(asset),
        algorithm=algorithm,
    )
    console.print(f"minted prompt [bold]{minted.token_id}[/] in tx {minted.mint_tx}")
    console.print(f"  metadata CID   {minted.metadata_cid}")
    console.print(f"  ciphertext CID {minted.ciphertext_cid} ({minted.metadata.cipher.algorithm})")
    console.print(f"  content hash   {minted.content_hash}")
    console.print(f"  content key    kept encrypted in {s.settings.seller_keys}")
    if minted.terms_tx:
        terms_asset, price = s.market.licence_terms(minted.token_id)
        unit = "wei" if terms_asset == NATIVE else f"of {terms_asset}"
        console.print(f"licences offered at {price} {unit} in tx {minted.terms_tx}")
    else:
        console.print(
            f"no licence terms yet: `ascendnet prompt offer {minted.token_id} --price ...` sets them"
        )
    _show_prompt(s, minted.token_id, minted.block_number)


def _draft(
    metadata_file: Path | None,
    *,
    title: str | None,
    description: str | None,
    models: list[str] | None,
    tags: list[str] | None,
    language: str | None,
    licence_kind: str | None,
    licence_terms: str | None,
    licence_terms_cid: str | None,
) -> dict[str, Any]:
    """The metadata draft: the JSON file's fields, overridden by the options given."""
    draft: dict[str, Any] = {}
    if metadata_file is not None:
        try:
            loaded = json.loads(metadata_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--metadata-file") from None
        if not isinstance(loaded, dict):
            raise InvalidMetadata([("(document)", "the metadata draft must be a JSON object")])
        draft.update(loaded)
    for key, value in (
        ("title", title),
        ("description", description),
        ("target_models", models),
        ("tags", tags),
    ):
        if value:
            draft[key] = value
    draft["language"] = language or draft.get("language", "en")
    licence = dict(draft.get("licence") or {})
    licence["kind"] = licence_kind or licence.get("kind", "personal")
    if licence_terms is not None:
        licence["terms"] = licence_terms
    if licence_terms_cid is not None:
        licence["terms_cid"] = licence_terms_cid
    draft["licence"] = licence
    return draft


@prompt_app.command("offer")
@client_options()
def offer_command(
    token_id: Annotated[int, typer.Argument(help="Your prompt's token id.")],
    price: Annotated[str, typer.Option("--price", help="Licence price, e.g. 0.01ether or 1000; 0 stops.")],
    asset: Annotated[str, typer.Option(help="Payment asset: native or an allowed ERC-20.")] = "native",
    *,
    opts: ClientOptions,
) -> None:
    """Offer licences to your prompt at a price (setLicenseTerms), or stop offering with 0."""
    s = _session(opts)
    amount = 0 if price.strip() == "0" else parse_amount(price)
    sent = s.market.set_licence_terms(token_id, amount, parse_asset(asset))
    terms_asset, current = s.market.licence_terms(token_id)
    unit = "wei" if terms_asset == NATIVE else f"of {terms_asset}"
    state = f"offered at {current} {unit}" if current else "not offered"
    console.print(f"licences to prompt [bold]{token_id}[/] are {state} (tx {sent.tx_hash})")
    _show_prompt(s, token_id, sent.block_number)


@prompt_app.command("list")
@client_options()
def list_command(
    token_id: Annotated[int, typer.Argument(help="Your prompt's token id.")],
    price: Annotated[str, typer.Option("--price", help="Sale price of the NFT, e.g. 0.5ether or 1000.")],
    asset: Annotated[str, typer.Option(help="Payment asset: native or an allowed ERC-20.")] = "native",
    *,
    opts: ClientOptions,
) -> None:
    """List your prompt NFT for sale (a new listing replaces the old one)."""
    s = _session(opts)
    _print_listing(
        s, "listed", token_id, s.market.list_for_sale(token_id, parse_amount(price), parse_asset(asset))
    )


@prompt_app.command("unlist")
@client_options()
def unlist_command(
    token_id: Annotated[int, typer.Argument(help="Your listed prompt's token id.")],
    *,
    opts: ClientOptions,
) -> None:
    """Cancel your listing of a prompt NFT."""
    s = _session(opts)
    _print_listing(s, "unlisted", token_id, s.market.cancel_listing(token_id))


@prompt_app.command("buy")
@client_options()
def buy_command(
    token_id: Annotated[int, typer.Argument(help="The listed prompt's token id.")],
    max_price: Annotated[
        str | None,
        typer.Option("--max-price", help="Refuse, sending nothing, when the listed price is above this."),
    ] = None,
    *,
    opts: ClientOptions,
) -> None:
    """Buy a listed prompt NFT at its listed price (an ERC-20 price is approved first).

    The seller, the creator's royalty and the protocol fee are credited."""
    s = _session(opts)
    _print_listing(
        s,
        "bought",
        token_id,
        s.market.buy(token_id, parse_amount(max_price) if max_price is not None else None),
    )


@prompt_app.command("buy-licence")
@client_options()
def buy_licence_command(
    token_id: Annotated[int, typer.Argument(help="The prompt's token id.")],
    expected_price: Annotated[
        str | None,
        typer.Option("--expected-price", help="Refuse (PriceMismatch) unless the price is this [current]."),
    ] = None,
    *,
    opts: ClientOptions,
) -> None:
    """Buy a licence; the payment waits in escrow until the seller delivers the key."""
    s = _session(opts)
    bought = s.market.buy_licence(token_id, parse_amount(expected_price) if expected_price else None)
    console.print(f"bought licence [bold]{bought.licence_id}[/] in tx {bought.tx_hash}")
    _print_licence(s.market.licence(bought.licence_id), s.api, bought.block_number)
    console.print(
        f"then: `ascendnet prompt decrypt {bought.licence_id}` once delivered, or "
        f"`ascendnet prompt refund {bought.licence_id}` after {when(bought.delivery_deadline)}"
    )


@prompt_app.command("decrypt")
@client_options()
def decrypt_command(
    licence_id: Annotated[int, typer.Argument(help="Your licence id.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the prompt text here instead of to stdout.")
    ] = None,
    *,
    opts: ClientOptions,
) -> None:
    """Decrypt a delivered licence's prompt with your key and check it against the chain."""
    s = _session(opts)
    result = s.market.decrypt(licence_id)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(result.plaintext)
    else:
        sys.stdout.buffer.write(result.plaintext)
        sys.stdout.flush()
    err.print(
        f"licence {licence_id} (prompt {result.prompt.token_id}, {result.metadata.title!r}): decrypted "
        f"{len(result.plaintext)} bytes; sha256 matches the on-chain contentHash {result.prompt.content_hash}"
        + (f"; written to {out}" if out is not None else "")
    )


@prompt_app.command("refund")
@client_options()
def refund_command(
    licence_id: Annotated[int, typer.Argument(help="The undelivered licence.")],
    *,
    opts: ClientOptions,
) -> None:
    """Refund an undelivered licence after its deadline: the whole price, no fee (anyone may)."""
    s = _session(opts)
    sent = s.market.refund(licence_id)
    lic = s.market.licence(licence_id)
    console.print(f"refunded licence [bold]{licence_id}[/] in tx {sent.tx_hash}")
    _print_licence(lic, s.api, sent.block_number)
    owed = s.market.owed(lic.asset, lic.buyer)
    console.print(
        f"{lic.price} credited to {lic.buyer}, who is now owed {owed}; "
        "they take it out with `ascendnet withdraw`"
    )


@prompt_app.command("rate")
@client_options()
def rate_command(
    licence_id: Annotated[int, typer.Argument(help="Your delivered licence.")],
    score: Annotated[int, typer.Option("--score", help="1 to 5.")],
    review_cid: Annotated[str, typer.Option("--review-cid", help="CID of a written review.")] = "",
    *,
    opts: ClientOptions,
) -> None:
    """Rate the prompt of a delivered licence, once per licence."""
    s = _session(opts)
    sent = s.market.rate(licence_id, score, review_cid)
    console.print(f"rated licence [bold]{licence_id}[/] {score}/5 in tx {sent.tx_hash}")
    lic = s.market.licence(licence_id)
    _print_licence(lic, s.api, sent.block_number)
    _show_prompt(s, lic.token_id, sent.block_number)


@prompt_app.command("licence")
@client_options(signs=False)
def licence_command(
    licence_id: Annotated[int, typer.Argument(help="The licence id.")],
    *,
    opts: ClientOptions,
) -> None:
    """Show a licence's on-chain state and what the API shows of it (reads only; nothing is signed)."""
    settings = opts.settings(PromptSettings)
    lic = read_licence(load_protocol(settings).market, licence_id)
    if lic.state == "None":
        raise LicenceNotFound(licence_id)
    _print_licence(lic, settings.api())
