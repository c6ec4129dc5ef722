"""Read models: one frozen row class (a msgspec Struct) per row kind, and the SQLAlchemy table
it is stored in.

The folds (indexer/folds.py) compute rows as these classes; the projector writes them. Each
table is derived from its class, so the two cannot drift: the field's annotation picks the
column type (`Wei` is a uint256, `Address` a checksummed address, ...), `KEY` the primary key.

Every read-model row names the log that last changed it: `block_number`, `tx_hash`, `log_index`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, TypeAlias

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# Annotations that choose a column type (see `_column_type`); all are plain Python types.
Address: TypeAlias = str
Hash32: TypeAlias = str
Wei: TypeAlias = int
Cid: TypeAlias = str
Timestamp: TypeAlias = int
State: TypeAlias = str
Day: TypeAlias = str

NATIVE = "0x0000000000000000000000000000000000000000"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Uint256(TypeDecorator[int]):
    """An unsigned 256-bit integer, exact on both backends.

    PostgreSQL: NUMERIC(78, 0). SQLite has no exact type that wide, so the value is stored as
    78-digit zero-padded decimal text, which sorts and compares like the number.
    """

    impl = sa.String(78)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.Numeric(78, 0, asdecimal=True))
        return dialect.type_descriptor(sa.String(78))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return Decimal(value)
        return f"{value:078d}"

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)


# ---------------------------------------------------------------- rows


class Row(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Base of read-model rows. `TABLE` names the table, `KEY` its primary-key fields.

    NOTE: msgspec Structs, not dataclasses: a fold builds a new row for every change, and a
    frozen dataclass sets each of a row's up to 35 fields through `object.__setattr__` (a
    fifth of a rebuild's time went there); a Struct is built, copied with changes
    (`msgspec.structs.replace`) and turned into a tuple (`astuple`) in C. Array-like and
    tagged with its table: msgspec writes a row as `["<table>", value, ...]` in field order,
    which is its digest line.
    """

    TABLE: ClassVar[str] = ""
    KEY: ClassVar[tuple[str, ...]] = ()
    INDEXES: ClassVar[tuple[tuple[str, ...], ...]] = ()

    def key(self) -> tuple[Any, ...]:
        return _KEYS[type(self)](self)

    @classmethod
    def key_getter(cls) -> Callable[[Row], tuple[Any, ...]]:
        """`row.key()` as a plain function of the row."""
        return _KEYS[cls]


class Prompt(Row, frozen=True, tag="prompts"):
    TABLE: ClassVar[str] = "prompts"
    KEY: ClassVar[tuple[str, ...]] = ("token_id",)
    INDEXES: ClassVar[tuple[tuple[str, ...], ...]] = (("creator",), ("owner",))

    token_id: int
    owner: Address
    #: None until PromptMinted, which follows the mint's Transfer in the same transaction.
    creator: Address | None = None
    metadata_cid: Cid | None = None
    content_hash: Hash32 | None = None
    royalty_bps: int | None = None
    minted_at: Timestamp | None = None
    listed: bool = False
    #: The listing in `listings` that is or was last active (0: never listed).
    listing_seq: int = 0
    list_asset: Address | None = None
    list_price: Wei | None = None
    #: Licence terms; price None when licences are not offered.
    licence_asset: Address | None = None
    licence_price: Wei | None = None
    licences_sold: int = 0
    sales_count: int = 0
    rating_count: int = 0
    rating_sum: int = 0
    block_number: int = 0
    tx_hash: str = ""
    log_index: int = 0


class Listing(Row, frozen=True, tag="listings"):
    TABLE: ClassVar[str] = "listings"
    KEY: ClassVar[tuple[str, ...]] = ("token_id", "seq")
    INDEXES: ClassVar[tuple[tuple[str, ...], ...]] = (("seller",), ("state",))

    token_id: int
    seq: int
    seller: Address
    asset: Address
    price: Wei
    #: active | cancelled | sold | replaced
    state: State
    listed_at: Timestamp
    closed_at: Timestamp | None
    buyer: Address | None
    block_number: int
    tx_hash: str
    log_index: int


class Sale(Row, frozen=True, tag="sales"):
    """An NFT sale; keyed by the PromptSold log itself."""

    TABLE: ClassVar[str] = "sales"
    KEY: ClassVar[tuple[str, ...]] = ("block_number", "log_index")
    INDEXES: ClassVar[tuple[tuple[str, ...], ...]] = (("token_id",), ("seller",), ("buyer",))

    token_id: int
    listing_seq: int
    seller: Address
    buyer: Address
    asset: Address
    price: Wei
    fee: Wei
    royalty: Wei
    royalty_receiver: Address
    seller_proceeds: Wei
    sold_at: Timestamp
    block_number: int
    tx_hash: str
    log_index: int


