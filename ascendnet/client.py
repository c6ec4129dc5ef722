"""What every write-side command shares: its settings, its options, and one session that holds
the chain connection, the deployment, the signing account and the content store.

The API is read-only, so writes go from here (or a wallet) straight to the contracts. Every
command signs with `--keystore` (or the public dev key on a local anvil only), and TxSender
refuses a call that would revert, naming the contract's custom error, before sending anything.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from eth_account.signers.local import LocalAccount
from pydantic import Field
from pydantic_settings import SettingsConfigDict
from web3 import Web3

from ascendnet.apiview import DEFAULT_API_URL, ApiView
from ascendnet.settings import BaseAscendSettings
from ascendnet.storage import ContentStore, StorageConfig, open_store
from chain import manifest
from chain.contracts import Protocol
from chain.rpc import connect
from chain.signer import resolve_signer
from chain.tx import TxSender

NATIVE = "0x0000000000000000000000000000000000000000"
_UNITS = {"wei": 1, "gwei": 10**9, "ether": 10**18, "eth": 10**18}


class ClientSettings(BaseAscendSettings):
    """Settings of the client commands (environment prefix ASCENDNET_, nested with __)."""

    model_config = SettingsConfigDict(
        env_prefix="ASCENDNET_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    storage: StorageConfig = Field(default_factory=StorageConfig)
    #: Where commands read the resulting state back from; "off" (or empty) shows none.
    api_url: str = DEFAULT_API_URL
    #: On a local anvil chain only: sign as anvil's funded dev account N instead of a keystore.
    dev_account: int | None = None

    def api(self) -> ApiView | None:
        return None if self.api_url.strip().lower() in ("", "off", "none") else ApiView(self.api_url)


RpcUrlOpt = Annotated[
    str | None, typer.Option("--rpc-url", help="JSON-RPC endpoint [$ASCENDNET_RPC_URL or local anvil].")
]
KeystoreOpt = Annotated[
    Path | None, typer.Option("--keystore", help="Encrypted keystore to sign with [$ASCENDNET_KEYSTORE].")
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Keystore password file [$ASCENDNET_PASSWORD_FILE, else $ASCENDNET_KEYSTORE_PASSWORD].",
    ),
]
ManifestOpt = Annotated[
    Path | None, typer.Option("--manifest", help=r"Manifest \[default: deployments/CHAIN_ID.json].")
]
ApiUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        help="API to read the resulting state back from; 'off' for none "
        f"[$ASCENDNET_API_URL or {DEFAULT_API_URL}].",
    ),
]
DevAccountOpt = Annotated[
    int | None,
    typer.Option(
        "--dev-account",
        help="Local anvil only: sign as its funded dev account N (0-9) [$ASCENDNET_DEV_ACCOUNT or 0].",
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory; the local content store is <data-dir>/content [.data]."),
]


@dataclass(frozen=True)
class ClientOptions:
    """The options every client command shares, as given on its command line (None: not given)."""

    rpc_url: str | None = None
    keystore: Path | None = None
    password_file: Path | None = None
    manifest: Path | None = None
    data_dir: Path | None = None
    api_url: str | None = None
    dev_account: int | None = None

    def settings(self, cls: type[ClientSettings] = ClientSettings, **extra: Any) -> ClientSettings:
        return load_settings(cls, **{f.name: getattr(self, f.name) for f in fields(self)}, **extra)


_OPTIONS: dict[str, Any] = {
    "rpc_url": RpcUrlOpt,
    "keystore": KeystoreOpt,
    "password_file": PasswordFileOpt,
    "manifest": ManifestOpt,
    "data_dir": DataDirOpt,
    "api_url": ApiUrlOpt,
    "dev_account": DevAccountOpt,
}
#: What a command that signs nothing takes.
_READ_OPTIONS = ("rpc_url", "manifest", "api_url")

F = TypeVar("F", bound=Callable[..., Any])


def client_options(*, signs: bool = True) -> Callable[[F], F]:
    """Give a typer command the shared options (--rpc-url, --manifest, --api-url and, when it
    `signs`, --keystore, --password-file, --data-dir, --dev-account) after its own, and pass
    them to it as one ClientOptions in its `opts` parameter."""
    names = tuple(_OPTIONS) if signs else _READ_OPTIONS

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "opts"]
        shared = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_OPTIONS[n])
            for n in names
        ]

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            opts = ClientOptions(**{n: kwargs.pop(n, None) for n in names})
            return fn(*args, opts=opts, **kwargs)

        # NOTE: typer reads the parameters from __signature__ and the types from __annotations__.
        command.__signature__ = sig.replace(parameters=[*own, *shared])  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in [*own, *shared]} | {"return": None}
        return command  # type: ignore[return-value]

    return decorate


@dataclass
class Session:
    settings: ClientSettings
    protocol: Protocol
    account: LocalAccount
    sender: TxSender
    store: ContentStore
    api: ApiView | None = None

    @property
    def w3(self) -> Web3:
        return self.protocol.w3

    @property
    def address(self) -> str:
        return str(self.account.address)


def load_settings(cls: type[ClientSettings] = ClientSettings, **overrides: Any) -> ClientSettings:
    """The environment's settings, overridden by the options given on the command line."""
    return cls(**{k: v for k, v in overrides.items() if v is not None})


def load_protocol(settings: BaseAscendSettings) -> Protocol:
    w3 = connect(settings.rpc_url)
    return Protocol.load(w3, manifest.read(settings.manifest or manifest.default_path(w3.eth.chain_id)))


def open_session(settings: ClientSettings) -> Session:
    protocol = load_protocol(settings)
    account = resolve_signer(
        protocol.w3, settings.rpc_url, settings.keystore, settings.password_file, settings.dev_account
    )
    store = open_store(settings.storage, settings.data_dir)
    return Session(settings, protocol, account, TxSender(protocol.w3, account), store, settings.api())


def parse_asset(value: str) -> str:
    if value.lower() in ("native", "eth", NATIVE):
        return NATIVE
    try:
        return Web3.to_checksum_address(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither 'native' nor an ERC-20 address") from None


def parse_amount(value: str) -> int:
    """'1000' (base units), '0.5ether', '20 gwei' -> base units (wei for ETH)."""
    text = value.strip().lower().replace(" ", "")
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            number, scale = text[: -len(unit)], _UNITS[unit]
            break
    else:
        number, scale = text, 1
    try:
        from decimal import Decimal, InvalidOperation

        amount = Decimal(number) * scale
    except (InvalidOperation, ValueError):
        raise typer.BadParameter(f"{value!r} is not an amount (e.g. 1000, 0.5ether, 20gwei)") from None
    if amount != amount.to_integral_value() or amount <= 0:
        raise typer.BadParameter(f"{value!r} is not a positive whole number of base units")
    return int(amount)


def when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
