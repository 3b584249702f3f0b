"""billing-service settings: environment variables prefixed BILLING_ (e.g. BILLING_DATABASE_URL)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from gatehouse_platform.settings import TokenVerifierSettings

# Development-only defaults; `Settings` refuses them in production. The webhook secret is the Stripe
# emulator's default (emulators/stripe/config.py), so `make run` works without configuration.
DEV_STRIPE_API_KEY = "sk_test_gatehouse_dev"
DEV_WEBHOOK_SECRET = "whsec_gatehouse_dev"


class Settings(TokenVerifierSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/gatehouse_billing"

    redis_key_prefix: str = Field(default="gatehouse-billing", description="Prefix of every Redis key.")
    consume_events: bool = Field(default=True, description="Run the user-event consumers in the API process.")

    # Stripe
    stripe_api_key: str = Field(default=DEV_STRIPE_API_KEY, description="Secret API key (sk_…).")
    stripe_api_base: str = Field(
        default="https://api.stripe.com", description="Stripe's API address (the emulator in tests/local)."
    )
    stripe_max_network_retries: int = Field(
        default=2, ge=0, le=5, description="SDK retries of failed requests (0 against the emulator in tests)."
    )
    stripe_timeout_seconds: float = Field(default=20.0, gt=0)
    stripe_webhook_secret: str = Field(default=DEV_WEBHOOK_SECRET, description="Signing secret (whsec_…).")
    stripe_webhook_secret_previous: str | None = Field(
        default=None, description="The secret being rotated out: also accepted until removed."
    )
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)

    # Checkout
    checkout_success_url: str = "http://127.0.0.1:8000/billing/success?session_id={CHECKOUT_SESSION_ID}"
    checkout_cancel_url: str = "http://127.0.0.1:8000/billing/cancel"
    checkout_replace_after_seconds: int = Field(
        default=900,
        ge=0,
        description="A pending Checkout for the same plan younger than this answers 409 with its URL; "
        "an older one (or one for another plan) is expired at Stripe and replaced.",
    )

    # Customer Portal, and where billing may send a person back to
    portal_return_url: str = Field(
        default="http://127.0.0.1:8000/billing",
        description="Where the Customer Portal's link back goes when the request names no return_url.",
    )
    return_origins: list[str] = Field(
        default=[],
        description="Origins (scheme://host[:port]) Checkout and the Customer Portal may send a person "
        "back to; empty: the origins of the Checkout success/cancel URLs and of portal_return_url.",
    )

    # Step-up (off by default): plan changes and cancellation need a recent sign-in
    recent_auth_seconds: int | None = Field(
        default=None,
        ge=0,
        description="When set, changing plan and cancelling need the token's auth_time at most this old "
        "(else 401 reauthentication-required, as auth-service answers); unset: any valid token will do.",
    )

    # Access
    expiry_grace_seconds: int = Field(
        default=3 * 86400,
        ge=0,
        description="Access outlives the paid period by this much (past-due and canceling subscriptions).",
    )

    # Dunning (a renewal that failed, retried on Stripe's schedule)
    dunning_grace_seconds: int = Field(
        default=7 * 86400,
        ge=0,
        description="A past-due subscription keeps its plan's features this long after the first failed "
        "attempt (Stripe's time); then it is restricted (no features) until paid.",
    )
    dunning_final_action: Literal["cancel", "unpaid"] = Field(
        default="cancel",
        description="After Stripe's last retry fails (mirror Stripe's subscription setting): `cancel` ends "
        "the subscription (at Stripe too, if Stripe left it past due); `unpaid` keeps it restricted "
        "until an invoice is paid.",
    )

    # Disputes
    lost_dispute_ends_access: bool = Field(
        default=True,
        description="A lost dispute cancels the subscription it paid for at once (entitlements end, "
        "`subscription.ended` with reason `dispute_lost`); false: access continues.",
    )

    # Webhook processing (a background worker in each API process)
    webhook_processor_enabled: bool = True
    webhook_batch_size: int = Field(default=200, ge=1, le=1000)
    webhook_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # After a wake-up, how long the processor waits for more events before claiming a batch: under a
    # burst, one batch (one transaction, one re-read per subscription) then holds many events.
    webhook_batch_linger_seconds: float = Field(default=0.05, ge=0, le=5)
    webhook_retry_initial_seconds: float = Field(default=2.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=900.0, gt=0)
    # Organizations' seats: how often the seat worker (beside the webhook processor) sets the Stripe
    # quantity of the orgs whose member count changed; the membership events of one interval
    # coalesce into one update.
    seat_sync_interval_seconds: float = Field(default=1.0, gt=0)

    # Consumed events (user.*)
    consumer_name: str = Field(default="billing-service", description="Queue name of the consumer.")
    consumer_prefetch: int = Field(default=8, ge=1)
    consumer_retry_delays: list[float] = Field(default=[1, 10, 60, 300], min_length=1)

    # Celery (broker = RabbitMQ) and the periodic jobs
    celery_broker_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    sweep_interval_seconds: float = Field(default=300.0, gt=0)
    reconcile_interval_seconds: float = Field(default=900.0, gt=0)
    reconcile_lookback_seconds: int = Field(
        default=3 * 86400, ge=60, le=30 * 86400, description="First reconciliation reaches back this far."
    )
    card_expiry_check_interval_seconds: float = Field(
        default=86400.0, gt=0, description="How often the card expiry check runs."
    )
    card_expiry_notice_days: int = Field(
        default=30,
        ge=1,
        le=90,
        description="A subscriber whose card stops working within this many days is emailed (once per "
        "card and expiry date).",
    )
    reconcile_overlap_seconds: int = Field(
        default=300, ge=0, description="Each reconciliation re-reads this much before the previous run."
    )

    @model_validator(mode="after")
    def _return_urls_on_allowed_origins(self) -> Settings:
        for name in ("checkout_success_url", "checkout_cancel_url", "portal_return_url"):
            if not self.allows_return_to(getattr(self, name)):
                raise ValueError(f"BILLING_{name.upper()} is not on one of BILLING_RETURN_ORIGINS")
        return self

    @property
    def allowed_return_origins(self) -> frozenset[str]:
        configured = self.return_origins or [
            self.checkout_success_url,
            self.checkout_cancel_url,
            self.portal_return_url,
        ]
        return frozenset(filter(None, (origin_of(url) for url in configured)))

    def allows_return_to(self, url: str) -> bool:
        """Whether billing may send a person to `url` (Checkout's success and cancel URLs, the
        portal's return_url): an absolute http(s) URL on an allowed origin, without credentials."""
        origin = origin_of(url)
        return origin is not None and origin in self.allowed_return_origins

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> Settings:
        if self.is_production:
            if self.stripe_api_key == DEV_STRIPE_API_KEY or self.stripe_api_key.startswith(
                "sk_test_gatehouse"
            ):
                raise ValueError("BILLING_STRIPE_API_KEY must be set in production")
            if self.stripe_webhook_secret == DEV_WEBHOOK_SECRET:
                raise ValueError("BILLING_STRIPE_WEBHOOK_SECRET must be set in production")
            if self.stripe_webhook_secret_previous == DEV_WEBHOOK_SECRET:
                raise ValueError("BILLING_STRIPE_WEBHOOK_SECRET_PREVIOUS must not be the development secret")
        return self

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """The secrets a webhook signature may use: the current one first."""
        previous = self.stripe_webhook_secret_previous
        return (self.stripe_webhook_secret, *((previous,) if previous else ()))


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute http(s) URL, lower-cased; None for anything else
    (relative, scheme-relative, credentials in it, backslashes, control characters)."""
    if "\\" in url or any(ord(c) < 0x21 for c in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


@lru_cache
def get_settings() -> Settings:
    return Settings()