class Licence(Row, frozen=True, tag="licences"):
    TABLE: ClassVar[str] = "licences"
    KEY: ClassVar[tuple[str, ...]] = ("license_id",)
    # NOTE: filter column then id, as on jobs: /licences pages by license_id.
    INDEXES: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("token_id", "license_id"),
        ("buyer", "license_id"),
        ("seller", "license_id"),
        ("state", "license_id"),
    )

    license_id: int
    token_id: int
    buyer: Address
    seller: Address
    asset: Address
    price: Wei
    delivery_deadline: Timestamp
    #: pending | delivered | refunded
    state: State
    rated: bool
    #: The content key encrypted to the buyer, once delivered.
    encrypted_key: bytes | None
    seller_proceeds: Wei | None
    fee: Wei | None
    refund: Wei | None
    purchased_at: Timestamp
    settled_at: Timestamp | None
    block_number: int
    tx_hash: str
    log_index: int


class Rating(Row, frozen=True, tag="ratings"):
    TABLE: ClassVar[str] = "ratings"
    KEY: ClassVar[tuple[str, ...]] = ("license_id",)
    INDEXES: ClassVar[tuple[tuple[str, ...], ...]] = (("token_id",), ("rater",))

    license_id: int
    token_id: int
    rater: Address
    score: int
    review_cid: Cid
    rated_at: Timestamp
    block_number: int
    tx_hash: str
    log_index: int


class Job(Row, frozen=True, tag="jobs"):
    TABLE: ClassVar[str] = "jobs"
    KEY: ClassVar[tuple[str, ...]] = ("job_id",)
    # NOTE: each filter column is followed by the id, so a filtered listing (the job board by
    # state, an account's jobs) reads its page in order from the index instead of sorting
    # every match; the API's keyset pagination orders by job_id.
    INDEXES: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("client", "job_id"),
        ("provider", "job_id"),
        ("state", "job_id"),
    )

    job_id: int
    client: Address
    asset: Address
    #: The escrow the client posted (the most it will pay).
    max_amount: Wei
    #: What is escrowed now: `max_amount` while open, the price once assigned.
    amount: Wei
    spec_hash: Hash32
    spec_cid: Cid
    bid_deadline: Timestamp
    #: bid_deadline + the acceptWindow in force at posting (None if no ParamsUpdated was seen).
    accept_deadline: Timestamp | None
    execution_timeout: int
    #: open | assigned | submitted | completed | cancelled | expired | failed | disputed | resolved
    state: State
    posted_at: Timestamp
    bid_count: int = 0
    provider: Address | None = None
    price: Wei | None = None
    execution_deadline: Timestamp | None = None
    result_hash: Hash32 | None = None
    result_cid: Cid | None = None
    challenge_end: Timestamp | None = None
    dispute_reason_cid: Cid | None = None
    dispute_deadline: Timestamp | None = None
    arbiter: Address | None = None
    provider_bps: int | None = None
    #: What the provider was credited (price - fee, or its share - fee after a dispute).
    provider_payout: Wei | None = None
    fee: Wei | None = None
    #: Everything credited back to the client: escrow above the price, cancel/expiry/failure
    #: refunds, its part of a dispute.
    client_refund: Wei = 0
    #: Stake slashed from the provider (credited to the client, in ETH).
    slashed: Wei = 0
    completed_by_client: bool | None = None
    settled_at: Timestamp | None = None
    block_number: int = 0
    tx_hash: str = ""
    log_index: int = 0


class Bid(Row, frozen=True, tag="bids"):
    """A provider's latest bid on a job (`bidOf`); `placed_count` counts its bids."""

    TABLE: ClassVar[str] = "bids"
    KEY: ClassVar[tuple[str, ...]] = ("job_id", "provider")
    INDEXES: ClassVar[tuple[tuple[str, ...], ...]] = (("provider",),)

    job_id: int
    provider: Address
    price: Wei
    placed_count: int
    first_placed_at: Timestamp
    placed_at: Timestamp
    accepted: bool
    block_number: int
    tx_hash: str
    log_index: int


