"""Settings shared by every AscendNet deployable, from the environment (prefix ASCENDNET_)
and an optional .env file. Each deployable extends `BaseAscendSettings` with its own fields."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ascendnet.errors import ConfigError

Environment = Literal["local", "testnet", "mainnet"]


class BaseAscendSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASCENDNET_", env_file=".env", extra="ignore")

    #: "local" allows dev keys and dev defaults; anything else refuses them.
    env: Environment = "local"
    data_dir: Path = Path(".data")
    rpc_url: str = "http://127.0.0.1:8545"
    #: Deployment manifest; default deployments/<chain id>.json.
    manifest: Path | None = None
    keystore: Path | None = None
    password_file: Path | None = None
    log_format: Literal["auto", "json", "pretty"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _refuse_unsafe_outside_local(self) -> BaseAscendSettings:
        if self.env != "local" and self.keystore is None:
            raise ConfigError(
                f"ASCENDNET_ENV={self.env} needs an encrypted keystore (ASCENDNET_KEYSTORE); "
                "the public dev key is only for a local chain."
            )
        return self


class ChainSettings(BaseAscendSettings):
    """Settings of the chain commands (`chain up`, `deploy`)."""
