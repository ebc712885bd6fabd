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
    admin_token: str | None = None
    catalog: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    default_rate_limit: int = Field(default=600, ge=1)
    hold_ttl_seconds: int = Field(default=600, ge=1)
    hold_sweep_seconds: float = Field(default=5.0, gt=0)
    log_level: str = "INFO"

    @field_validator("redis_url", "admin_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
