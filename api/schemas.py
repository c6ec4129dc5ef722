"""Response models: what each endpoint answers, with examples for the OpenAPI document.

Conventions: amounts are uint256 base units (wei) as decimal strings, since JSON numbers lose
precision above 2**53; addresses are EIP-55 checksummed; hashes are lower-case 0x-hex; times
are block timestamps (Unix seconds). `last_change` names the log that last changed a row.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from api.validation import EXAMPLE_ADDRESS, EXAMPLE_HASH, NATIVE

T = TypeVar("T")

#: A uint256 amount in base units, serialized as a decimal string.
Amount = Annotated[
    int,
    PlainSerializer(str, return_type=str, when_used="always"),
    Field(json_schema_extra={"pattern": "^[0-9]+$", "examples": ["1000000000000000000"]}),
]
Address = Annotated[str, Field(examples=[EXAMPLE_ADDRESS], pattern="^0x[0-9a-fA-F]{40}$")]
Hash = Annotated[str, Field(examples=[EXAMPLE_HASH], pattern="^0x[0-9a-f]{64}$")]
Timestamp = Annotated[int, Field(description="Block timestamp, Unix seconds.", examples=[1_764_000_000])]

ONE_ETH = "1000000000000000000"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Meta(_Model):
    """Which chain state the response reflects."""

    chain_id: int | None = Field(description="Chain the indexer follows (null before it first reported).")
    indexed_head: int | None = Field(description="The block the read models reflect (also `X-Indexed-Head`).")
    finalized_block: int | None = Field(
        description="The highest reflected block that is final (also `X-Finalized-Block`)."
    )


class Page(_Model, Generic[T]):
    """A page of a listing, newest first unless `sort` says otherwise."""

    data: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    meta: Meta


class Item(_Model, Generic[T]):
    data: T
    meta: Meta


class Provenance(_Model):
    """A log of one of the contracts: where a row's latest change (or the row itself) came from."""

    block_number: int
    tx_hash: Hash
    log_index: int


# ---------------------------------------------------------------- market


class ListingTerms(_Model):
    seq: int = Field(description="The listing's number among the prompt's listings (see /listings).")
    asset: Address
    price: Amount


class LicenceTerms(_Model):
    asset: Address
    price: Amount


class RatingSummary(_Model):
    count: int
    total: int = Field(description="Sum of all scores (1 to 5 each).")
    average: float | None = Field(description="Mean score, null while unrated.")


MetadataStatus = Literal["resolved", "invalid", "unavailable", "mismatch"]