class Result(Row, frozen=True, tag="results"):
    TABLE: ClassVar[str] = "results"
    KEY: ClassVar[tuple[str, ...]] = ("job_id",)
    INDEXES: ClassVar[tuple[tuple[str, ...], ...]] = (("provider",),)

    job_id: int
    provider: Address
    result_hash: Hash32
    result_cid: Cid
    challenge_end: Timestamp
    submitted_at: Timestamp
    block_number: int
    tx_hash: str
    log_index: int


class Provider(Row, frozen=True, tag="providers"):
    TABLE: ClassVar[str] = "providers"
    KEY: ClassVar[tuple[str, ...]] = ("address",)
    INDEXES: ClassVar[tuple[tuple[str, ...], ...]] = (("status",),)

    address: Address
    #: active | unbonding | left
    status: State
    stake: Wei
    metadata_cid: Cid
    registered_at: Timestamp
    #: When the stake can be taken out (UnbondingRequested.availableAt), while unbonding.
    unbonding_at: Timestamp | None = None
    active_jobs: int = 0
    slashed_total: Wei = 0
    jobs_done: int = 0
    failures: int = 0
    disputes: int = 0
    block_number: int = 0
    tx_hash: str = ""
    log_index: int = 0


class ProviderEarning(Row, frozen=True, tag="provider_earnings"):
    """What a provider was paid for jobs in one asset (after the fee)."""

    TABLE: ClassVar[str] = "provider_earnings"
    KEY: ClassVar[tuple[str, ...]] = ("provider", "asset")

    provider: Address
    asset: Address
    amount: Wei
    jobs: int
    block_number: int
    tx_hash: str
    log_index: int


class Owed(Row, frozen=True, tag="owed"):
    """`owed[account][asset]` of one contract, from Credited and Withdrawn."""

    TABLE: ClassVar[str] = "owed"
    KEY: ClassVar[tuple[str, ...]] = ("account", "asset", "contract")

    account: Address
    asset: Address
    contract: str
    owed: Wei
    credited_total: Wei
    withdrawn_total: Wei
    block_number: int
    tx_hash: str
    log_index: int


class FeeDay(Row, frozen=True, tag="fees_daily"):
    """Protocol fees charged in one asset on one UTC day (by block timestamp)."""

    TABLE: ClassVar[str] = "fees_daily"
    KEY: ClassVar[tuple[str, ...]] = ("asset", "day")

    asset: Address
    day: Day
    amount: Wei
    count: int
    block_number: int
    tx_hash: str
    log_index: int


class ContractState(Row, frozen=True, tag="contract_state"):
    """Admin state of one contract: pause flag, treasury, parameters."""

    TABLE: ClassVar[str] = "contract_state"
    KEY: ClassVar[tuple[str, ...]] = ("contract",)

    contract: str
    address: Address
    paused: bool = False
    treasury: Address | None = None
    #: ComputeRental: the latest ParamsUpdated, as canonical JSON.
    params: str | None = None
    #: ComputeRental: acceptWindow, snapshotted into each job's accept_deadline at posting.
    accept_window: int | None = None
    #: PromptMarketplace: deliveryWindow.
    delivery_window: int | None = None
    block_number: int = 0
    tx_hash: str = ""
    log_index: int = 0


class AssetAllowance(Row, frozen=True, tag="asset_allowances"):
    TABLE: ClassVar[str] = "asset_allowances"
    KEY: ClassVar[tuple[str, ...]] = ("contract", "asset")

    contract: str
    asset: Address
    allowed: bool
    block_number: int
    tx_hash: str
    log_index: int


class RoleMember(Row, frozen=True, tag="role_members"):
    TABLE: ClassVar[str] = "role_members"
    KEY: ClassVar[tuple[str, ...]] = ("contract", "role", "account")

    contract: str
    role: Hash32
    account: Address
    active: bool
    block_number: int
    tx_hash: str
    log_index: int


#: Every entity row kind the folds produce (the raw event log is written separately).
ROW_TYPES: tuple[type[Row], ...] = (
    Prompt,
    Listing,
    Sale,
    Licence,
    Rating,
    Job,
    Bid,
    Result,
    Provider,
    ProviderEarning,
    Owed,
    FeeDay,
    ContractState,
    AssetAllowance,
    RoleMember,
)
ROW_BY_TABLE: dict[str, type[Row]] = {r.TABLE: r for r in ROW_TYPES}


def row_fields(cls: type[Row]) -> tuple[str, ...]:
    return _FIELDS[cls]


def field_index(cls: type[Row]) -> dict[str, int]:
    """Field name -> position among the row's fields."""
    return _INDEX[cls]


