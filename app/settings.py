"""All configuration, environment first (12-factor)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_HINT = ("DATABASE_URL is not set: `creditgate serve`, `migrate` and the other commands "
                 "start the embedded PostgreSQL then (app/db/embedded.py)")


class Settings(BaseSettings):
    """Settings read from the environment; unprefixed names are the 12-factor conventions."""

    model_config = SettingsConfigDict(env_prefix="CREDITGATE_", extra="ignore",
                                      populate_by_name=True)

    # Unset: the CLI starts the embedded PostgreSQL and sets it (app/db/embedded.py).
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")

    env: Literal["development", "production"] = "development"
    reservation_ttl_days: int = Field(default=30, ge=1, le=3650)
    expire_interval_seconds: float = Field(default=60.0, ge=0)
    # Per worker. A fleet must fit PostgreSQL's default max_connections = 100 (97 once the
    # superuser slots are set aside): 10 replicas x 2 workers x (3 + 0 + 1 listener) = 80,
    # which leaves room for migrations, cron jobs and a psql session. docs/scaling.md.
    db_pool_size: int = Field(default=3, ge=1, le=200)
    db_max_overflow: int = Field(default=0, ge=0, le=200)
    db_timeout_seconds: float = Field(default=2.0, gt=0)
    db_pgbouncer: bool = False
    # Behind transaction-mode PgBouncer LISTEN hears nothing; the listener may go direct.
    listen_database_url: str | None = None
    key_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    redis_timeout_seconds: float = Field(default=0.05, gt=0, le=5)
    cache_ttl_seconds: int = Field(default=300, ge=1, le=3600)
    cache_namespace: str = Field(default="cg", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    # Long enough for a burst queued at the connection budget to drain (300 checks at one
    # customer over 3 replicas x 2 workers take about 1-2 s on 2 cores), far shorter than the
    # HTTP timeouts of ERP clients, so a client hears 503 instead of its own timeout.
    check_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    db_statement_timeout_seconds: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_snapshot_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    rate_limit_per_second: float = Field(default=2000.0, ge=0)
    rate_limit_burst: float = Field(default=4000.0, ge=1)
    log_level: str = "INFO"
    # How long an idle keep-alive connection stays open. Above every common load balancer's
    # idle timeout (AWS ALB, GCP, nginx: 60 s): the balancer, not this server, must be the one
    # to close an idle connection, or it forwards a request onto a connection the server is
    # closing at that instant and answers 502 (uvicorn's own default is 5 s).
    http_keep_alive_seconds: int = Field(default=75, ge=1, le=3600)
    metric_channels: str = "erp,webshop,edi,pos,manual,api"
    # How often each worker looks whether today's (UTC) alert sweep is still to do; it runs once
    # a day across all replicas (app/monitoring/sweep.py). 0: never in the app (cron
    # `creditgate monitor` instead).
    monitor_interval_seconds: float = Field(default=300.0, ge=0)
    # Accounts per sweep transaction: each holds its accounts' row locks while their payment
    # indexes are refreshed, and a check of one of them waits meanwhile (~3 ms per account).
    monitor_batch_size: int = Field(default=25, ge=1, le=10000)
    # Webhooks (app/events). true: http and private or loopback addresses are allowed too
    # (tests, private networks); never link-local, multicast or reserved ones.
    webhook_allow_private: bool = False
    # The in-app dispatcher's polling fallback (LISTEN/NOTIFY wakes it at once); 0: no
    # dispatcher in the app (cron `creditgate webhooks deliver` instead).
    webhook_poll_seconds: float = Field(default=1.0, ge=0, le=60)
    # Deliveries one dispatcher claims per pass (and sends at once).
    webhook_batch_size: int = Field(default=50, ge=1, le=1000)
    # Events (and delivery attempts) older than this are pruned once nothing is pending.
    event_retention_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str | None) -> str | None:
        """Accept the usual postgres:// spellings and pick the async driver."""
        if url is None or url.startswith("postgresql+asyncpg://"):
            return url
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql://user@host/db)")

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.env == "production" and self.database_url is None:
            raise ValueError("CREDITGATE_ENV=production needs DATABASE_URL: the embedded "
                             "PostgreSQL is for trying creditgate out")
        return self

    def require_database_url(self) -> str:
        """The PostgreSQL URL; unset only before the CLI has started the embedded server."""
        if self.database_url is None:
            raise RuntimeError(EMBEDDED_HINT)
        return self.database_url

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(c.strip() for c in self.metric_channels.split(",") if c.strip())

    # The console (app/console/): the key that signs its session cookies and CSRF tokens (at
    # least 32 characters), how long a session lasts, and whether its cookie is Secure (unset:
    # in production only, where the console must be served over https). Without a secret the
    # console signs with one derived from DATABASE_URL (no secret at all) in development, and
    # in production it stays switched off (the API is unaffected) rather than use that.
    console_secret: SecretStr | None = None
    console_session_minutes: int = Field(default=480, ge=5, le=7 * 24 * 60)
    console_secure_cookie: bool | None = None

    @model_validator(mode="after")
    def _refuse_insecure_console(self) -> Settings:
        if self.console_secret is not None and len(self.console_secret.get_secret_value()) < 32:
            raise ValueError("CREDITGATE_CONSOLE_SECRET must be at least 32 characters")
        if self.env == "production" and self.console_secure_cookie is False:
            raise ValueError("CREDITGATE_CONSOLE_SECURE_COOKIE=false is refused in production: "
                             "the console's session cookie must only travel over https")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
