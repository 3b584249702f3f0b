"""auth-service's domain errors: each carries its status and a stable problem type."""

from __future__ import annotations

from typing import ClassVar

from gatehouse_platform.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized
from gatehouse_platform.errors import ReauthenticationRequired as ReauthenticationRequired  # shared


class InvalidCredentials(Unauthorized):
    slug = "invalid-credentials"
    title = "Invalid credentials"
    keeps_changes: ClassVar[bool] = True  # a failed sign-in's audit entry must stay


class InvalidRefreshToken(Unauthorized):
    slug = "invalid-refresh-token"
    title = "Invalid refresh token"


class RefreshTokenReused(InvalidRefreshToken):
    """A rotated-out refresh token came back: the family is revoked, and that must be committed."""

    slug = "refresh-token-reused"
    title = "Refresh token reused"
    keeps_changes: ClassVar[bool] = True


class InvalidLoginCode(Unauthorized):
    slug = "invalid-login-code"
    title = "Invalid or expired code"
    keeps_changes: ClassVar[bool] = True  # the spent attempt must be recorded


class InvalidOneTimeToken(DomainError):
    status = 400
    slug = "invalid-token"
    title = "Invalid or expired token"


class AccountDeactivated(Forbidden):
    slug = "account-deactivated"
    title = "Account deactivated"


class AccountPendingDeletion(Forbidden):
    """The right password for an account whose deletion was asked for: `erase_at` says until when
    `POST /auth/me/deletion/cancel` with the same credentials restores it."""

    slug = "account-pending-deletion"
    title = "Account scheduled for deletion"


class AccountAlreadyDeleted(Conflict):
    slug = "account-already-deleted"
    title = "Account already deleted"


class AccountNotPendingDeletion(Conflict):
    slug = "account-not-pending-deletion"
    title = "No deletion to cancel"


class EmailAlreadyRegistered(Conflict):
    slug = "email-taken"
    title = "Email already registered"


class UsernameTaken(Conflict):
    slug = "username-taken"
    title = "Username already taken"


class AlreadyVerified(Conflict):
    slug = "already-verified"
    title = "Email already verified"


class UserNotFound(NotFound):
    slug = "user-not-found"
    title = "User not found"


class SessionNotFound(NotFound):
    slug = "session-not-found"
    title = "Session not found"


class LastAdmin(Conflict):
    slug = "last-admin"
    title = "Cannot remove the last active admin"


class InvalidField(DomainError):
    """A request field breaks a rule the schema cannot express (password policy, …): 422 like any
    validation failure, with the field's message in `errors`."""

    status = 422
    slug = "validation-failed"
    title = "Validation failed"

    def __init__(self, field: str, message: str) -> None:
        super().__init__("The request has invalid fields.", errors={field: message})


# Sign in with Google / GitHub


class ProviderNotConfigured(NotFound):
    slug = "provider-not-configured"
    title = "Sign-in provider not available"


class RedirectNotAllowed(DomainError):
    status = 400
    slug = "redirect-not-allowed"
    title = "Redirect target not allowed"


class OAuthStateInvalid(DomainError):
    status = 400
    slug = "oauth-state-invalid"
    title = "Sign-in state invalid"


class OAuthDenied(DomainError):
    status = 400
    slug = "oauth-denied"
    title = "Sign-in cancelled at the provider"


class OAuthCodeRejected(DomainError):
    status = 400
    slug = "oauth-code-rejected"
    title = "The provider refused the sign-in"


class ProviderUnavailable(DomainError):
    status = 502
    slug = "oauth-provider-unavailable"
    title = "Sign-in provider unavailable"


class ProviderEmailUnusable(Conflict):
    slug = "provider-email-unusable"
    title = "The provider's email address cannot be used"


class IdentityInUse(Conflict):
    slug = "identity-in-use"
    title = "This provider account belongs to another user"


class IdentityNotFound(NotFound):
    slug = "identity-not-found"
    title = "Identity not found"


class LastSignInMethod(Conflict):
    slug = "last-sign-in-method"
    title = "Cannot remove the last way to sign in"


# Second factors and step-up


class TotpAlreadyEnabled(Conflict):
    slug = "totp-already-enabled"
    title = "An authenticator app is already set up"


class TotpSetupNotStarted(Conflict):
    slug = "totp-setup-not-started"
    title = "No authenticator app setup to confirm"


