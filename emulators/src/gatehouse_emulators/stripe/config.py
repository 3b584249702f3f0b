"""Settings of the Stripe emulator: one frozen dataclass, read from the environment by `from_env()`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

# The API version stripe-python 16.1.0 pins (`stripe.api_version`); the emulator answers its shapes.
PINNED_API_VERSION = "2026-10-28.endive"
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8002/billing/stripe/webhook"
DEFAULT_WEBHOOK_SECRET = "whsec_gatehouse_dev"  # a local-development default, never a real secret

ClockMode = Literal["wall", "frozen"]
DunningFinalAction = Literal["cancel", "unpaid", "past_due"]


@dataclass(frozen=True)
class StripeEmulatorConfig:
    # API keys accepted in `Authorization: Bearer`; empty means "any key that starts with sk_test_".
    api_keys: tuple[str, ...] = ()
    api_version: str = PINNED_API_VERSION
    # Webhooks also go to every endpoint registered through /v1/webhook_endpoints.
    webhook_url: str | None = DEFAULT_WEBHOOK_URL
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    webhook_max_attempts: int = 6
    webhook_retry_delay: float = 0.5  # first back-off; doubles per attempt (0.5, 1, 2, 4, 8 s)
    webhook_timeout: float = 5.0
    # Base URL put in Checkout URLs; None means "the URL the API request came in on".
    public_url: str | None = None
    # "wall": emulator time = wall time + advances (due work runs on a 1 s ticker too);
    # "frozen": time moves only through POST /_emulator/clock/advance (deterministic tests).
    clock: ClockMode = "wall"
    start_time: int | None = None  # frozen clock only: the initial time (default: wall time at start)
    tick_interval: float = 1.0
    # Where the state is kept between runs (`make run` restarts): loaded at start, written at stop.
    state_file: str | None = None
    # Smart Retries stand-in (Stripe's custom retry schedule): each retry this many days after the
    # attempt before it (3, 5, 7: days 3, 8 and 15 after the failed renewal).
    dunning_retry_days: tuple[int, ...] = (3, 5, 7)
    dunning_final_action: DunningFinalAction = "cancel"
    trial_will_end_days: int = 3
    # `invoice.upcoming` this many days before a renewal (or trial end); 0 disables. Only sent when
    # the period is longer than that, as Stripe does.
    upcoming_invoice_days: int = 7
    checkout_session_ttl: int = 24 * 3600
    incomplete_expiry: int = 23 * 3600
    events_retention: int = 30 * 24 * 3600
    idempotency_ttl: int = 24 * 3600
    # Validate every answer and event against Stripe's schemas for the pinned version
    # (wire/conformance.py); violations are listed at GET /_emulator/conformance. On in tests.
    check_schemas: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StripeEmulatorConfig:
        env = os.environ if env is None else env
        keys = tuple(k.strip() for k in env.get("STRIPE_EMULATOR_API_KEYS", "").split(",") if k.strip())
        retry_days = tuple(
            int(d) for d in env.get("STRIPE_EMULATOR_DUNNING_RETRY_DAYS", "3,5,7").split(",") if d.strip()
        )
        finals: dict[str, DunningFinalAction] = {
            "cancel": "cancel",
            "unpaid": "unpaid",
            "past_due": "past_due",
        }
        final = finals.get(env.get("STRIPE_EMULATOR_DUNNING_FINAL_ACTION", "cancel"))
        if final is None:
            raise ValueError("STRIPE_EMULATOR_DUNNING_FINAL_ACTION must be cancel, unpaid or past_due")
        clock = env.get("STRIPE_EMULATOR_CLOCK", "wall")
        if clock not in ("wall", "frozen"):
            raise ValueError("STRIPE_EMULATOR_CLOCK must be wall or frozen")
        start = env.get("STRIPE_EMULATOR_START_TIME")
        return cls(
            api_keys=keys,
            webhook_url=env.get("STRIPE_EMULATOR_WEBHOOK_URL", DEFAULT_WEBHOOK_URL) or None,
            webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", DEFAULT_WEBHOOK_SECRET),
            webhook_max_attempts=int(env.get("STRIPE_EMULATOR_WEBHOOK_ATTEMPTS", "6")),
            webhook_retry_delay=float(env.get("STRIPE_EMULATOR_WEBHOOK_RETRY_DELAY", "0.5")),
            public_url=env.get("STRIPE_EMULATOR_PUBLIC_URL") or None,
            clock="frozen" if clock == "frozen" else "wall",
            start_time=int(start) if start else None,
            dunning_retry_days=retry_days,
            dunning_final_action=final,
            upcoming_invoice_days=int(env.get("STRIPE_EMULATOR_UPCOMING_DAYS", "7")),
            state_file=env.get("STRIPE_EMULATOR_STATE_FILE") or None,
            check_schemas=env.get("STRIPE_EMULATOR_CHECK_SCHEMAS", "").lower() in ("1", "true", "yes"),
        )
