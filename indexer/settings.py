"""Settings of the indexer deployable (`ascendnet indexer ...`), from ASCENDNET_* variables."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from ascendnet.errors import ConfigError
from ascendnet.settings import BaseAscendSettings

Finality = Literal["tag", "confirmations"]


class IndexerSettings(BaseAscendSettings):
    """Where to read the chain from and where the event store and read models live.

    Environment: ASCENDNET_DATABASE_URL, ASCENDNET_RPC_URLS (comma-separated or a JSON list),
    ASCENDNET_FINALITY, ASCENDNET_CONFIRMATIONS, ASCENDNET_MANIFEST, ...
    """

    #: SQLAlchemy URL of the database that holds both the event store and the read models.
    #: Empty means a SQLite file under `data_dir` (`<data_dir>/indexer.sqlite3`).
    database_url: str = ""
    #: RPC endpoints, tried in order with failover. Empty means `[rpc_url]`.
    rpc_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: "tag": blocks at or below the node's `finalized` block are final.
    #: "confirmations": blocks `confirmations` below the head are final.
    finality: Finality = "tag"
    confirmations: int = Field(default=12, ge=0)
    #: Initial eth_getLogs block range (adapted up and down at run time).
    getlogs_blocks: int = Field(default=2_000, ge=1)
    #: Most blocks one eth_getLogs call may span.
    max_getlogs_blocks: int = Field(default=50_000, ge=1)
    #: Most store events the projector folds per transaction.
    projector_batch_events: int = Field(default=5_000, ge=1)
    #: Seconds between head polls while following.
    poll_interval: float = Field(default=2.0, gt=0)

    @field_validator("rpc_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [u.strip() for u in text.split(",") if u.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_outside_local(self) -> IndexerSettings:
        # NOTE: same name as the base validator, so it replaces it: the indexer only reads the
        # chain and holds no keys, so it needs no keystore outside local.
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'indexer.sqlite3'}"
        if not self.rpc_urls:
            self.rpc_urls = [self.rpc_url]
        if self.max_getlogs_blocks < self.getlogs_blocks:
            raise ConfigError(
                f"ASCENDNET_MAX_GETLOGS_BLOCKS ({self.max_getlogs_blocks}) is below "
                f"ASCENDNET_GETLOGS_BLOCKS ({self.getlogs_blocks}); raise it or lower the initial range."
            )
        if self.env != "local" and self.finality == "confirmations" and self.confirmations < 2:
            raise ConfigError(
                f"ASCENDNET_CONFIRMATIONS={self.confirmations} is unsafe on {self.env}: a one-block reorg "
                "would already be deeper than finality. Use ASCENDNET_FINALITY=tag or more confirmations."
            )
        return self
