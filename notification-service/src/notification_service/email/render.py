"""Rendering emails: the Jinja environment (HTML autoescaped, StrictUndefined), the catalogue of
templates, and the sample events the previews and tests render them with.

Each template is a folder under `templates/` with `subject.txt`, `body.html` and `body.txt`;
the bodies extend `layouts/base.html` and `layouts/base.txt`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

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
from notification_service.email.formatting import format_date, format_datetime, format_money
from notification_service.email.links import Links
from notification_service.settings import Settings

RECEIPTS = "billing_receipts"  # the one category people may unsubscribe from


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


@dataclass(frozen=True)
class Notice:
    """One email an event asks for: which template, to whom, with what (may hold a secret)."""

    template: str
    recipient: str
    context: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class RenderedEmail:
    template: str
    recipient: str
    subject: str
    text: str = field(repr=False)
    html: str = field(repr=False)
    unsubscribe_url: str | None = field(default=None, repr=False)


class Renderer:
    def __init__(self, settings: Settings, links: Links) -> None:
        self._links = links
        self.env = Environment(
            loader=PackageLoader("notification_service", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        home = settings.home_currency
        self.env.filters["money"] = lambda amount, currency: format_money(
            amount, currency, home_currency=home
        )
        self.env.filters["date"] = format_date
        self.env.filters["datetime"] = format_datetime
        self.env.globals.update(
            product_name=settings.product_name,
            support_email=settings.support_email,
            app_url=links.app,
            account_url=links.account,
            billing_url=links.billing,
        )

    def render(self, notice: Notice) -> RenderedEmail:
        spec = TEMPLATES[notice.template]
        category = spec.unsubscribe_category
        unsubscribe_url = self._links.unsubscribe(notice.recipient, category) if category else None
        context = {**notice.context, "recipient": notice.recipient, "unsubscribe_url": unsubscribe_url}
        subject = self.env.get_template(f"{spec.name}/subject.txt").render(context)
        return RenderedEmail(
            template=spec.name,
            recipient=notice.recipient,
            subject=" ".join(subject.split())[:998],
            text=self.env.get_template(f"{spec.name}/body.txt").render(context),
            html=self.env.get_template(f"{spec.name}/body.html").render(context),
            unsubscribe_url=unsubscribe_url,
        )


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
