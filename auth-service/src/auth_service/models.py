"""auth-service tables. The platform's `outbox` table lives in the same database."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gatehouse_platform.db import Base, TimestampMixin, utcnow


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email_lower", func.lower(text("email")), unique=True),
        Index("uq_users_username_lower", func.lower(text("username")), unique=True),
        # verifiers rebuilding their denylist ask for the recently deactivated
        Index("ix_users_deactivated_at", "deactivated_at", postgresql_where=text("NOT is_active")),
        # the beat's erasure looks for deletions whose grace is over
        Index("ix_users_erase_at", "erase_at", postgresql_where=text("erased_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320))
    username: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(Text)
    email_verified_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list, server_default=text("'{}'"))
    registration_method: Mapped[str] = mapped_column(
        String(16), default="password", server_default="password"
    )
    deactivated_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    # Deletion: asked for at `deletion_requested_at` by the user ("self", who may cancel it) or an
    # admin (the account is deactivated with it), erased by the beat once `erase_at` is past; an
    # erased user is a tombstone of its id, with no personal data.
    deletion_requested_at: Mapped[datetime | None]
    deletion_requested_by: Mapped[str | None] = mapped_column(String(8))
    erase_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]

    profile: Mapped[Profile] = relationship(back_populates="user", lazy="raise", uselist=False)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def pending_deletion(self) -> bool:
        return self.deletion_requested_at is not None and self.erased_at is None

    @property
    def owner_may_cancel_deletion(self) -> bool:
        return self.pending_deletion and self.deletion_requested_by == "self"

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class Profile(Base):
    __tablename__ = "profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    bio: Mapped[str | None] = mapped_column(String(1000))
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="profile", lazy="raise")


class AuthSession(Base):
    """A signed-in device: one refresh-token family. Its id is the `sid` claim of access tokens."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_user_active", "user_id", postgresql_where=text("revoked_at IS NULL")),
        # verifiers rebuilding their denylist ask for the recently revoked
        Index("ix_sessions_revoked_at", "revoked_at", postgresql_where=text("revoked_at IS NOT NULL")),
        # a removal from an org revokes the sessions acting in it
        Index("ix_sessions_org_id_active", "org_id", postgresql_where=text("revoked_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(32))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(INET)
    # the `auth_time` and `amr` claims: when and how the sign-in was last proven in this session
    auth_time: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    amr: Mapped[list[str]] = mapped_column(ARRAY(String(8)), default=list, server_default=text("'{}'"))
    # the organization the session acts in (`org_id`/`org_role` claims), set by a switch for the
    # session's whole life; None: a personal session. No foreign key: revoked sessions outlive orgs.
    org_id: Mapped[uuid.UUID | None]
    org_role: Mapped[str | None] = mapped_column(String(8))


class RefreshToken(Base):
    """One refresh token of a session; only the SHA-256 of the token is stored.

    The session's current token is the one not yet rotated. A rotated token's successor is
    derivable from it (HMAC), which is how a replay within the grace period gets the same answer.
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    expires_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]


class TokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


class OneTimeToken(Base):
    """Emailed link tokens. A purpose each, single use, bound to the address it was sent to."""

    __tablename__ = "one_time_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[TokenPurpose] = mapped_column(
        Enum(TokenPurpose, name="token_purpose", values_callable=lambda e: [m.value for m in e])
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class LoginCode(Base):
    """A six-digit sign-in code, Argon2-hashed, single use, with an attempt budget."""

    __tablename__ = "login_codes"
    __table_args__ = (CheckConstraint("attempts >= 0", name="attempts_non_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    used_at: Mapped[datetime | None]


class SigningKey(Base):
    """An RS256 key pair. The private half is stored Fernet-encrypted.

    A key is published (in the JWKS) from its creation and signs from `activates_at` until
    `retired_at`; of the keys that may sign, the latest to activate does. A rotated-in key is
    published ahead of signing so every verifier can fetch it first; a retired key stays in the
    JWKS until every token it signed has expired (`retired_at` + access-token lifetime).
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    activates_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    retired_at: Mapped[datetime | None]


class Identity(Base):
    """A Google or GitHub account that signs in to a user: one per provider per user.

    `subject` is the provider's stable id for the person (Google `sub`, GitHub numeric id), never the
    email, which can change or be recycled.
    """

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("provider", "subject", name="uq_identities_provider_subject"),
        UniqueConstraint("user_id", "provider", name="uq_identities_user_id_provider"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    last_login_at: Mapped[datetime | None]


class TotpFactor(Base):
    """A user's authenticator app (RFC 6238). The seed is stored Fernet-encrypted, like the signing
    keys; it signs in only once confirmed with a code. `last_used_step` is the time-step of the
    last code accepted: a code is accepted once, and never one from an earlier step."""

    __tablename__ = "totp_factors"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    confirmed_at: Mapped[datetime | None]
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(Base):
    """A single-use code that stands in for the second factor; only its keyed hash is stored."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_id_code_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    used_at: Mapped[datetime | None]


class MfaChallenge(Base):
    """A sign-in whose first factor (`method`) was proven and whose second is awaited: the
    `mfa_token` handed out (stored as SHA-256), short-lived, single use, with an attempt budget."""

    __tablename__ = "mfa_challenges"
    __table_args__ = (CheckConstraint("attempts >= 0", name="attempts_non_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    method: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    used_at: Mapped[datetime | None]


class Passkey(Base):
    """A WebAuthn credential of a user (discoverable, user-verified). `sign_count` must move forward
    on each use; `backup_eligible` is fixed at creation and checked on every sign-in."""

    __tablename__ = "passkeys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    name: Mapped[str] = mapped_column(String(64))
    aaguid: Mapped[str] = mapped_column(String(36))
    backup_eligible: Mapped[bool] = mapped_column(Boolean)
    backed_up: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    last_used_at: Mapped[datetime | None]


class AuditEvent(Base):
    """One entry of a user's security audit trail: a sign-in, a change to how they sign in, a
    revoked session, an admin's action on the account. Append-only: nothing edits a row, and the
    retention purge is the only delete. `user_id` is no foreign key, so the trail can outlive the
    account. `device` (a digest of the user agent) and `network` (the IP's /24 or /48) are what a
    new sign-in is compared with."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_user_id_occurred_at", "user_id", "occurred_at"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID]
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    actor_id: Mapped[uuid.UUID | None]  # who acted, when not the user (an admin)
    method: Mapped[str | None] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(INET)
    place: Mapped[str | None] = mapped_column(String(200))  # the IP's city and country (GeoIP)
    user_agent: Mapped[str | None] = mapped_column(String(512))
    device: Mapped[str | None] = mapped_column(String(32))
    network: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))


class ApiKey(Base):
    """A long-lived credential for scripts and servers: `gk_live_<prefix id>_<secret>`. Only the
    public `prefix` (`gk_live_` and its id part, how people tell keys apart and how a presented key
    is found) and a keyed hash of the whole key are stored. The gateway exchanges a key for a
    short-lived access token whose `sid` is the key's id and whose `scope` is `scopes`.

    `org_id` (no foreign key: organizations may live elsewhere) marks an org's key, which belongs
    to the org rather than to its creator `user_id`; personal keys leave it empty."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_user_id", "user_id"),
        Index("ix_api_keys_org_id", "org_id", postgresql_where=text("org_id IS NOT NULL")),
        # verifiers rebuilding their denylist ask for the recently revoked
        Index("ix_api_keys_revoked_at", "revoked_at", postgresql_where=text("revoked_at IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    org_id: Mapped[uuid.UUID | None]
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(32))

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


class Org(Base):
    """An organization: people acting together. `membership_version` grows by one with every
    membership change (the events carry it); `seat_limit` and `seat_limit_version` are billing's
    (org.seat_limit_changed, the highest version kept); `member_limit` is the org's own setting.
    Invitations and domain joins are refused past the lower of the two, counting members and
    pending invitations."""

    __tablename__ = "orgs"
    __table_args__ = (
        Index("uq_orgs_slug", "slug", unique=True),
        CheckConstraint("member_limit >= 1", name="member_limit_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)
    member_limit: Mapped[int] = mapped_column(Integer)
    allow_domain_join: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    membership_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    seat_limit: Mapped[int | None] = mapped_column(Integer)
    seat_limit_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class OrgMember(Base):
    __tablename__ = "org_members"
    __table_args__ = (
        CheckConstraint("role IN ('owner', 'admin', 'member')", name="role_known"),
        Index("ix_org_members_user_id", "user_id"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))
    joined_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    via: Mapped[str] = mapped_column(String(16))  # created, invitation, domain


class OrgInvitation(Base):
    """An emailed invitation: single use, only the SHA-256 of its token stored. Pending while
    neither accepted, revoked nor expired; a pending one holds a seat."""

    __tablename__ = "org_invitations"
    __table_args__ = (
        CheckConstraint("role IN ('owner', 'admin', 'member')", name="role_known"),
        Index("ix_org_invitations_org_id", "org_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(8))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None]


class OrgDomain(Base):
    """A domain an org claims. Verified once `https://<domain>/.well-known/gatehouse-org-verification.txt`
    served its `verification_token`; a verified domain belongs to one org only."""

    __tablename__ = "org_domains"
    __table_args__ = (
        UniqueConstraint("org_id", "domain", name="uq_org_domains_org_id_domain"),
        Index(
            "uq_org_domains_verified_domain",
            "domain",
            unique=True,
            postgresql_where=text("verified_at IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(253))
    verification_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    verified_at: Mapped[datetime | None]
