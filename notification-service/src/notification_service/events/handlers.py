"""The one list of consumed events: `HANDLERS` maps each event type to its function, which returns
the emails (`Notice`: template, recipient, context) the event asks for; the dispatcher renders and
sends them, once per event.

The functions only read the event: they are pure, so a resend can run them again on a stored
event and previews can run them on sample events (`previews/samples.py`). A template sees the
event's fields (plus what its function derives); an event that carries a one-time secret passes
only what the email shows. The templates themselves are catalogued in `email/catalogue.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
from notification_service.email.catalogue import Notice
from notification_service.email.links import Links

PROVIDER_LABELS = {"google": "Google", "github": "GitHub"}
SIGN_IN_METHOD_LABELS = {
    "password": "Password",
    "email_code": "Emailed code",
    "google": "Google",
    "github": "GitHub",
    "passkey": "Passkey",
}

NoticeBuilder = Callable[[Any, Links], list[Notice]]


def on_email_verification_requested(data: UserEmailVerificationRequested, links: Links) -> list[Notice]:
    context = {
        "username": data.username,
        "verify_url": links.verify(data.token),
        "expires_at": data.expires_at,
    }
    return [Notice("email_verification", data.email, context)]


def on_sign_up_attempted(data: UserSignUpAttempted, links: Links) -> list[Notice]:
    """Someone registered with this address (the answer did not say it has an account): the owner
    learns of it and how to get in. The email carries no secret: a stranger can trigger it."""
    context = {
        "username": data.username,
        "attempted_at": data.attempted_at,
        "sign_in_url": links.sign_in,
        "forgot_password_url": links.forgot_password,
    }
    return [Notice("sign_up_attempted", data.email, context)]


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
    if data.deleted:  # the start of a deletion: user.deleted says goodbye
        return []
    return [Notice("account_deactivated", data.email, data.model_dump())]


def on_deleted(data: UserDeleted, links: Links) -> list[Notice]:
    """Goodbye, with the date of the erasure and, for the owner's own deletion, how to cancel it."""
    return [Notice("account_deleted", data.email, {**data.model_dump(), "sign_in_url": links.sign_in})]


def on_reactivated(data: UserReactivated, links: Links) -> list[Notice]:
    return [Notice("account_reactivated", data.email, data.model_dump())]


def on_identity_linked(data: IdentityLinked, links: Links) -> list[Notice]:
    context = {**data.model_dump(), "provider_label": PROVIDER_LABELS[data.provider]}
    return [Notice("identity_linked", data.email, context)]


def on_identity_unlinked(data: IdentityUnlinked, links: Links) -> list[Notice]:
    context = {**data.model_dump(), "provider_label": PROVIDER_LABELS[data.provider]}
    return [Notice("identity_unlinked", data.email, context)]


def on_mfa_enabled(data: MfaEnabled, links: Links) -> list[Notice]:
    return [Notice("mfa_enabled", data.email, data.model_dump())]


def on_mfa_disabled(data: MfaDisabled, links: Links) -> list[Notice]:
    return [Notice("mfa_disabled", data.email, data.model_dump())]


def on_recovery_code_used(data: RecoveryCodeUsed, links: Links) -> list[Notice]:
    return [Notice("recovery_code_used", data.email, data.model_dump())]


def on_mfa_reset_by_admin(data: MfaResetByAdmin, links: Links) -> list[Notice]:
    return [Notice("mfa_reset_by_admin", data.email, data.model_dump())]


def on_new_sign_in(data: NewSignIn, links: Links) -> list[Notice]:
    """ "This wasn't me" leads to the forgotten-password page: a new password signs out everywhere."""
    context = {
        **data.model_dump(),
        "method_label": SIGN_IN_METHOD_LABELS[data.method],
        "secure_account_url": links.forgot_password,
    }
    return [Notice("new_sign_in", data.email, context)]


def on_passkey_added(data: PasskeyAdded, links: Links) -> list[Notice]:
    return [Notice("passkey_added", data.email, data.model_dump())]


