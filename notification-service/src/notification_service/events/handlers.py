"""What each consumed event asks for: one function per event type, returning the emails (template,
recipient, context) to send. `HANDLERS` maps each type to its function; the dispatcher renders and
sends what they return, once per event.

These functions only read the event: they are pure, so a resend can run them again on a stored
event and previews can run them on sample events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
from notification_service.email.render import Notice

NoticeBuilder = Callable[[Any, Links], list[Notice]]

PROVIDER_LABELS = {"google": "Google", "github": "GitHub"}


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
    return [Notice("password_changed", data.email, {"method": data.method, "changed_at": data.changed_at})]


def on_email_changed(data: UserEmailChanged, links: Links) -> list[Notice]:
    """Both addresses hear of it: the old one in case the change was not the owner's doing."""
    context = {"old_email": data.old_email, "new_email": data.new_email, "changed_at": data.changed_at}
    return [
        Notice("email_changed_old", data.old_email, context),
        Notice("email_changed_new", data.new_email, context),
    ]


def on_deactivated(data: UserDeactivated, links: Links) -> list[Notice]:
    context = {"by": data.by, "deactivated_at": data.deactivated_at}
    return [Notice("account_deactivated", data.email, context)]


def on_reactivated(data: UserReactivated, links: Links) -> list[Notice]:
    return [Notice("account_reactivated", data.email, {"reactivated_at": data.reactivated_at})]


def on_identity_linked(data: IdentityLinked, links: Links) -> list[Notice]:
    context = {
        "provider_label": PROVIDER_LABELS[data.provider],
        "provider_email": data.provider_email,
        "linked_at": data.linked_at,
    }
    return [Notice("identity_linked", data.email, context)]


def on_identity_unlinked(data: IdentityUnlinked, links: Links) -> list[Notice]:
    context = {"provider_label": PROVIDER_LABELS[data.provider], "unlinked_at": data.unlinked_at}
    return [Notice("identity_unlinked", data.email, context)]


def _plan(
    data: SubscriptionActivated
    | SubscriptionRenewed
    | SubscriptionPlanChanged
    | SubscriptionCancelScheduled
    | SubscriptionResumed
    | SubscriptionPastDue
    | SubscriptionEnded
    | SubscriptionTrialEnding,
) -> dict[str, Any]:
    return {
        "plan_name": data.plan_name,
        "amount": data.amount,
        "currency": data.currency,
        "interval": data.interval,
    }


def on_subscription_activated(data: SubscriptionActivated, links: Links) -> list[Notice]:
    context = {
        **_plan(data),
        "status": data.status,
        "current_period_end": data.current_period_end,
        "trial_end": data.trial_end,
    }
    return [Notice("subscription_activated", data.email, context)]


def on_subscription_renewed(data: SubscriptionRenewed, links: Links) -> list[Notice]:
    context = {
        **_plan(data),
        "current_period_start": data.current_period_start,
        "current_period_end": data.current_period_end,
    }
    return [Notice("subscription_renewed", data.email, context)]


def on_subscription_plan_changed(data: SubscriptionPlanChanged, links: Links) -> list[Notice]:
    context = {**_plan(data), "previous_plan_name": data.previous_plan_name, "changed_at": data.changed_at}
    return [Notice("subscription_plan_changed", data.email, context)]


def on_subscription_cancel_scheduled(data: SubscriptionCancelScheduled, links: Links) -> list[Notice]:
    return [Notice("subscription_cancel_scheduled", data.email, {**_plan(data), "cancel_at": data.cancel_at})]


def on_subscription_resumed(data: SubscriptionResumed, links: Links) -> list[Notice]:
    context = {**_plan(data), "current_period_end": data.current_period_end}
    return [Notice("subscription_resumed", data.email, context)]


def on_subscription_past_due(data: SubscriptionPastDue, links: Links) -> list[Notice]:
    context = {**_plan(data), "next_payment_attempt": data.next_payment_attempt}
    return [Notice("subscription_past_due", data.email, context)]


def on_subscription_ended(data: SubscriptionEnded, links: Links) -> list[Notice]:
    if data.reason == "replaced":
        # A plan change ends the old subscription; the plan-changed email tells the story.
        return []
    context = {**_plan(data), "reason": data.reason, "ended_at": data.ended_at}
    return [Notice("subscription_ended", data.email, context)]


def on_subscription_trial_ending(data: SubscriptionTrialEnding, links: Links) -> list[Notice]:
    return [Notice("subscription_trial_ending", data.email, {**_plan(data), "trial_end": data.trial_end})]


def _payment(data: PaymentSucceeded | PaymentFailed) -> dict[str, Any]:
    return {
        "plan_name": data.plan_name,
        "amount": data.amount,
        "currency": data.currency,
        "invoice_id": data.invoice_id,
    }


def on_payment_succeeded(data: PaymentSucceeded, links: Links) -> list[Notice]:
    context = {
        **_payment(data),
        "period_start": data.period_start,
        "period_end": data.period_end,
        "paid_at": data.paid_at,
    }
    return [Notice("payment_succeeded", data.email, context)]


def on_payment_failed(data: PaymentFailed, links: Links) -> list[Notice]:
    context = {
        **_payment(data),
        "failure_reason": data.failure_reason,
        "attempt_count": data.attempt_count,
        "next_payment_attempt": data.next_payment_attempt,
    }
    return [Notice("payment_failed", data.email, context)]


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
