"""Process configuration, read from the environment once at start-up and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("data") / "bytespike.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The schemes `db.engine.async_url` maps to a driver we ship (asyncpg, aiosqlite).
_POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+asyncpg://")
_SQLITE_SCHEMES = ("sqlite:///", "sqlite+aiosqlite:///")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Settings(BaseSettings):
    """Every knob of a bytespike process; names map to `BYTESPIKE_*` variables."""

    model_config = SettingsConfigDict(env_prefix="BYTESPIKE_", extra="ignore")

    database_url: str = Field(default=f"sqlite:///{DEFAULT_SQLITE_PATH}")
    # Connections each process keeps to PostgreSQL, and as many more for a burst (closed when
    # they come back to a pool already holding its size idle); on SQLite, its reading
    # connections. Its group-commit batches use one more of their own.
    db_pool_size: int = Field(default=10, ge=1, le=500)
    redis_url: str | None = None
    # Namespaces this deployment's keys, so two deployments can share one Redis database.
    redis_prefix: str = Field(default="bytespike", min_length=1)
    admin_token: str | None = None
    # Where people reach this server: the base of the console's invite links.
    public_url: str = "http://127.0.0.1:8080"
    catalog: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    default_rate_limit: int = Field(default=600, ge=1)
    # Without Redis: a file whose counts every process opening it shares (ratelimit/shared.py).
    # `serve --workers N` makes one of its own for its workers when this is unset.
    rate_limit_file: Path | None = None
    hold_ttl_seconds: int = Field(default=600, ge=1)
    hold_sweep_seconds: float = Field(default=5.0, gt=0)
    # On SIGTERM: how long calls in flight may run on (streams past it are cut and settled
    # as client_closed), and then how long the webhook outbox may drain (`serve --grace`).
    grace_seconds: int = Field(default=30, ge=0)
    log_level: str = "INFO"
    # Encrypts webhook signing secrets at rest; comma-separated to rotate (first one seals).
    secret_key: str | None = None
    # Dev/test only: lets webhook URLs be plain http and resolve to loopback/private addresses.
    webhook_allow_private: bool = False
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Deliveries one dispatcher claims at a time; smaller spreads work across dispatchers.
    webhook_batch: int = Field(default=50, ge=1, le=1000)

    # Request bodies: refused with 413 past these sizes (checked on Content-Length and on the
    # bytes as they arrive), with 408 when not all sent within the timeout.
    model_body_limit_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    api_body_limit_bytes: int = Field(default=1024 * 1024, ge=1024)
    body_timeout_seconds: float = Field(default=60.0, gt=0)

    # Upstream providers: time to connect, and the longest silence between two reads.
    upstream_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    upstream_read_timeout_seconds: float = Field(default=600.0, gt=0)
    # Keep-alive connections per upstream host.
    upstream_pool_size: int = Field(default=100, ge=1)

    # GET /metrics requires `Authorization: Bearer <this>` when set; open otherwise.
    metrics_token: str | None = None
    # Traces to this OTLP/HTTP collector (a base URL: /v1/traces is added); OpenTelemetry's
    # OTEL_EXPORTER_OTLP_ENDPOINT turns them on as well (bytespike/traces).
    otlp_endpoint: str | None = None
    # Tries of a model's deployments per call, the first included (proxy/fallback.py); a
    # deployment failing this many times in a row is skipped for the cool-down, per process.
    upstream_attempts: int = Field(default=3, ge=1, le=20)
    upstream_breaker_failures: int = Field(default=3, ge=1)
    upstream_breaker_cooldown_seconds: float = Field(default=30.0, gt=0)

    @field_validator(
        "redis_url",
        "admin_token",
        "secret_key",
        "rate_limit_file",
        "metrics_token",
        "otlp_endpoint",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (any case), not {value!r}")
        return level

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        # Checked here, not when the first worker connects: there it was a traceback. The
        # URL is not echoed back: it may carry a password.
        if value is None or value.startswith(_REDIS_SCHEMES):
            return value
        raise ValueError(f"must start with {', '.join(_REDIS_SCHEMES)}")

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        # Checked here, not at the first connection: an unsupported URL would otherwise end
        # in a driver import error. The URL is not echoed back: it may carry a password.
        if value.startswith(_POSTGRES_SCHEMES):
            return value
        if value.startswith(_SQLITE_SCHEMES) and value.partition(":///")[2]:
            return value
        given = f"a {value.partition('://')[0]}:// URL" if "://" in value else "that value"
        if value.startswith(_SQLITE_SCHEMES):
            given = "a sqlite URL without a file path"
        raise ValueError(
            "must be sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
            f"(no other database is supported), not {given}"
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