def on_api_key_created(data: ApiKeyCreated, links: Links) -> list[Notice]:
    """The event has no secret (the key is shown once, to its creator): the email names the key by
    its prefix, so a key nobody meant to create can be found and revoked."""
    context = {**data.model_dump(), "api_keys_url": links.api_keys}
    return [Notice("api_key_created", data.email, context)]


def on_passkey_removed(data: PasskeyRemoved, links: Links) -> list[Notice]:
    return [Notice("passkey_removed", data.email, data.model_dump())]


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


def on_payment_recovered(data: PaymentRecovered, links: Links) -> list[Notice]:
    return [Notice("payment_recovered", data.email, data.model_dump())]


def on_payment_refunded(data: PaymentRefunded, links: Links) -> list[Notice]:
    return [Notice("payment_refunded", data.email, data.model_dump())]


def on_payment_method_expiring(data: PaymentMethodExpiring, links: Links) -> list[Notice]:
    return [Notice("payment_method_expiring", data.email, data.model_dump())]


def on_payment_disputed(data: PaymentDisputed, links: Links) -> list[Notice]:
    """Admins answer disputes (evidence, or accepting the loss): each hears of every status."""
    context = data.model_dump()
    return [Notice("payment_disputed_admin", admin, context) for admin in links.admins]


ORG_ROLE_LABELS = {"owner": "an owner", "admin": "an admin", "member": "a member"}


def on_org_invitation_sent(data: OrgInvitationSent, links: Links) -> list[Notice]:
    """The link carries the one-time token; the context, only what the email shows."""
    context = {
        "org_name": data.org_name,
        "invited_by_name": data.invited_by_name,
        "role_label": ORG_ROLE_LABELS[data.role],
        "accept_url": links.accept_invitation(data.token),
        "expires_at": data.expires_at,
    }
    return [Notice("org_invitation", data.email, context)]


def on_org_member_removed(data: OrgMemberRemoved, links: Links) -> list[Notice]:
    """Only a removal by someone else is news to the person: leaving was their own doing, and a
    deleted account has its own goodbye."""
    if data.reason != "removed":
        return []
    context = {"org_name": data.org_name, "removed_at": data.removed_at, "account_url": links.account}
    return [Notice("org_member_removed", data.email, context)]


HANDLERS: dict[str, NoticeBuilder] = {
    UserEmailVerificationRequested.event_type: on_email_verification_requested,
    UserSignUpAttempted.event_type: on_sign_up_attempted,
    PasswordResetRequested.event_type: on_password_reset_requested,
    LoginCodeRequested.event_type: on_login_code_requested,
    PasswordChanged.event_type: on_password_changed,
    UserEmailChanged.event_type: on_email_changed,
    UserDeactivated.event_type: on_deactivated,
    UserReactivated.event_type: on_reactivated,
    UserDeleted.event_type: on_deleted,
    IdentityLinked.event_type: on_identity_linked,
    IdentityUnlinked.event_type: on_identity_unlinked,
    MfaEnabled.event_type: on_mfa_enabled,
    MfaDisabled.event_type: on_mfa_disabled,
    RecoveryCodeUsed.event_type: on_recovery_code_used,
    NewSignIn.event_type: on_new_sign_in,
    MfaResetByAdmin.event_type: on_mfa_reset_by_admin,
    PasskeyAdded.event_type: on_passkey_added,
    PasskeyRemoved.event_type: on_passkey_removed,
    ApiKeyCreated.event_type: on_api_key_created,
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
    PaymentRecovered.event_type: on_payment_recovered,
    PaymentRefunded.event_type: on_payment_refunded,
    PaymentDisputed.event_type: on_payment_disputed,
    PaymentMethodExpiring.event_type: on_payment_method_expiring,
    OrgInvitationSent.event_type: on_org_invitation_sent,
    OrgMemberRemoved.event_type: on_org_member_removed,
}