def values_getter(cls: type[Row]) -> Callable[[Row], tuple[Any, ...]]:
    """Row -> tuple of its values in field order (fast, for digests and inserts)."""
    return _VALUES[cls]


def _getter(names: tuple[str, ...]) -> Callable[[Row], tuple[Any, ...]]:
    if len(names) == 1:
        single = operator.attrgetter(names[0])
        return lambda row: (single(row),)
    many: Callable[[Row], tuple[Any, ...]] = operator.attrgetter(*names)
    return many


def field_annotations(cls: type[Row]) -> dict[str, str]:
    """Field name -> its annotation as written (`"Wei | None"`), in field order."""
    return {name: str(cls.__annotations__[name]) for name in cls.__struct_fields__}


_FIELDS: dict[type[Row], tuple[str, ...]] = {cls: cls.__struct_fields__ for cls in ROW_TYPES}
_INDEX: dict[type[Row], dict[str, int]] = {
    cls: {n: i for i, n in enumerate(_FIELDS[cls])} for cls in ROW_TYPES
}
_VALUES: dict[type[Row], Callable[[Row], tuple[Any, ...]]] = {
    cls: msgspec.structs.astuple for cls in ROW_TYPES
}
_KEYS: dict[type[Row], Callable[[Row], tuple[Any, ...]]] = {cls: _getter(cls.KEY) for cls in ROW_TYPES}


def as_dict(row: Row) -> dict[str, Any]:
    return dict(zip(row_fields(type(row)), values_getter(type(row))(row), strict=True))


def from_mapping(cls: type[Row], values: Any) -> Row:
    """A row from a DB result mapping (or any mapping with the field names)."""
    return cls(**{name: _normalise(values[name]) for name in row_fields(cls)})


