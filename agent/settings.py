"""The agent's settings: environment (prefix ASCENDNET_, nested with __) and .env."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from agent.jobspec import AgentPolicy
from ascendnet.prompts.seller_keys import DEFAULT_PATH as SELLER_KEYS_PATH
from ascendnet.settings import BaseAscendSettings
from ascendnet.storage.config import StorageConfig


class AgentSettings(BaseAscendSettings):
    """Settings of `ascendnet agent run|register`.

    Examples: ``ASCENDNET_RPC_URL``, ``ASCENDNET_KEYSTORE``, ``ASCENDNET_MIN_PRICE_WEI``,
    ``ASCENDNET_POLICY__ALLOWED_IMAGES='["sha256:..."]'``, ``ASCENDNET_STORAGE__BACKEND=kubo``.
    """

    model_config = SettingsConfigDict(
        env_prefix="ASCENDNET_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    data_dir: Path = Path(".data/agent")
    #: The lowest price (in the job's asset base units) this agent bids.
    min_price_wei: int = Field(1, ge=1)
    #: Bid this share of the job's escrow (basis points), never below min_price_wei.
    bid_share_bps: int = Field(10_000, ge=1, le=10_000)
    #: Payment assets the agent accepts: "native" and/or ERC-20 addresses.
    assets: list[str] = Field(default_factory=lambda: ["native"])
    max_concurrent_jobs: int = Field(2, ge=1, le=64)
    #: Unaccepted bids held at once, beyond running jobs.
    max_open_bids: int = Field(8, ge=1)
    confirmations: int = Field(2, ge=0, description="Blocks before the watcher's cursor moves past one.")
    poll_interval: float = Field(0.1, gt=0, le=60)
    #: Withdraw an asset once at least this much of it is owed.
    withdraw_threshold_wei: int = Field(10**15, ge=1)
    #: Stake sent by `agent register` (wei); 0 means the contract's minimum.
    stake_wei: int = Field(0, ge=0)
    endpoint: str | None = None
    #: Image used for the sandbox's outputs holder; default: the locally built busybox image.
    helper_image: str | None = None
    policy: AgentPolicy = Field(default_factory=AgentPolicy)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    #: The seller key store of `ascendnet prompt mint`; when it exists, the agent delivers the
    #: licence keys of those prompts (agent/delivery.py).
    seller_keys: Path = SELLER_KEYS_PATH

    @property
    def journal_path(self) -> Path:
        return self.data_dir / "journal.db"

    @property
    def status_path(self) -> Path:
        """Rewritten every second by `agent run`; read by `ascendnet status` and `ascendnet dev`."""
        return self.data_dir / "agent-status.json"

    @property
    def delivery_journal_path(self) -> Path:
        return self.data_dir / "deliveries.db"
