"""The one list of consumed events: what each asks for, the templates it uses, a sample of it.

- `HANDLERS` maps each event type to its function, which returns the emails (template, recipient,
  context) the event asks for; the dispatcher renders and sends them, once per event.
- `TEMPLATES` is the catalogue of emails, each with the event that sends it.
- `SAMPLE_EVENTS` holds one event per consumed type: what previews and the tests render.

The functions only read the event: they are pure, so a resend can run them again on a stored
event and previews can run them on sample events. A template sees the event's fields (plus what
its function derives); an event that carries a one-time secret passes only what the email shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gatehouse_contracts.envelope import EventData
from gatehouse_contracts.events import (
    IdentityLinked,
    IdentityUnlinked,
    LoginCodeRequested,
    PasswordChanged,
    PasswordResetRequested,
    PaymentFailed,
    PaymentSucceeded,
    SubscriptionActivated,
    SubscriptionCancelScheduled,
    SubscriptionEnded,
    SubscriptionPastDue,
    SubscriptionPlanChanged,
    SubscriptionRenewed,
    SubscriptionResumed,
    SubscriptionTrialEnding,
    UserDeactivated,
    UserEmailChanged,
    UserEmailVerificationRequested,
    UserReactivated,
)
from notification_service.email.links import Links

RECEIPTS = "billing_receipts"  # the one category people may unsubscribe from
PROVIDER_LABELS = {"google": "Google", "github": "GitHub"}


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    event: type[EventData]
    description: str
    # Set for emails a person may opt out of (List-Unsubscribe); None for transactional and
    # security emails, which are always sent and carry no unsubscribe header.
    unsubscribe_category: str | None = None

    @property
    def event_type(self) -> str:
        return self.event.event_type


@dataclass(frozen=True)
class Notice:
    """One email an event asks for: which template, to whom, with what (may hold a secret)."""

    template: str
    recipient: str
    context: Mapping[str, Any] = field(repr=False)


NoticeBuilder = Callable[[Any, Links], list[Notice]]


def on_email_verification_requested(data: UserEmailVerificationRequested, links: Links) -> list[Notice]:
    context = {
        "username": data.username,
        "verify_url": links.verify(data.token),
        "expires_at": data.expires_at,
    }
    return [Notice("email_verification", data.email, context)]


def on_password_reset_requested(data: PasswordResetRequested, links: Links) -> list[Notice]:
    context = {
        "username": data.username,
        "reset_url": links.reset_password(data.token),
        "expires_at": data.expires_at,
    }
    return [Notice("password_reset", data.email, context)]


def on_login_code_requested(data: LoginCodeRequested, links: Links) -> list[Notice]:
    return [Notice("login_code", data.email, {"code": data.code, "expires_at": data.expires_at})]


def on_password_changed(data: PasswordChanged, links: Links) -> list[Notice]:
    return [Notice("password_changed", data.email, data.model_dump())]


def on_email_changed(data: UserEmailChanged, links: Links) -> list[Notice]:
    """Both addresses hear of it: the old one in case the change was not the owner's doing."""
    context = data.model_dump()
    return [
        Notice("email_changed_old", data.old_email, context),
        Notice("email_changed_new", data.new_email, context),
    ]


def on_deactivated(data: UserDeactivated, links: Links) -> list[Notice]:
    return [Notice("account_deactivated", data.email, data.model_dump())]


def on_reactivated(data: UserReactivated, links: Links) -> list[Notice]:
    return [Notice("account_reactivated", data.email, data.model_dump())]


def on_identity_linked(data: IdentityLinked, links: Links) -> list[Notice]:
    context = {**data.model_dump(), "provider_label": PROVIDER_LABELS[data.provider]}
    return [Notice("identity_linked", data.email, context)]


def on_identity_unlinked(data: IdentityUnlinked, links: Links) -> list[Notice]:
    context = {**data.model_dump(), "provider_label": PROVIDER_LABELS[data.provider]}
    return [Notice("identity_unlinked", data.email, context)]


def on_subscription_activated(data: SubscriptionActivated, links: Links) -> list[Notice]:
    return [Notice("subscription_activated", data.email, data.model_dump())]


def on_subscription_renewed(data: SubscriptionRenewed, links: Links) -> list[Notice]:
    return [Notice("subscription_renewed", data.email, data.model_dump())]


