"""All configuration, environment first (12-factor)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SQLITE_DEFAULT_URL = "sqlite+aiosqlite:///./creditgate.db"


class Settings(BaseSettings):
    """Settings read from the environment; unprefixed names are the 12-factor conventions."""

    model_config = SettingsConfigDict(env_prefix="CREDITGATE_", extra="ignore",
                                      populate_by_name=True)

    database_url: str = Field(default=SQLITE_DEFAULT_URL, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")

    env: Literal["development", "production"] = "development"
    reservation_ttl_days: int = Field(default=30, ge=1, le=3650)
    expire_interval_seconds: float = Field(default=60.0, ge=0)
    db_pool_size: int = Field(default=16, ge=1, le=200)
    db_max_overflow: int = Field(default=8, ge=0, le=200)
    db_timeout_seconds: float = Field(default=2.0, gt=0)
    db_pgbouncer: bool = False
    # Behind transaction-mode PgBouncer LISTEN hears nothing; the listener may go direct.
    listen_database_url: str | None = None
    key_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    redis_timeout_seconds: float = Field(default=0.05, gt=0, le=5)
    cache_ttl_seconds: int = Field(default=300, ge=1, le=3600)
    cache_namespace: str = Field(default="cg", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    check_timeout_seconds: float = Field(default=1.5, gt=0, le=60)
    db_statement_timeout_seconds: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_snapshot_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    rate_limit_per_second: float = Field(default=2000.0, ge=0)
    rate_limit_burst: float = Field(default=4000.0, ge=1)
    log_level: str = "INFO"
    metric_channels: str = "erp,webshop,edi,pos,manual,api"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept the usual postgres:// spellings and pick the async driver."""
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
            return "sqlite+aiosqlite://" + url[len("sqlite://") :]
        return url

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.env == "production" and self.is_sqlite:
            raise ValueError("CREDITGATE_ENV=production needs DATABASE_URL to point at PostgreSQL")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(c.strip() for c in self.metric_channels.split(",") if c.strip())


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
