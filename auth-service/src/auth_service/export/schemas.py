"""The account data export (GDPR articles 15 and 20): everything auth-service keeps about a person,
in one JSON document, without a secret (no password hash, authenticator seed, recovery code, token
digest or passkey public key)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from auth_service.accounts.schemas import UserOut
from auth_service.audit.schemas import AuditEventOut
from auth_service.models import AuthSession, Passkey
from auth_service.oauth.schemas import IdentityOut
from auth_service.passkeys.schemas import PasskeyOut


class ExportedSession(BaseModel):
    id: uuid.UUID
    method: str = Field(description="How the session was signed in: password, code, google, github, passkey")
    amr: list[str] = Field(description="How the sign-in was proven (RFC 8176)")
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None
    user_agent: str | None
    ip: str | None
    org_id: uuid.UUID | None = Field(default=None, description="The organization the session acted in")

    @classmethod
    def of(cls, session: AuthSession) -> ExportedSession:
        return cls(
            id=session.id,
            method=session.method,
            amr=list(session.amr),
            created_at=session.created_at,
            last_used_at=session.last_used_at,
            expires_at=session.expires_at,
            revoked_at=session.revoked_at,
            revoke_reason=session.revoke_reason,
            user_agent=session.user_agent,
            ip=str(session.ip) if session.ip is not None else None,
            org_id=session.org_id,
        )


class ExportedMembership(BaseModel):
    org_id: uuid.UUID
    name: str
    slug: str
    role: str
    joined_at: datetime
    via: str = Field(description="created, invitation or domain")


class ExportedAuthenticatorApp(BaseModel):
    # Read from a TotpFactor row: `ExportedAuthenticatorApp.model_validate(factor)` (not its seed).
    model_config = ConfigDict(from_attributes=True)

    created_at: datetime
    confirmed_at: datetime | None


class ExportedPasskey(PasskeyOut):
    """What `GET /auth/passkeys` shows, and what the authenticator declared (not its public key)."""

    aaguid: str = Field(description="The authenticator's model, as it declared it")
    backup_eligible: bool

    @classmethod
    def of(cls, passkey: Passkey) -> ExportedPasskey:
        shown = PasskeyOut.of(passkey).model_dump()
        return cls(**shown, aaguid=passkey.aaguid, backup_eligible=passkey.backup_eligible)


class ExportedSecondFactors(BaseModel):
    authenticator_app: ExportedAuthenticatorApp | None = Field(description="Its seed is not exported")
    recovery_codes_left: int = Field(description="The codes themselves are kept only as keyed hashes")
    passkeys: list[ExportedPasskey]


class AuthExport(BaseModel):
    service: str = "auth-service"
    exported_at: datetime
    user: UserOut = Field(description="The account and its profile")
    has_password: bool = Field(description="Whether a password is set (the password is not exported)")
    identities: list[IdentityOut] = Field(description="Google and GitHub accounts linked for sign-in")
    sessions: list[ExportedSession] = Field(
        description="Every session kept, signed out ones too, newest first"
    )
    second_factors: ExportedSecondFactors
    audit_events: list[AuditEventOut] = Field(description="The security activity kept, newest first")
    organizations: list[ExportedMembership] = Field(
        default_factory=list, description="The organizations I am in, with my role"
    )