class PromptMetadata(_Model):
    """The prompt's public metadata document (docs/PROMPT_SCHEMA.md), as the indexer fetched it
    from the content store."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "status": "resolved",
                    "title": "Haiku master",
                    "description": "Writes one surprising haiku about any topic.",
                    "error": None,
                },
                {
                    "status": "unavailable",
                    "title": None,
                    "description": None,
                    "error": "content bafkreigh2akiscaildc6en5ynfgqgvfpxaoafmqs6pbwbbbmdshhaqjfwm is not "
                    "in the Kubo node at /ip4/127.0.0.1/tcp/5001/http",
                },
            ]
        },
    )

    status: MetadataStatus = Field(
        description="`resolved`: a valid `ascendnet.prompt/v1` document; `invalid`: for good (not a "
        "CID, too large, not JSON, not the schema); `unavailable`: not found or the store was down, "
        "retried with backoff; `mismatch`: a valid document whose `content_hash` is not this "
        "token's on-chain content hash, so it does not describe this prompt (title and "
        "description withheld)."
    )
    title: str | None = Field(
        description="The document's title (one line, 1 to 120 characters), when resolved."
    )
    description: str | None = Field(
        description="The document's description (up to 5,000 characters, may span lines), when resolved."
    )
    error: str | None = Field(description="Why it is invalid, unavailable or a mismatch; null when resolved.")


class Prompt(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "token_id": 1,
                    "creator": EXAMPLE_ADDRESS,
                    "owner": EXAMPLE_ADDRESS,
                    "metadata_cid": "bafkreigh2akiscaildc6en5ynfgqgvfpxaoafmqs6pbwbbbmdshhaqjfwm",
                    "content_hash": EXAMPLE_HASH,
                    "royalty_bps": 500,
                    "minted_at": 1_764_000_000,
                    "metadata": {
                        "status": "resolved",
                        "title": "Haiku master",
                        "description": "Writes one surprising haiku about any topic.",
                        "error": None,
                    },
                    "listed": True,
                    "listing": {"seq": 1, "asset": NATIVE, "price": ONE_ETH},
                    "licence_terms": {"asset": NATIVE, "price": "100000000000000000"},
                    "licences_sold": 3,
                    "sales_count": 0,
                    "rating": {"count": 2, "total": 9, "average": 4.5},
                    "last_change": {"block_number": 120, "tx_hash": EXAMPLE_HASH, "log_index": 2},
                }
            ]
        },
    )

    token_id: int = Field(description="The NFT's token id; ids follow minting order.")
    creator: Address | None = Field(description="Null only between a mint's Transfer and PromptMinted.")
    owner: Address = Field(description="The NFT's current owner.")
    metadata_cid: str | None = Field(
        description="CID of the prompt's metadata document (docs/PROMPT_SCHEMA.md)."
    )
    content_hash: Hash | None = Field(description="sha256 of the prompt's plaintext, as minted.")
    royalty_bps: int | None = Field(description="ERC-2981 royalty on NFT sales, in basis points.")
    minted_at: Timestamp | None
    metadata: PromptMetadata | None = Field(
        description="The metadata document's title and description, once the indexer fetched it from "
        "the content store; null until then."
    )
    listed: bool = Field(description="Listed for sale now.")
    listing: ListingTerms | None = Field(description="The active NFT listing, if any.")
    licence_terms: LicenceTerms | None = Field(description="Licence price while licences are offered.")
    licences_sold: int = Field(description="Licences bought, refunded ones included.")
    sales_count: int = Field(description="Times the NFT was sold through a listing.")
    rating: RatingSummary = Field(description="Ratings by licence holders.")
    last_change: Provenance = Field(description="The log that last changed the prompt's on-chain state.")


ListingState = Literal["active", "cancelled", "sold", "replaced"]


class Listing(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "token_id": 1,
                    "seq": 2,
                    "seller": EXAMPLE_ADDRESS,
                    "asset": NATIVE,
                    "price": ONE_ETH,
                    "state": "sold",
                    "listed_at": 1_764_000_000,
                    "closed_at": 1_764_000_120,
                    "buyer": EXAMPLE_ADDRESS,
                    "last_change": {"block_number": 130, "tx_hash": EXAMPLE_HASH, "log_index": 5},
                }
            ]
        },
    )

    token_id: int
    seq: int
    seller: Address
    asset: Address
    price: Amount
    state: ListingState
    listed_at: Timestamp
    closed_at: Timestamp | None
    buyer: Address | None = Field(description="Who bought it, when sold.")
    last_change: Provenance


class Sale(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "token_id": 1,
                    "listing_seq": 2,
                    "seller": EXAMPLE_ADDRESS,
                    "buyer": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                    "asset": NATIVE,
                    "price": ONE_ETH,
                    "fee": "30000000000000000",
                    "royalty": "50000000000000000",
                    "royalty_receiver": EXAMPLE_ADDRESS,
                    "seller_proceeds": "920000000000000000",
                    "sold_at": 1_764_000_120,
                    "log": {"block_number": 130, "tx_hash": EXAMPLE_HASH, "log_index": 5},
                }
            ]
        },
    )

    token_id: int
    listing_seq: int
    seller: Address
    buyer: Address
    asset: Address
    price: Amount
    fee: Amount
    royalty: Amount
    royalty_receiver: Address
    seller_proceeds: Amount
    sold_at: Timestamp
    log: Provenance = Field(description="The PromptSold log.")


LicenceState = Literal["pending", "delivered", "refunded"]


class Licence(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "license_id": 1,
                    "token_id": 1,
                    "buyer": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
                    "seller": EXAMPLE_ADDRESS,
                    "asset": NATIVE,
                    "price": "200000000000000000",
                    "delivery_deadline": 1_764_003_600,
                    "state": "delivered",
                    "rated": True,
                    "encrypted_key": "0x04abcd",
                    "seller_proceeds": "194000000000000000",
                    "fee": "6000000000000000",
                    "refund": None,
                    "purchased_at": 1_764_000_000,
                    "settled_at": 1_764_000_060,
                    "last_change": {"block_number": 140, "tx_hash": EXAMPLE_HASH, "log_index": 0},
                }
            ]
        },
    )

    license_id: int
    token_id: int
    buyer: Address
    seller: Address = Field(description="The token owner at purchase: the only account that can deliver.")
    asset: Address
    price: Amount
    delivery_deadline: Timestamp
    state: LicenceState
    rated: bool
    encrypted_key: str | None = Field(
        description="The content key encrypted to the buyer (0x-hex), once delivered."
    )
    seller_proceeds: Amount | None
    fee: Amount | None
    refund: Amount | None
    purchased_at: Timestamp
    settled_at: Timestamp | None
    last_change: Provenance


class Rating(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "license_id": 1,
                    "token_id": 1,
                    "rater": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
                    "score": 4,
                    "review_cid": "bafkreireview",
                    "rated_at": 1_764_000_200,
                    "log": {"block_number": 141, "tx_hash": EXAMPLE_HASH, "log_index": 0},
                }
            ]
        },
    )

    license_id: int
    token_id: int
    rater: Address
    score: int = Field(ge=1, le=5)
    review_cid: str
    rated_at: Timestamp
    log: Provenance = Field(description="The PromptRated log.")


# ---------------------------------------------------------------- compute

JobState = Literal[
    "open", "assigned", "submitted", "completed", "cancelled", "expired", "failed", "disputed", "resolved"
]


class JobSummary(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "job_id": 7,
                    "client": EXAMPLE_ADDRESS,
                    "asset": NATIVE,
                    "max_amount": ONE_ETH,
                    "amount": "600000000000000000",
                    "state": "assigned",
                    "posted_at": 1_764_000_000,
                    "bid_deadline": 1_764_000_600,
                    "bid_count": 2,
                    "provider": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                    "price": "600000000000000000",
                    "settled_at": None,
                    "last_change": {"block_number": 150, "tx_hash": EXAMPLE_HASH, "log_index": 1},
                }
            ]
        },
    )

    job_id: int = Field(description="Job ids follow posting order, so they sort by posted block.")
    client: Address
    asset: Address
    max_amount: Amount = Field(description="The escrow the client posted: the most it pays.")
    amount: Amount = Field(
        description="What is escrowed now: max_amount while open, the price once assigned."
    )
    state: JobState
    posted_at: Timestamp
    bid_deadline: Timestamp
    bid_count: int
    provider: Address | None
    price: Amount | None = Field(description="The accepted bid.")
    settled_at: Timestamp | None
    last_change: Provenance


class Bid(_Model):
    provider: Address
    price: Amount = Field(description="The provider's latest bid.")
    placed_count: int = Field(description="How many bids it placed (each replaces the previous).")
    first_placed_at: Timestamp
    placed_at: Timestamp
    accepted: bool
    last_change: Provenance


class Deadlines(_Model):
    bid: Timestamp = Field(description="Bids are taken until then.")
    accept: Timestamp | None = Field(description="A bid can be accepted until then.")
    execution: Timestamp | None = Field(description="The provider must submit by then (once assigned).")
    challenge_end: Timestamp | None = Field(description="The client may dispute until then (once submitted).")
    dispute: Timestamp | None = Field(description="The arbiter's deadline (once disputed).")


class Assignment(_Model):
    provider: Address
    price: Amount


class JobResult(_Model):
    provider: Address
    result_hash: Hash
    result_cid: str
    challenge_end: Timestamp
    submitted_at: Timestamp
    log: Provenance = Field(description="The ResultSubmitted log.")


class Dispute(_Model):
    reason_cid: str | None
    deadline: Timestamp | None
    arbiter: Address | None = Field(description="Who resolved it (null on a timeout or while open).")
    provider_bps: int | None = Field(description="The provider's share in basis points, once resolved.")


class Settlement(_Model):
    provider_payout: Amount | None = Field(description="What the provider was credited, after the fee.")
    fee: Amount | None
    client_refund: Amount = Field(description="Everything credited back to the client.")
    slashed: Amount = Field(description="Provider stake slashed to the client (ETH).")
    completed_by_client: bool | None
    settled_at: Timestamp | None


class JobDetail(JobSummary):
    model_config = ConfigDict(extra="forbid", json_schema_extra={})

    spec_hash: Hash
    spec_cid: str
    execution_timeout: int = Field(description="Seconds the provider has once assigned.")
    deadlines: Deadlines
    bids: list[Bid] = Field(description="Every provider's latest bid, lowest price first (at most 500).")
    bids_truncated: bool
    assignment: Assignment | None
    result: JobResult | None
    dispute: Dispute | None
    settlement: Settlement


ProviderStatus = Literal["active", "unbonding", "left"]


class Provider(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                    "status": "active",
                    "stake": "2000000000000000000",
                    "metadata_cid": "bafkreiprovidercaps",
                    "registered_at": 1_764_000_000,
                    "unbonding_at": None,
                    "active_jobs": 1,
                    "slashed_total": "0",
                    "jobs_done": 9,
                    "failures": 1,
                    "disputes": 0,
                    "success_rate": 0.9,
                    "last_change": {"block_number": 150, "tx_hash": EXAMPLE_HASH, "log_index": 1},
                }
            ]
        },
    )

    address: Address
    status: ProviderStatus
    stake: Amount = Field(description="Native ETH staked.")
    metadata_cid: str = Field(description="CID of the capabilities document (GPU, VRAM, prices, endpoint).")
    registered_at: Timestamp
    unbonding_at: Timestamp | None = Field(description="When the stake can be taken out, while unbonding.")
    active_jobs: int
    slashed_total: Amount
    jobs_done: int
    failures: int
    disputes: int
    success_rate: float | None = Field(
        description="jobs_done / (jobs_done + failures); null before any outcome."
    )
    last_change: Provenance


class Earning(_Model):
    asset: Address
    amount: Amount = Field(description="Paid to the provider for jobs in this asset, after the fee.")
    jobs: int


class ProviderDetail(Provider):
    model_config = ConfigDict(extra="forbid", json_schema_extra={})

    earnings: list[Earning]


# ---------------------------------------------------------------- accounts and fees


class OwedEntry(_Model):
    asset: Address
    contract: Literal["ComputeRental", "PromptMarketplace"]
    owed: Amount = Field(description="Withdrawable now (`owed[account][asset]`).")
    credited_total: Amount
    withdrawn_total: Amount


class OwedTotal(_Model):
    asset: Address
    owed: Amount = Field(description="Owed by both contracts together.")


class ComputeActivity(_Model):
    jobs_posted: int
    jobs_as_provider: int
    bids_placed: int
    provider: Provider | None = Field(description="The provider registration, if any.")
    recent_jobs: list[JobSummary] = Field(description="Up to 10 latest jobs it posted or was assigned.")


class MarketActivity(_Model):
    prompts_created: int
    prompts_owned: int
    listings_active: int
    licences_bought: int
    licences_sold: int
    sales_as_seller: int
    purchases: int
    ratings_given: int


class Account(_Model):
    address: Address
    owed: list[OwedEntry]
    owed_by_asset: list[OwedTotal]
    compute: ComputeActivity
    market: MarketActivity


Period = Literal["day", "week"]


class FeeBucket(_Model):
    asset: Address
    period: Period
    period_start: date = Field(description="UTC day, or the Monday that starts the ISO week.")
    amount: Amount
    count: int = Field(description="Fees charged (settlements) in the period.")


class FeeTotal(_Model):
    asset: Address
    amount: Amount
    count: int


class FeePage(_Model):
    """Protocol fees per asset and period, newest period first, and totals over the filter."""

    data: list[FeeBucket]
    totals: list[FeeTotal]
    next_cursor: str | None
    meta: Meta


# ---------------------------------------------------------------- audit


def _decoded(value: Any) -> Any:
    """Stored JSON text a route passes through as `msgspec.Raw`, as the value it holds."""
    return msgspec.json.decode(value) if isinstance(value, msgspec.Raw) else value


#: A JSON object; a route may give it as its stored text (`msgspec.Raw`, which the fast
#: encoder copies into the answer), and pydantic, validating, reads that text.
StoredJSON = Annotated[dict[str, Any], BeforeValidator(_decoded)]


class Event(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "chain_id": 31337,
                    "block_number": 120,
                    "block_hash": EXAMPLE_HASH,
                    "block_timestamp": 1_764_000_000,
                    "tx_hash": EXAMPLE_HASH,
                    "log_index": 3,
                    "contract": "ComputeRental",
                    "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                    "event": "JobPosted",
                    "args": {"job_id": "7", "client": EXAMPLE_ADDRESS, "amount": ONE_ETH},
                    "orphaned": False,
                    "orphaned_by": None,
                }
            ]
        },
    )

    id: int = Field(description="Global store position (also the stream's event id).")
    chain_id: int
    block_number: int
    block_hash: Hash
    block_timestamp: Timestamp
    tx_hash: Hash
    log_index: int
    contract: Literal["ComputeRental", "PromptMarketplace"]
    address: Address = Field(description="The emitting contract.")
    event: str
    args: StoredJSON = Field(description="The event's fields; integers as decimal strings, bytes as 0x-hex.")
    orphaned: bool = Field(description="A reorg removed its block from the canonical chain.")
    orphaned_by: int | None = Field(description="Store position of the compensating LogOrphaned event.")


class Block(_Model):
    number: int
    hash: Hash | None = Field(description="The canonical block hash, when the indexer stored it.")
    digest: str = Field(description="The chained read-model state digest after this block (sha256 hex).")
    digest_block: int | None = Field(
        description="The block that digest was computed at: the last one at or below `number` with events."
    )
    event_count: int
    events: list[Event] = Field(description="Its events in log order (at most 500; see /events for more).")
    events_truncated: bool


class LastReorg(_Model):
    block: int | None = Field(description="First block the reorg replaced.")
    depth: int | None
    at: datetime | None


class Status(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "started": True,
                    "chain_id": 31337,
                    "indexed_head": 1200,
                    "indexed_head_hash": EXAMPLE_HASH,
                    "finalized_block": 1136,
                    "node_head": 1201,
                    "lag": 1,
                    "events_per_second": 850.5,
                    "read_models_block": 1200,
                    "caught_up": True,
                    "reorg_count": 1,
                    "last_reorg": {"block": 1100, "depth": 2, "at": "2026-11-24T10:00:00Z"},
                    "updated_at": "2026-11-24T10:05:00Z",
                }
            ]
        },
    )

    started: bool = Field(description="Whether the indexer has reported at all.")
    chain_id: int | None
    indexed_head: int | None = Field(description="Highest block the event store holds.")
    indexed_head_hash: Hash | None
    finalized_block: int | None
    node_head: int | None
    lag: int | None = Field(description="node_head - indexed_head when the indexer last reported.")
    events_per_second: float | None
    read_models_block: int | None = Field(description="The block the read models reflect.")
    caught_up: bool | None = Field(description="The read models include every stored event.")
    reorg_count: int | None
    last_reorg: LastReorg | None
    updated_at: datetime | None


class Health(_Model):
    status: Literal["ok"]


class Ready(_Model):
    ready: bool
    reason: str | None = Field(description="Why not, when not ready.")
    lag: int | None
    max_lag: int
    read_models_block: int | None


class Problem(_Model):
    location: str = Field(examples=["query.limit"])
    reason: str = Field(examples=["Input should be less than or equal to 500"])


class ErrorBody(_Model):
    """Every error answer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "error": "invalid_request",
                    "message": "query.limit: Input should be less than or equal to 500",
                    "problems": [
                        {"location": "query.limit", "reason": "Input should be less than or equal to 500"}
                    ],
                }
            ]
        },
    )

    error: str = Field(description="Machine-readable code: invalid_request, not_found, rate_limited, ...")
    message: str
    problems: list[Problem] = Field(default_factory=list)


def not_found(description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entry of a route that answers 404."""
    return {404: {"description": description, "model": ErrorBody}}
