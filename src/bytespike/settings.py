"""Process configuration, read from the environment once at start-up and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("data") / "bytespike.db"


class Settings(BaseSettings):
    """Every knob of a bytespike process; names map to `BYTESPIKE_*` variables."""

    model_config = SettingsConfigDict(env_prefix="BYTESPIKE_", extra="ignore")

    database_url: str = Field(default=f"sqlite:///{DEFAULT_SQLITE_PATH}")
    redis_url: str | None = None
    # Namespaces this deployment's keys, so two deployments can share one Redis database.
    redis_prefix: str = Field(default="bytespike", min_length=1)
    admin_token: str | None = None
    catalog: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    default_rate_limit: int = Field(default=600, ge=1)
    hold_ttl_seconds: int = Field(default=600, ge=1)
    hold_sweep_seconds: float = Field(default=5.0, gt=0)
    log_level: str = "INFO"
    # Encrypts webhook signing secrets at rest; comma-separated to rotate (first one seals).
    secret_key: str | None = None
    # Dev/test only: lets webhook URLs be plain http and resolve to loopback/private addresses.
    webhook_allow_private: bool = False
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Deliveries one dispatcher claims at a time; smaller spreads work across dispatchers.
    webhook_batch: int = Field(default=50, ge=1, le=1000)

    # Upstream providers: time to connect, and the longest silence between two reads.
    upstream_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    upstream_read_timeout_seconds: float = Field(default=600.0, gt=0)
    # Keep-alive connections per upstream host.
    upstream_pool_size: int = Field(default=100, ge=1)

    @field_validator("redis_url", "admin_token", "secret_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