def _normalise(value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    return value


# ---------------------------------------------------------------- tables

#: An integer primary key: on SQLite `INTEGER PRIMARY KEY`, the table's own rowid.
#: NOTE: SQLite makes only a column declared exactly INTEGER the rowid; a BIGINT key is a second
#: B-tree beside the table, written on every insert and walked on every lookup by id.
ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


_TYPES: dict[str, Callable[[], TypeEngine[Any]]] = {
    "int": sa.BigInteger,
    "bool": sa.Boolean,
    "str": sa.Text,
    "bytes": sa.LargeBinary,
    "Wei": Uint256,
    "Address": lambda: sa.String(42),
    "Hash32": lambda: sa.String(66),
    "Cid": sa.Text,
    "Timestamp": sa.BigInteger,
    "State": lambda: sa.String(16),
    "Day": lambda: sa.String(10),
}


def _column_type(annotation: str) -> tuple[TypeEngine[Any], bool]:
    base, _, rest = annotation.partition(" | ")
    nullable = rest == "None"
    return _TYPES[base](), nullable


def _table_for(cls: type[Row]) -> sa.Table:
    columns: list[sa.Column[Any]] = []
    for name, annotation in field_annotations(cls).items():
        col_type, nullable = _column_type(annotation)
        if name == "tx_hash":
            col_type = sa.String(66)
        if (name,) == cls.KEY and isinstance(col_type, sa.BigInteger):
            col_type = ROWID
        columns.append(sa.Column(name, col_type, primary_key=name in cls.KEY, nullable=nullable))
    table = sa.Table(cls.TABLE, metadata, *columns)
    for index_cols in cls.INDEXES:
        sa.Index(f"ix_{cls.TABLE}_{'_'.join(index_cols)}", *(table.c[c] for c in index_cols))
    # NOTE: no index on block_number: it changes on every update of a row, so it would cost
    # an index write per row change (and PostgreSQL's HOT updates); verify scans whole tables.
    return table


TABLES: dict[type[Row], sa.Table] = {cls: _table_for(cls) for cls in ROW_TYPES}

#: The raw event log: every event the store holds, orphaned ones included and flagged. `id` is
#: the store's notification id (the SSE stream's event id).
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", ROWID, primary_key=True, autoincrement=False),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("block_number", sa.BigInteger, nullable=False),
    sa.Column("block_hash", sa.String(66), nullable=False),
    sa.Column("block_timestamp", sa.BigInteger, nullable=False),
    sa.Column("tx_hash", sa.String(66), nullable=False),
    sa.Column("log_index", sa.BigInteger, nullable=False),
    sa.Column("contract", sa.Text, nullable=False),
    sa.Column("address", sa.String(42), nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    #: The event's fields as canonical JSON (bytes as 0x-hex, integers exact).
    sa.Column("args", sa.Text, nullable=False),
    sa.Column("orphaned", sa.Boolean, nullable=False),
    #: Notification id of the LogOrphaned event that orphaned it.
    sa.Column("orphaned_by", sa.BigInteger, nullable=True),
    sa.Index("ix_events_block_number_log_index", "block_number", "log_index"),
    sa.Index("ix_events_tx_hash", "tx_hash"),
    # NOTE: no index on `event` alone: filter with the contract too (there are two), one index
    # less on the widest, busiest table.
    sa.Index("ix_events_contract_event", "contract", "event"),
)

#: The chained state digest after each folded block (only blocks that carried events).
block_digests = sa.Table(
    "block_digests",
    metadata,
    sa.Column("block_number", ROWID, primary_key=True, autoincrement=False),
    sa.Column("block_hash", sa.String(66), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("rows_changed", sa.Integer, nullable=False),
)

#: Ponder-style undo log: the before-image of each row a block changed, for unfinalized blocks.
undo_log = sa.Table(
    "undo_log",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("block_number", sa.BigInteger, nullable=False),
    sa.Column("tbl", sa.String(32), nullable=False),
    #: Primary key as canonical JSON.
    sa.Column("row_key", sa.Text, nullable=False),
    #: The row before the block changed it, as canonical JSON; NULL when it did not exist.
    sa.Column("before", sa.Text, nullable=True),
    sa.Index("ix_undo_log_block_number", "block_number"),
)

#: What the API shows about the indexer (one row).
indexer_status = sa.Table(
    "indexer_status",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("indexed_head", sa.BigInteger, nullable=True),
    sa.Column("indexed_head_hash", sa.String(66), nullable=True),
    sa.Column("finalized_block", sa.BigInteger, nullable=True),
    sa.Column("node_head", sa.BigInteger, nullable=True),
    sa.Column("lag", sa.BigInteger, nullable=True),
    sa.Column("events_per_second", sa.Float, nullable=False),
    sa.Column("reorg_count", sa.BigInteger, nullable=False),
    sa.Column("last_reorg_block", sa.BigInteger, nullable=True),
    sa.Column("last_reorg_depth", sa.BigInteger, nullable=True),
    sa.Column("last_reorg_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

#: Prompt metadata documents fetched from the content store, one row per metadata CID
#: (indexer/metadata.py writes them; the API's /prompts joins them on `prompts.metadata_cid`).
#: NOTE: not chain-derived state, so not in READ_MODEL_TABLES: no block digest, no undo entry,
#: `rebuild` keeps it. A CID names fixed bytes, so a resolved row never goes stale, and a reorg
#: that drops a mint leaves a row no prompt joins; the chain decides which prompts exist, this
#: table only what their CIDs hold.
prompt_metadata = sa.Table(
    "prompt_metadata",
    metadata,
    sa.Column("metadata_cid", sa.Text, primary_key=True),
    #: resolved | invalid (permanent: not JSON, not the schema, too large, not a CID) |
    #: unavailable (not found, store down: retried with backoff)
    sa.Column("status", sa.String(16), nullable=False),
    #: The document's `schema_version`, when it is a JSON object that names one (also if invalid).
    sa.Column("schema_version", sa.Text, nullable=True),
    #: The document's fields, when resolved (NULL otherwise).
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    #: `content_hash` of the document: the API shows a title only where it equals the token's.
    sa.Column("content_hash", sa.String(66), nullable=True),
    #: casefold(title + "\n" + description), what `/prompts?q=` searches.
    #: NOTE: folded in Python once: SQLite's lower() folds ASCII only, and one folding gives
    #: the same answers on both backends.
    sa.Column("search_text", sa.Text, nullable=True),
    #: Fetches tried so far (the successful one included).
    sa.Column("attempts", sa.Integer, nullable=False),
    #: Unix seconds of the last attempt, and of the successful one.
    sa.Column("attempted_at", sa.BigInteger, nullable=False),
    sa.Column("resolved_at", sa.BigInteger, nullable=True),
    #: When an unavailable document is due again (unix seconds); NULL once final.
    sa.Column("next_attempt_at", sa.BigInteger, nullable=True),
    #: Why it is invalid or unavailable (short text).
    sa.Column("error", sa.Text, nullable=True),
    sa.Index("ix_prompt_metadata_next_attempt_at", "next_attempt_at"),
)

#: Tables rebuilt from the store (everything the projector writes).
READ_MODEL_TABLES: tuple[sa.Table, ...] = (*TABLES.values(), events, block_digests, undo_log)
