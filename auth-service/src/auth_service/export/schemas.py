"""The account data export (GDPR articles 15 and 20): everything auth-service keeps about a person,
in one JSON document, without a secret (no password hash, authenticator seed, recovery code, token
digest or passkey public key)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from auth_service.accounts.schemas import UserOut
from auth_service.audit.schemas import AuditEventOut
from auth_service.models import AuthSession, Passkey, TotpFactor
from auth_service.oauth.schemas import IdentityOut


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
        )


class ExportedAuthenticatorApp(BaseModel):
    created_at: datetime
    confirmed_at: datetime | None

    @classmethod
    def of(cls, factor: TotpFactor) -> ExportedAuthenticatorApp:
        return cls(created_at=factor.created_at, confirmed_at=factor.confirmed_at)


class ExportedPasskey(BaseModel):
    id: uuid.UUID
    name: str
    aaguid: str = Field(description="The authenticator's model, as it declared it")
    backup_eligible: bool
    backed_up: bool
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, passkey: Passkey) -> ExportedPasskey:
        return cls(
            id=passkey.id,
            name=passkey.name,
            aaguid=passkey.aaguid,
            backup_eligible=passkey.backup_eligible,
            backed_up=passkey.backed_up,
            created_at=passkey.created_at,
            last_used_at=passkey.last_used_at,
        )


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
