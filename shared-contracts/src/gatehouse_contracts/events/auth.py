"""Events published by auth-service (source `/auth-service`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field

from gatehouse_contracts.envelope import EventData

SignInMethod = Literal["password", "google", "github"]


class UserRegistered(EventData):
    event_type = "user.registered"
    description = "A new account exists (password sign-up or first sign-in with a provider)."

    user_id: uuid.UUID
    email: EmailStr
    username: str
    provider: SignInMethod
    email_verified: bool
    registered_at: datetime


class UserEmailVerificationRequested(EventData):
    event_type = "user.email_verification_requested"
    carries_secret = True
    description = "Send the verification link. `token` is a one-time secret: never log it."

    user_id: uuid.UUID
    email: EmailStr
    username: str
    token: str = Field(description="One-time verification token; the link is built from configuration.")
    expires_at: datetime


class UserSignUpAttempted(EventData):
    event_type = "user.sign_up_attempted"
    description = (
        "Someone tried to register with the address of an existing account: the registration "
        "answered as for a new one (no enumeration); tell the owner to sign in or reset the password."
    )

    user_id: uuid.UUID
    email: EmailStr
    username: str
    attempted_at: datetime


class UserVerified(EventData):
    event_type = "user.verified"
    description = "The user proved they own their email address."

    user_id: uuid.UUID
    email: EmailStr
    verified_at: datetime


class PasswordResetRequested(EventData):
    event_type = "user.password_reset_requested"
    carries_secret = True
    description = "Send the password reset link. `token` is a one-time secret: never log it."

    user_id: uuid.UUID
    email: EmailStr
    username: str
    token: str = Field(description="One-time reset token; the link is built from configuration.")
    expires_at: datetime


class PasswordChanged(EventData):
    event_type = "user.password_changed"
    description = "The password was changed (signed in) or set anew (reset); sessions were revoked."

    user_id: uuid.UUID
    email: EmailStr
    method: Literal["change", "reset"]
    changed_at: datetime


class LoginCodeRequested(EventData):
    event_type = "user.login_code_requested"
    carries_secret = True
    description = "Send a one-time sign-in code. `code` is a secret: never log it."

    user_id: uuid.UUID
    email: EmailStr
    code: str = Field(pattern=r"^[0-9]{6}$")
    expires_at: datetime


class UserEmailChanged(EventData):
    event_type = "user.email_changed"
    description = "The account's email address changed; tell both the old and the new address."

    user_id: uuid.UUID
    old_email: EmailStr
    new_email: EmailStr
    changed_at: datetime


class UserDeactivated(EventData):
    event_type = "user.deactivated"
    description = (
        "The account is deactivated: every verifier must reject its access tokens at once, "
        "billing cancels its subscription."
    )

    user_id: uuid.UUID
    email: EmailStr
    by: Literal["self", "admin"]
    deactivated_at: datetime
    deleted: bool = Field(
        default=False,
        description="The start of a deletion: `user.deleted` follows (no deactivation email).",
    )


class UserReactivated(EventData):
    event_type = "user.reactivated"
    description = "An admin reactivated the account, or its owner cancelled its deletion."

    user_id: uuid.UUID
    email: EmailStr
    reactivated_at: datetime


class UserDeleted(EventData):
    event_type = "user.deleted"
    description = (
        "The account is to be deleted: it is disabled now (`user.deactivated` went out with it), and "
        "erased at `erase_at` unless its owner cancels before (then `user.reactivated`). Billing "
        "cancels its subscriptions; notification-service says goodbye."
    )

    user_id: uuid.UUID
    email: EmailStr
    username: str
    by: Literal["self", "admin"]
    requested_at: datetime
    erase_at: datetime = Field(description="When the account and its personal data are erased")


class UserErased(EventData):
    event_type = "user.erased"
    description = (
        "The deleted account's grace period is over and auth-service erased its personal data: every "
        "service now erases what it keeps of this user (it carries no personal data itself)."
    )

    user_id: uuid.UUID
    erased_at: datetime


class SessionRevoked(EventData):
    event_type = "session.revoked"
    description = (
        "These sessions (refresh-token families, the `sid` claim) are revoked: verifiers reject "
        "access tokens carrying them until they expire."
    )

    user_id: uuid.UUID
    session_ids: list[uuid.UUID] = Field(min_length=1)
    reason: Literal[
        "logout",
        "logout_all",
        "revoked",
        "refresh_reuse",
        "password_reset",
        "password_changed",
        "deactivated",
        "org_switched",  # the session's tokens were exchanged for a session acting in another org
        "org_access_ended",  # removed from, left, or demoted in the org the session acted in
    ]
    revoked_at: datetime


class IdentityLinked(EventData):
    event_type = "user.identity_linked"
    description = (
        "A Google or GitHub identity now signs in to this account (linked by the user, by a verified "
        "email, or at provisioning): tell the account owner."
    )

    user_id: uuid.UUID
    email: EmailStr
    provider: Literal["google", "github"]
    provider_email: EmailStr | None
    linked_at: datetime


class IdentityUnlinked(EventData):
    event_type = "user.identity_unlinked"
    description = "The user removed a Google or GitHub identity from their account."

    user_id: uuid.UUID
    email: EmailStr
    provider: Literal["google", "github"]
    unlinked_at: datetime


MfaMethod = Literal["totp"]


class MfaEnabled(EventData):
    event_type = "user.mfa_enabled"
    description = "A second factor was turned on (recovery codes were issued with it)."

    user_id: uuid.UUID
    email: EmailStr
    method: MfaMethod
    enabled_at: datetime


class MfaDisabled(EventData):
    event_type = "user.mfa_disabled"
    description = "The user turned a second factor off (after a recent sign-in)."

    user_id: uuid.UUID
    email: EmailStr
    method: MfaMethod
    disabled_at: datetime


class RecoveryCodeUsed(EventData):
    event_type = "user.recovery_code_used"
    description = "A recovery code stood in for the second factor at sign-in; it is spent."

    user_id: uuid.UUID
    email: EmailStr
    codes_left: int = Field(ge=0, description="Unused recovery codes the user still has")
    used_at: datetime


class MfaResetByAdmin(EventData):
    event_type = "user.mfa_reset_by_admin"
    description = "An admin removed every second factor and recovery code of the user."

    user_id: uuid.UUID
    email: EmailStr
    admin_id: uuid.UUID
    reset_at: datetime


class PasskeyAdded(EventData):
    event_type = "user.passkey_added"
    description = "A passkey was registered; it signs the user in without a password."

    user_id: uuid.UUID
    email: EmailStr
    passkey_id: uuid.UUID
    name: str
    added_at: datetime


class PasskeyRemoved(EventData):
    event_type = "user.passkey_removed"
    description = "The user removed a passkey (after a recent sign-in)."

    user_id: uuid.UUID
    email: EmailStr
    passkey_id: uuid.UUID
    name: str
    removed_at: datetime


class NewSignIn(EventData):
    event_type = "user.new_sign_in"
    description = (
        "A sign-in from a device or a network not seen for this user lately (not their first "
        "sign-in): tell them, in case it was not them."
    )

    user_id: uuid.UUID
    email: EmailStr
    method: Literal["password", "email_code", "google", "github", "passkey"]
    signed_in_at: datetime
    ip: str | None = Field(description="The client's address as auth-service judged it")
    place: str | None = Field(
        default=None, description="The address's approximate place (city, country), when GeoIP is configured"
    )
    user_agent: str | None
    new_device: bool = Field(description="The user agent was not seen in a recent sign-in")
    new_network: bool = Field(description="The address's /24 (IPv4) or /48 (IPv6) was not seen lately")


AUTH_EVENTS: tuple[type[EventData], ...] = (
    UserRegistered,
    UserEmailVerificationRequested,
    UserSignUpAttempted,
    UserVerified,
    PasswordResetRequested,
    PasswordChanged,
    LoginCodeRequested,
    UserEmailChanged,
    UserDeactivated,
    UserReactivated,
    UserDeleted,
    UserErased,
    SessionRevoked,
    IdentityLinked,
    IdentityUnlinked,
    MfaEnabled,
    MfaDisabled,
    RecoveryCodeUsed,
    MfaResetByAdmin,
    PasskeyAdded,
    PasskeyRemoved,
    NewSignIn,
)