class MfaNotEnabled(Conflict):
    slug = "mfa-not-enabled"
    title = "No second factor is set up"


class InvalidMfaToken(Unauthorized):
    slug = "invalid-mfa-token"
    title = "Sign-in expired or already completed"


class InvalidSecondFactor(Unauthorized):
    """A wrong code for a pending sign-in: the spent attempt (and a token that died of it) stays."""

    slug = "invalid-second-factor"
    title = "Invalid code"
    keeps_changes: ClassVar[bool] = True


class MfaEnrollmentRequired(Forbidden):
    slug = "mfa-enrollment-required"
    title = "Set up a second factor first"


class MfaSignInRequired(Forbidden):
    """An admin with a second factor whose session was not started (or confirmed) with it."""

    slug = "mfa-sign-in-required"
    title = "Sign in with your second factor"


# Passkeys


class PasskeyRejected(Unauthorized):
    """A passkey response that does not verify: unknown or spent challenge, wrong origin or RP ID,
    bad signature, a sign counter that went back, a credential of someone else."""

    slug = "passkey-rejected"
    title = "Passkey not accepted"


class PasskeyNotFound(NotFound):
    slug = "passkey-not-found"
    title = "Passkey not found"


class CaptchaRequired(DomainError):
    """A bot check is asked for (AUTH_CAPTCHA_MODE): the problem carries `provider`, `site_key`
    and `action`, so a client can render the widget and send its token as `captcha_token`."""

    status = 428
    slug = "captcha-required"
    title = "Bot check required"


class CaptchaFailed(CaptchaRequired):
    """The token sent was refused by siteverify (wrong, expired or already used): solve it again."""

    slug = "captcha-failed"
    title = "Bot check failed"
    keeps_changes: ClassVar[bool] = True  # a failed sign-in's audit entry must stay


class CaptchaUnavailable(DomainError):
    """A bot check is required but siteverify did not answer in time or sensibly: fails closed."""

    status = 503
    slug = "captcha-unavailable"
    title = "Bot check unavailable"


class ApiKeyNotFound(NotFound):
    slug = "api-key-not-found"
    title = "API key not found"


class InvalidApiKey(Unauthorized):
    """A presented API key that is not one (garbled, unknown, wrong secret), or is revoked or
    expired, or whose owner is deactivated: one answer for all, so a caller learns nothing."""

    slug = "invalid-api-key"
    title = "Invalid API key"


class TooManyApiKeys(Conflict):
    slug = "too-many-api-keys"
    title = "Too many API keys"


# Organizations


class OrgNotFound(NotFound):
    """No such org, or one the caller is not in: the two look alike, so ids cannot be probed."""

    slug = "org-not-found"
    title = "Organization not found"


class OrgSlugTaken(Conflict):
    slug = "org-slug-taken"
    title = "Organization slug already taken"


class OrgRoleRequired(Forbidden):
    slug = "org-role-required"
    title = "Your role in this organization does not allow this"


class MemberNotFound(NotFound):
    slug = "member-not-found"
    title = "Member not found"


class LastOwner(Conflict):
    slug = "last-owner"
    title = "An organization keeps at least one owner"


class AlreadyMember(Conflict):
    slug = "already-member"
    title = "Already a member of this organization"


class InvitationNotFound(NotFound):
    slug = "invitation-not-found"
    title = "Invitation not found"


class InvitationInvalid(DomainError):
    """An unknown, expired, revoked or already used invitation token."""

    status = 400
    slug = "invitation-invalid"
    title = "Invalid or expired invitation"


class InvitationEmailMismatch(Forbidden):
    slug = "invitation-email-mismatch"
    title = "This invitation was sent to another address"


class EmailNotVerified(Forbidden):
    slug = "email-not-verified"
    title = "Verify your email address first"


class SeatLimitReached(Conflict):
    """Members and pending invitations already fill the seats the org's plan allows."""

    slug = "seat-limit-reached"
    title = "The organization has no seat left"


class MemberLimitReached(Conflict):
    slug = "member-limit-reached"
    title = "The organization has reached its member limit"


class DomainNotFound(NotFound):
    slug = "org-domain-not-found"
    title = "Domain not found"


class DomainTaken(Conflict):
    slug = "org-domain-taken"
    title = "This domain is already claimed"


class DomainVerificationFailed(Conflict):
    slug = "org-domain-verification-failed"
    title = "The domain's verification file was not found"
