"""Sample events, one per consumed type: what previews render (and the tests with them)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

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

_T = datetime(2026, 11, 24, 17, 42, tzinfo=UTC)
_USER = uuid.UUID("3f1c6a52-0d7e-4b8e-9a51-6c2f0b7d9e10")
_SUBSCRIPTION = uuid.UUID("9b0e4c1a-5f3d-4e2a-8c6b-1d7f2a9e3b54")
_EMAIL = "ada@example.com"
_PASSKEY = uuid.UUID("5d2a8c1e-3f4b-4a6d-9e7c-1b0f2e3d4c5a")
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

_ORG = uuid.UUID("3d9a7f21-5c8e-4b6a-9e2f-1a7c3b5d8e60")

SAMPLE_EVENTS: dict[str, EventData] = {
    data.event_type: data
    for data in (
        UserEmailVerificationRequested(
            user_id=_USER, email=_EMAIL, username="ada", token="sample-verify-token", expires_at=_T
        ),
        OrgInvitationSent(
            org_id=_ORG,
            org_name="Acme Ltd",
            invitation_id=uuid.UUID("0b6f3c2e-9d41-4a7e-8c15-3f2a9e7d6b40"),
            email=_EMAIL,
            role="member",
            invited_by=uuid.UUID("7c1e5a90-2b4d-4f6e-a8c3-9d0e1f2a3b4c"),
            invited_by_name="grace",
            token="sample-invitation-token",
            expires_at=_T + timedelta(days=7),
        ),
        OrgMemberRemoved(
            org_id=_ORG,
            org_name="Acme Ltd",
            user_id=_USER,
            email=_EMAIL,
            reason="removed",
            removed_by=uuid.UUID("7c1e5a90-2b4d-4f6e-a8c3-9d0e1f2a3b4c"),
            member_count=3,
            membership_version=7,
            removed_at=_T,
        ),
        UserSignUpAttempted(user_id=_USER, email=_EMAIL, username="ada", attempted_at=_T),
        PasswordResetRequested(
            user_id=_USER, email=_EMAIL, username="ada", token="sample-reset-token", expires_at=_T
        ),
        LoginCodeRequested(user_id=_USER, email=_EMAIL, code="428913", expires_at=_T),
        PasswordChanged(user_id=_USER, email=_EMAIL, method="change", changed_at=_T),
        UserEmailChanged(user_id=_USER, old_email="ada.old@example.com", new_email=_EMAIL, changed_at=_T),
        UserDeactivated(user_id=_USER, email=_EMAIL, by="self", deactivated_at=_T),
        UserReactivated(user_id=_USER, email=_EMAIL, reactivated_at=_T),
        UserDeleted(
            user_id=_USER,
            email=_EMAIL,
            username="ada",
            by="self",
            requested_at=_T,
            erase_at=_T + timedelta(days=7),
        ),
        IdentityLinked(
            user_id=_USER,
            email=_EMAIL,
            provider="github",
            provider_email="ada@users.noreply.github.com",
            linked_at=_T,
        ),
        IdentityUnlinked(user_id=_USER, email=_EMAIL, provider="google", unlinked_at=_T),
        MfaEnabled(user_id=_USER, email=_EMAIL, method="totp", enabled_at=_T),
        MfaDisabled(user_id=_USER, email=_EMAIL, method="totp", disabled_at=_T),
        RecoveryCodeUsed(user_id=_USER, email=_EMAIL, codes_left=2, used_at=_T),
        NewSignIn(
            user_id=_USER,
            email=_EMAIL,
            method="password",
            signed_in_at=_T,
            ip="203.0.113.7",
            place="Lyon, France",
            user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            new_device=True,
            new_network=True,
        ),
        PasskeyAdded(user_id=_USER, email=_EMAIL, passkey_id=_PASSKEY, name="MacBook Touch ID", added_at=_T),
        ApiKeyCreated(
            key_id=_PASSKEY,
            user_id=_USER,
            email=_EMAIL,
            org_id=None,
            name="CI deploys",
            prefix="gk_live_3f9c2a71b0de",
            scopes=["profile:read", "billing:read"],
            expires_at=datetime(2027, 3, 3, 17, 42, tzinfo=UTC),
            created_at=_T,
        ),
        PasskeyRemoved(
            user_id=_USER, email=_EMAIL, passkey_id=_PASSKEY, name="MacBook Touch ID", removed_at=_T
        ),
        MfaResetByAdmin(
            user_id=_USER,
            email=_EMAIL,
            admin_id=uuid.UUID("9b0e2f4c-6a1d-4c3e-8f5a-2d7b1e0c9a64"),
            reset_at=_T,
        ),
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
        PaymentRecovered(
            **_PAYMENT, attempt_count=2, period_start=_T, period_end=_T + timedelta(days=30), paid_at=_T
        ),
        PaymentRefunded(
            **{**_PAYMENT, "amount": 600},
            refund_id="re_1QxSampleRefund",
            reason="requested_by_customer",
            amount_paid=1200,
            amount_refunded=600,
            fully_refunded=False,
            refunded_at=_T,
        ),
        PaymentDisputed(
            **_PAYMENT,
            dispute_id="dp_1QxSampleDispute",
            dispute_status="open",
            reason="fraudulent",
            ends_access=False,
            changed_at=_T,
        ),
        PaymentMethodExpiring(
            user_id=_USER,
            email=_EMAIL,
            payment_method_id="pm_1QxSampleCard",
            brand="visa",
            last4="4242",
            exp_month=12,
            exp_year=2026,
            expires_at=datetime(2027, 1, 1, tzinfo=UTC),
        ),
    )
}
