"""Request values: addresses (any case in, checksummed out), 0x hashes, ids, amounts, days.

Each is an `Annotated` type carrying its OpenAPI pattern and examples, so the document states
exactly what the server accepts: whatever matches the pattern is valid input.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from eth_utils.address import to_checksum_address
from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator

from chain import artifacts
from chain.events import EVENT_TYPES

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
HASH_PATTERN = r"^0x[0-9a-fA-F]{64}$"
#: Amounts are uint256 in base units, written as decimal strings (JSON numbers lose precision).
#: Filters take at most 77 digits, below 2**256 whatever the digits.
AMOUNT_PATTERN = r"^[0-9]{1,77}$"
#: Ids and block numbers are stored as 64-bit integers.
MAX_INT64 = 2**63 - 1
#: Free text: printable, without control characters (PostgreSQL refuses NUL in text).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"

NATIVE = "0x0000000000000000000000000000000000000000"
EXAMPLE_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
EXAMPLE_HASH = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060"

CONTRACT_NAMES: tuple[str, ...] = tuple(artifacts.PROTOCOL_CONTRACTS)
EVENT_NAMES: tuple[str, ...] = tuple(sorted(EVENT_TYPES))


def checksum(value: str) -> str:
    """An address in any case (matching ADDRESS_PATTERN) as its EIP-55 checksummed form, the
    form the read models store."""
    return str(to_checksum_address(value.lower()))


_ADDRESS_DOC = "An address, in any letter case; answers use the EIP-55 checksummed form."

#: An optional address filter in the query string.
AddressQuery = Annotated[
    str | None,
    Query(pattern=ADDRESS_PATTERN, description=_ADDRESS_DOC, examples=[EXAMPLE_ADDRESS]),
    AfterValidator(lambda v: None if v is None else checksum(v)),
]
#: An optional asset filter: an ERC-20 address, or 0x000…000 for native ETH.
AssetQuery = Annotated[
    str | None,
    Query(
        pattern=ADDRESS_PATTERN,
        description="Payment asset: an ERC-20 address, or 0x000…000 (40 zeros) for native ETH.",
        examples=[NATIVE],
    ),
    AfterValidator(lambda v: None if v is None else checksum(v)),
]
#: An address in the path.
AddressPath = Annotated[
    str,
    Path(pattern=ADDRESS_PATTERN, description=_ADDRESS_DOC, examples=[EXAMPLE_ADDRESS]),
    AfterValidator(checksum),
]
#: An optional 32-byte hash (0x + 64 hex digits, any case).
HashQuery = Annotated[
    str | None,
    Query(
        pattern=HASH_PATTERN,
        description="A 32-byte hash as 0x + 64 hex digits, any case.",
        examples=[EXAMPLE_HASH],
    ),
    AfterValidator(lambda v: None if v is None else v.lower()),
]
#: An optional uint256 amount bound (decimal string of base units).
AmountQuery = Annotated[
    str | None,
    Query(
        pattern=AMOUNT_PATTERN,
        description="An amount in the asset's base units (wei), as decimal digits.",
        examples=["1000000000000000000"],
    ),
]


_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_day(value: Any) -> Any:
    # NOTE: pydantic also reads numbers as Unix times ("0" is 1970-01-01); a day filter takes
    # the ISO form only.
    if isinstance(value, str) and not _ISO_DAY.match(value):
        raise ValueError("not a day: write it as YYYY-MM-DD")
    return value


def day_query(description: str) -> Any:
    return Query(description=description, examples=["2026-11-24"])


#: An optional UTC day, YYYY-MM-DD only.
DayFilter = Annotated[date | None, BeforeValidator(_iso_day)]


def id_path(what: str) -> object:
    """A positive 64-bit id in the path."""
    return Path(ge=1, le=MAX_INT64, description=f"The {what} (starts at 1).", examples=[1])


def block_query(description: str) -> object:
    return Query(ge=0, le=MAX_INT64, description=description)
