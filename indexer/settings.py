"""Settings of the indexer deployable (`ascendnet indexer ...`), from ASCENDNET_* variables."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from ascendnet.errors import ConfigError
from ascendnet.settings import BaseAscendSettings
from ascendnet.storage import ContentStore, StorageConfig, open_store

Finality = Literal["tag", "confirmations"]


class IndexerSettings(BaseAscendSettings):
    """Where to read the chain from and where the event store and read models live.

    Environment: ASCENDNET_DATABASE_URL, ASCENDNET_RPC_URLS (comma-separated or a JSON list),
    ASCENDNET_FINALITY, ASCENDNET_CONFIRMATIONS, ASCENDNET_MANIFEST, ASCENDNET_METADATA_RESOLVE,
    ``ASCENDNET_STORAGE__BACKEND=kubo``, ...
    """

    model_config = SettingsConfigDict(
        env_prefix="ASCENDNET_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

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
    #: The content store prompt metadata documents are read from (the local one lives in
    #: `<data_dir>/content`, where `ascendnet prompt mint` stores them by default).
    storage: StorageConfig = Field(default_factory=StorageConfig)
    #: Whether `indexer run` resolves prompt metadata documents once it follows the head.
    metadata_resolve: bool = True
    #: Most documents `indexer run` fetches between two steps.
    metadata_batch: int = Field(default=16, ge=1, le=1_000)
    #: Seconds one fetch may wait on a Kubo store (unless `storage.kubo_timeout_seconds` is
    #: lower); `indexer run` starts no further fetch once a call has spent this long.
    metadata_timeout: float = Field(default=5.0, gt=0)

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

    def metadata_store(self) -> ContentStore:
        """The content store metadata documents are fetched from: `storage`, each Kubo request
        bounded by `metadata_timeout` as well."""
        timeout = min(self.storage.kubo_timeout_seconds, self.metadata_timeout)
        return open_store(self.storage.model_copy(update={"kubo_timeout_seconds": timeout}), self.data_dir)

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