def on_subscription_plan_changed(data: SubscriptionPlanChanged, links: Links) -> list[Notice]:
    return [Notice("subscription_plan_changed", data.email, data.model_dump())]


def on_subscription_cancel_scheduled(data: SubscriptionCancelScheduled, links: Links) -> list[Notice]:
    return [Notice("subscription_cancel_scheduled", data.email, data.model_dump())]


def on_subscription_resumed(data: SubscriptionResumed, links: Links) -> list[Notice]:
    return [Notice("subscription_resumed", data.email, data.model_dump())]


def on_subscription_past_due(data: SubscriptionPastDue, links: Links) -> list[Notice]:
    return [Notice("subscription_past_due", data.email, data.model_dump())]


def on_subscription_ended(data: SubscriptionEnded, links: Links) -> list[Notice]:
    if data.reason == "replaced":
        # A plan change ends the old subscription; the plan-changed email tells the story.
        return []
    return [Notice("subscription_ended", data.email, data.model_dump())]


def on_subscription_trial_ending(data: SubscriptionTrialEnding, links: Links) -> list[Notice]:
    return [Notice("subscription_trial_ending", data.email, data.model_dump())]


def on_payment_succeeded(data: PaymentSucceeded, links: Links) -> list[Notice]:
    return [Notice("payment_succeeded", data.email, data.model_dump())]


def on_payment_failed(data: PaymentFailed, links: Links) -> list[Notice]:
    return [Notice("payment_failed", data.email, data.model_dump())]


HANDLERS: dict[str, NoticeBuilder] = {
    UserEmailVerificationRequested.event_type: on_email_verification_requested,
    PasswordResetRequested.event_type: on_password_reset_requested,
    LoginCodeRequested.event_type: on_login_code_requested,
    PasswordChanged.event_type: on_password_changed,
    UserEmailChanged.event_type: on_email_changed,
    UserDeactivated.event_type: on_deactivated,
    UserReactivated.event_type: on_reactivated,
    IdentityLinked.event_type: on_identity_linked,
    IdentityUnlinked.event_type: on_identity_unlinked,
    SubscriptionActivated.event_type: on_subscription_activated,
    SubscriptionRenewed.event_type: on_subscription_renewed,
    SubscriptionPlanChanged.event_type: on_subscription_plan_changed,
    SubscriptionCancelScheduled.event_type: on_subscription_cancel_scheduled,
    SubscriptionResumed.event_type: on_subscription_resumed,
    SubscriptionPastDue.event_type: on_subscription_past_due,
    SubscriptionEnded.event_type: on_subscription_ended,
    SubscriptionTrialEnding.event_type: on_subscription_trial_ending,
    PaymentSucceeded.event_type: on_payment_succeeded,
    PaymentFailed.event_type: on_payment_failed,
}

TEMPLATES: dict[str, TemplateSpec] = {
    spec.name: spec
    for spec in (
        TemplateSpec("email_verification", UserEmailVerificationRequested, "Verification link"),
        TemplateSpec("password_reset", PasswordResetRequested, "Password reset link"),
        TemplateSpec("login_code", LoginCodeRequested, "One-time sign-in code"),
        TemplateSpec("password_changed", PasswordChanged, "Password changed or reset"),
        TemplateSpec("email_changed_old", UserEmailChanged, "Email changed (to the old address)"),
        TemplateSpec("email_changed_new", UserEmailChanged, "Email changed (to the new address)"),
        TemplateSpec("account_deactivated", UserDeactivated, "Account deactivated"),
        TemplateSpec("account_reactivated", UserReactivated, "Account reactivated"),
        TemplateSpec("identity_linked", IdentityLinked, "Sign-in provider linked"),
        TemplateSpec("identity_unlinked", IdentityUnlinked, "Sign-in provider unlinked"),
        TemplateSpec("subscription_activated", SubscriptionActivated, "Subscription or trial started"),
        TemplateSpec(
            "subscription_renewed",
            SubscriptionRenewed,
            "Renewal confirmation",
            unsubscribe_category=RECEIPTS,
        ),
        TemplateSpec("subscription_plan_changed", SubscriptionPlanChanged, "Plan changed"),
        TemplateSpec("subscription_cancel_scheduled", SubscriptionCancelScheduled, "Cancellation scheduled"),
        TemplateSpec("subscription_resumed", SubscriptionResumed, "Cancellation withdrawn"),
        TemplateSpec("subscription_past_due", SubscriptionPastDue, "Renewal payment overdue"),
        TemplateSpec("subscription_ended", SubscriptionEnded, "Subscription ended"),
        TemplateSpec("subscription_trial_ending", SubscriptionTrialEnding, "Trial ends soon"),
        TemplateSpec("payment_succeeded", PaymentSucceeded, "Payment receipt", unsubscribe_category=RECEIPTS),
        TemplateSpec("payment_failed", PaymentFailed, "Payment failed: what to do"),
    )
}

