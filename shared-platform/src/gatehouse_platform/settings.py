"""Settings base: every service subclasses `ServiceSettings` with its own env prefix (AUTH_, BILLING_…)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEHOUSE_", extra="ignore", env_file=None)

    environment: Environment = "development"
    log_level: str = "INFO"
    log_json: bool = True

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/gatehouse",
        description="SQLAlchemy URL of the service's own database (asyncpg driver).",
    )
    database_pool_size: int = 10
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    events_exchange: str = "gatehouse.events"
    redis_url: str = "redis://127.0.0.1:6379/0"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @model_validator(mode="after")
    def _database_url_uses_asyncpg(self) -> ServiceSettings:
        if self.database_url.startswith("postgresql://"):
            object.__setattr__(
                self, "database_url", self.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
            )
        return self
