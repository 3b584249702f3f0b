"""notification-service settings: environment variables prefixed NOTIFICATION_ (NOTIFICATION_SMTP_HOST…)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from gatehouse_platform.settings import TokenVerifierSettings

# Development-only defaults; `Settings` refuses them in production.
DEV_UNSUBSCRIBE_SECRET = "dev-only-unsubscribe-secret-change-me"
DEV_DOMAIN = "gatehouse.localhost"


class Settings(TokenVerifierSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/gatehouse_notification"

    # Consuming events
    consumer_name: str = Field(default="notification-service", description="Queue name of the consumer.")
    consumer_prefetch: int = Field(default=10, ge=1, description="Events handled concurrently.")
    consumer_retry_delays: list[float] = Field(
        default=[5, 30, 120, 600],
        min_length=1,
        description="Back-off (seconds) between attempts after a transient failure, then the DLQ.",
    )

    redis_key_prefix: str = Field(default="gatehouse-notification", description="Prefix of every Redis key.")

    # What the emails say and link to. Links are built from these, never from a request.
    product_name: str = "Gatehouse"
    support_email: str = f"support@{DEV_DOMAIN}"
    from_address: str = f"no-reply@{DEV_DOMAIN}"
    from_name: str | None = Field(default=None, description="Display name of From (default: product name).")
    app_url: str = Field(default="http://127.0.0.1:8000", description="Base URL of the product's web app.")
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL this API is reached at (unsubscribe links)."
    )
    verify_url_template: str = "{app_url}/verify-email?token={token}"
    reset_url_template: str = "{app_url}/reset-password?token={token}"
    forgot_password_url_template: str = Field(
        default="{app_url}/forgot-password",
        description='Asking for a reset link: where "this wasn\'t me" in a new sign-in alert leads, and '
        "the other way in of the sign-up-attempt email.",
    )
    account_url_template: str = "{app_url}/account"
    api_keys_url_template: str = Field(
        default="{app_url}/account/api-keys", description="The web front's API keys page (list and revoke)"
    )
    sign_in_url_template: str = "{app_url}/login"
    invitation_url_template: str = "{app_url}/invitations/accept?token={token}"
    billing_url_template: str = Field(
        default="{app_url}/billing",
        description="The web front's billing page (the plan, the card on file and Manage billing, which "
        "opens the Customer Portal): linked from the billing emails, where a customer whose payment "
        "failed updates the card.",
    )
    admin_emails: list[str] = Field(
        default=[],
        description="Who hears of admin notices (a payment disputed, a dispute won or lost); empty: the "
        "support address.",
    )
    home_currency: str = Field(
        default="usd", min_length=3, max_length=3, description="Amounts in it are shown without the code."
    )
    message_id_domain: str = Field(default=DEV_DOMAIN, description="Right-hand side of every Message-ID.")
    unsubscribe_secret: str = Field(
        default=DEV_UNSUBSCRIBE_SECRET, min_length=16, description="HMAC key of unsubscribe links."
    )

    # SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool | None = Field(
        default=None, description="true: require STARTTLS; false: never; unset: when the server offers it."
    )
    smtp_use_tls: bool = Field(default=False, description="Implicit TLS from the first byte (port 465).")
    smtp_timeout: float = Field(default=10.0, gt=0)
    smtp_max_connections: int = Field(default=4, ge=1, description="Connections kept open to the relay.")
    smtp_local_hostname: str | None = Field(default=None, description="Name sent in EHLO (default: FQDN).")

    # Template previews (GET /notifications/templates…): never served in production
    previews_enabled: bool = True

    @property
    def previews_available(self) -> bool:
        return self.previews_enabled and not self.is_production

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.smtp_use_tls and self.smtp_starttls:
            raise ValueError("NOTIFICATION_SMTP_USE_TLS and NOTIFICATION_SMTP_STARTTLS exclude each other")
        # Each handler holds a connection and briefly needs a second one (it records a delivery
        # in a transaction of its own): with as many handlers as connections, all would wait.
        if self.consumer_prefetch >= 2 * self.database_pool_size:
            raise ValueError(
                "NOTIFICATION_CONSUMER_PREFETCH must be below 2 × NOTIFICATION_DATABASE_POOL_SIZE"
            )
        for name in ("verify_url_template", "reset_url_template", "invitation_url_template"):
            if "{token}" not in getattr(self, name):
                raise ValueError(f"NOTIFICATION_{name.upper()} must contain {{token}}")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_defaults_in_production(self) -> Settings:
        if not self.is_production:
            return self
        if self.unsubscribe_secret == DEV_UNSUBSCRIBE_SECRET:
            raise ValueError("NOTIFICATION_UNSUBSCRIBE_SECRET must be set in production")
        for name in ("support_email", "from_address", "message_id_domain"):
            if getattr(self, name).endswith(DEV_DOMAIN):
                raise ValueError(f"NOTIFICATION_{name.upper()} must be set in production")
        for name in ("app_url", "public_url"):
            if not getattr(self, name).startswith("https://"):
                raise ValueError(f"NOTIFICATION_{name.upper()} must be an https:// URL in production")
        if self.smtp_username and not (self.smtp_use_tls or self.smtp_starttls):
            raise ValueError(
                "SMTP credentials need NOTIFICATION_SMTP_STARTTLS=true or NOTIFICATION_SMTP_USE_TLS=true"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