# Sample events, one per consumed type: what previews and the template tests render.
_T = datetime(2026, 11, 24, 17, 42, tzinfo=UTC)
_USER = uuid.UUID("3f1c6a52-0d7e-4b8e-9a51-6c2f0b7d9e10")
_SUBSCRIPTION = uuid.UUID("9b0e4c1a-5f3d-4e2a-8c6b-1d7f2a9e3b54")
_EMAIL = "ada@example.com"
_PLAN = {
    "user_id": _USER,
    "email": _EMAIL,
    "subscription_id": _SUBSCRIPTION,
    "plan_code": "pro-monthly",
    "plan_name": "Pro",
    "amount": 1200,
    "currency": "usd",
    "interval": "month",
}
_PAYMENT = {
    "user_id": _USER,
    "email": _EMAIL,
    "payment_id": uuid.UUID("5e2d8f14-7a3b-4c6e-9f1a-2b8c4d6e0a73"),
    "subscription_id": _SUBSCRIPTION,
    "plan_name": "Pro",
    "amount": 1200,
    "currency": "usd",
    "invoice_id": "in_1QxSampleInvoice",
}

SAMPLE_EVENTS: dict[str, EventData] = {
    data.event_type: data
    for data in (
        UserEmailVerificationRequested(
            user_id=_USER, email=_EMAIL, username="ada", token="sample-verify-token", expires_at=_T
        ),
        PasswordResetRequested(
            user_id=_USER, email=_EMAIL, username="ada", token="sample-reset-token", expires_at=_T
        ),
        LoginCodeRequested(user_id=_USER, email=_EMAIL, code="428913", expires_at=_T),
        PasswordChanged(user_id=_USER, email=_EMAIL, method="change", changed_at=_T),
        UserEmailChanged(user_id=_USER, old_email="ada.old@example.com", new_email=_EMAIL, changed_at=_T),
        UserDeactivated(user_id=_USER, email=_EMAIL, by="self", deactivated_at=_T),
        UserReactivated(user_id=_USER, email=_EMAIL, reactivated_at=_T),
        IdentityLinked(
            user_id=_USER,
            email=_EMAIL,
            provider="github",
            provider_email="ada@users.noreply.github.com",
            linked_at=_T,
        ),
        IdentityUnlinked(user_id=_USER, email=_EMAIL, provider="google", unlinked_at=_T),
        SubscriptionActivated(
            **_PLAN,
            status="trialing",
            current_period_end=_T + timedelta(days=14),
            trial_end=_T + timedelta(days=14),
            entitlements=["projects:unlimited"],
        ),
        SubscriptionRenewed(**_PLAN, current_period_start=_T, current_period_end=_T + timedelta(days=30)),
        SubscriptionPlanChanged(
            **_PLAN,
            previous_plan_code="starter-monthly",
            previous_plan_name="Starter",
            entitlements=["projects:unlimited"],
            changed_at=_T,
        ),
        SubscriptionCancelScheduled(**_PLAN, cancel_at=_T + timedelta(days=30)),
        SubscriptionResumed(**_PLAN, current_period_end=_T + timedelta(days=30)),
        SubscriptionPastDue(**_PLAN, next_payment_attempt=_T + timedelta(days=3)),
        SubscriptionEnded(**_PLAN, reason="canceled", ended_at=_T),
        SubscriptionTrialEnding(**_PLAN, trial_end=_T + timedelta(days=3)),
        PaymentSucceeded(**_PAYMENT, period_start=_T, period_end=_T + timedelta(days=30), paid_at=_T),
        PaymentFailed(
            **_PAYMENT,
            failure_reason="Your card was declined.",
            attempt_count=1,
            next_payment_attempt=_T + timedelta(days=3),
            failed_at=_T,
        ),
    )
}
