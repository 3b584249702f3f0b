"""The catalogue of emails: every template, the event that sends it, and who may opt out of it;
and `Notice`, one email an event asks for (a template of the catalogue, a recipient, a context).

Each template is a folder under `templates/` (`subject.txt`, `body.html`, `body.txt`); the tests
check that the catalogue and those folders name the same templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gatehouse_contracts.envelope import EventData
from gatehouse_contracts.events import (
    ApiKeyCreated,
    IdentityLinked,
    IdentityUnlinked,
    LoginCodeRequested,
    MfaDisabled,
    MfaEnabled,
    MfaResetByAdmin,
    NewSignIn,
    OrgInvitationSent,
    OrgMemberRemoved,
    PasskeyAdded,
    PasskeyRemoved,
    PasswordChanged,
    PasswordResetRequested,
    PaymentDisputed,
    PaymentFailed,
    PaymentMethodExpiring,
    PaymentRecovered,
    PaymentRefunded,
    PaymentSucceeded,
    RecoveryCodeUsed,
    SubscriptionActivated,
    SubscriptionCancelScheduled,
    SubscriptionEnded,
    SubscriptionPastDue,
    SubscriptionPlanChanged,
    SubscriptionRenewed,
    SubscriptionResumed,
    SubscriptionTrialEnding,
    UserDeactivated,
    UserDeleted,
    UserEmailChanged,
    UserEmailVerificationRequested,
    UserReactivated,
    UserSignUpAttempted,
)

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


@dataclass(frozen=True)
class Notice:
    """One email an event asks for: which template, to whom, with what (may hold a secret)."""

    template: str
    recipient: str
    context: Mapping[str, Any] = field(repr=False)


TEMPLATES: dict[str, TemplateSpec] = {
    spec.name: spec
    for spec in (
        TemplateSpec("email_verification", UserEmailVerificationRequested, "Verification link"),
        TemplateSpec(
            "sign_up_attempted", UserSignUpAttempted, "Sign-up tried with an address that has an account"
        ),
        TemplateSpec("password_reset", PasswordResetRequested, "Password reset link"),
        TemplateSpec("login_code", LoginCodeRequested, "One-time sign-in code"),
        TemplateSpec("password_changed", PasswordChanged, "Password changed or reset"),
        TemplateSpec("email_changed_old", UserEmailChanged, "Email changed (to the old address)"),
        TemplateSpec("email_changed_new", UserEmailChanged, "Email changed (to the new address)"),
        TemplateSpec("account_deactivated", UserDeactivated, "Account deactivated"),
        TemplateSpec("account_reactivated", UserReactivated, "Account reactivated"),
        TemplateSpec("account_deleted", UserDeleted, "Account deleted: goodbye, and until when to cancel"),
        TemplateSpec("identity_linked", IdentityLinked, "Sign-in provider linked"),
        TemplateSpec("identity_unlinked", IdentityUnlinked, "Sign-in provider unlinked"),
        TemplateSpec("mfa_enabled", MfaEnabled, "Two-step sign-in turned on"),
        TemplateSpec("mfa_disabled", MfaDisabled, "Two-step sign-in turned off"),
        TemplateSpec("recovery_code_used", RecoveryCodeUsed, "Recovery code used to sign in"),
        TemplateSpec("mfa_reset_by_admin", MfaResetByAdmin, "Two-step sign-in removed by an admin"),
        TemplateSpec("new_sign_in", NewSignIn, "Sign-in from a new device or network"),
        TemplateSpec("passkey_added", PasskeyAdded, "Passkey added"),
        TemplateSpec("passkey_removed", PasskeyRemoved, "Passkey removed"),
        TemplateSpec("api_key_created", ApiKeyCreated, "API key created"),
        TemplateSpec("org_invitation", OrgInvitationSent, "Invitation to join an organization"),
        TemplateSpec("org_member_removed", OrgMemberRemoved, "Removed from an organization"),
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
        TemplateSpec("payment_recovered", PaymentRecovered, "Payment recovered after a failure"),
        TemplateSpec("payment_refunded", PaymentRefunded, "Refund confirmation"),
        TemplateSpec("payment_method_expiring", PaymentMethodExpiring, "Card expires soon: update it"),
        TemplateSpec(
            "payment_disputed_admin", PaymentDisputed, "A payment disputed, won or lost (to admins)"
        ),
    )
}
