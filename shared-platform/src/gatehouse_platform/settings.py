"""Settings base: every service subclasses `ServiceSettings` with its own env prefix (AUTH_, BILLING_…)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gatehouse_contracts.revocations import revocations_url_beside

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


class TokenVerifierSettings(ServiceSettings):
    """A service that verifies auth-service's access tokens: through its JWKS, and against the
    denylist of revoked sessions and deactivated users (gatehouse_platform.denylist)."""

    jwks_url: str = "http://127.0.0.1:8001/auth/.well-known/jwks.json"
    revocations_url: str | None = Field(
        default=None,
        description="Where the token denylist is rebuilt from after Redis lost its data. Default: the "
        "revocation list on the JWKS's host",
    )
    issuer: str = "http://127.0.0.1:8000/auth"
    audience: str = "gatehouse"
    access_token_ttl_seconds: int = Field(
        default=900,
        ge=60,
        description="auth-service's access-token lifetime: how long a denylist entry matters.",
    )
    redis_key_prefix: str = Field(default="gatehouse", description="Prefix of every Redis key.")

    @property
    def revocations(self) -> str:
        return self.revocations_url or revocations_url_beside(self.jwks_url)
