"""Sessions: start one on sign-in, rotate its refresh token, revoke it; sign and check access tokens."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.repository import UserRepository
from auth_service.api_keys.repository import ApiKeyRepository
from auth_service.audit import service as audit
from auth_service.errors import AccountDeactivated, InvalidRefreshToken, RefreshTokenReused, SessionNotFound
from auth_service.events import emit
from auth_service.keys.service import KeyRing, KeySet
from auth_service.models import AuthSession, RefreshToken, User
from auth_service.orgs.repository import OrgMemberRepository
from auth_service.principal import Client, OrgKeyCaller, Principal
from auth_service.security import derive_successor, new_token, token_digest
from auth_service.sessions.repository import RefreshTokenRepository, SessionRepository
from auth_service.settings import Settings
from gatehouse_contracts.events import SessionRevoked
from gatehouse_contracts.revocations import DeactivatedUser, Revocations, RevokedSession
from gatehouse_contracts.tokens import ACCESS_TOKEN_TYP, ALGORITHM, AccessTokenClaims
from gatehouse_platform.db import utcnow
from gatehouse_platform.errors import InsufficientScope
from gatehouse_platform.jwt import InvalidToken, UnknownKeyId, decode_access_token

KEY_REFRESH_MIN_AGE = 5.0  # seconds: an unknown kid reloads the key ring at most this often


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    user: User
    session: AuthSession


# RFC 8176 `amr` values of each way to start a session (the session's `method`)
FIRST_FACTOR_AMR: dict[str, tuple[str, ...]] = {
    "password": ("pwd",),
    "email_code": ("otp",),  # a one-time code sent by email
    "google": ("fed",),
    "github": ("fed",),
    "passkey": (),  # what a passkey proves depends on it: the caller says (`also_proven`)
}


def sign_access_token(keys: KeySet, settings: Settings, user: User, session: AuthSession) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": str(user.id),
        "iat": now,
        "nbf": now,
        "exp": now + settings.access_token_ttl_seconds,
        "jti": uuid.uuid4().hex,
        "sid": str(session.id),
        "email": user.email,
        "email_verified": user.email_verified,
        "roles": sorted(user.roles),
        "auth_time": int(session.auth_time.timestamp()),
        "amr": list(session.amr),
    }
    if session.org_id is not None:
        claims["org_id"] = str(session.org_id)
        claims["org_role"] = session.org_role
    return encode_access_token(keys, claims)


def encode_access_token(keys: KeySet, claims: dict[str, Any]) -> str:
    """Signed by the current key, typed `at+jwt` (RFC 9068) so it passes as no other JWT."""
    return jwt.encode(
        claims,
        keys.signing_key,
        algorithm=ALGORITHM,
        headers={"kid": keys.signing_kid, "typ": ACCESS_TOKEN_TYP},
    )


async def verify_access_token(keyring: KeyRing, settings: Settings, token: str) -> AccessTokenClaims:
    keys = await keyring.current()
    try:
        return decode_access_token(
            token, keys.public_keys, issuer=settings.issuer, audience=settings.audience
        )
    except UnknownKeyId:
        # Another replica may have rotated keys since our cache was filled.
        if time.monotonic() - keys.loaded_at < KEY_REFRESH_MIN_AGE:
            raise
        keys = await keyring.refresh()
        return decode_access_token(
            token, keys.public_keys, issuer=settings.issuer, audience=settings.audience
        )


async def authenticate(db: AsyncSession, keyring: KeyRing, settings: Settings, token: str) -> Principal:
    """The signed-in caller. Unlike remote verifiers, we can see the database: a revoked session or
    a deactivated user is refused at once, whatever the token's expiry."""
    return await principal_of(db, await verify_access_token(keyring, settings, token))


async def principal_of(db: AsyncSession, claims: AccessTokenClaims) -> Principal:
    """The person verified `claims` name, if their session (or personal API key) still works. An
    org's API key names no person: 403 insufficient-scope once it is known to work."""
    if claims.is_api_key and claims.org_id is not None:
        await org_key_caller(db, claims)
        raise InsufficientScope(None)
    if claims.is_api_key:
        return await _api_key_principal(db, claims)
    row = await SessionRepository(db).with_user(claims.sub, claims.sid)
    if row is None:
        raise InvalidToken("Unknown session.", reason="unknown_session")
    user, session = row
    if not user.is_active:
        raise InvalidToken("Account deactivated.", reason="user_deactivated")
    if session.revoked_at is not None or session.expires_at <= utcnow():
        raise InvalidToken("Session revoked.", reason="session_revoked")
    return Principal(user=user, session_id=session.id, claims=claims)


async def org_key_caller(db: AsyncSession, claims: AccessTokenClaims) -> OrgKeyCaller:
    """A token exchanged from an org's API key (`sub` and `sid` are the key, `org_id` its org):
    the key must still work (the org's deletion revokes it)."""
    assert claims.org_id is not None
    key = await ApiKeyRepository(db).org_key(claims.sid, claims.org_id)
    if key is None or key.id != claims.sub:
        raise InvalidToken("Unknown API key.", reason="unknown_session")
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= utcnow()):
        raise InvalidToken("API key revoked or expired.", reason="session_revoked")
    return OrgKeyCaller(key=key, org_id=claims.org_id, claims=claims)


async def _api_key_principal(db: AsyncSession, claims: AccessTokenClaims) -> Principal:
    """A token exchanged from an API key: its `sid` is the key, which must still work."""
    row = await ApiKeyRepository(db).with_user(claims.sub, claims.sid)
    if row is None:
        raise InvalidToken("Unknown API key.", reason="unknown_session")
    user, key = row
    if not user.is_active:
        raise InvalidToken("Account deactivated.", reason="user_deactivated")
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= utcnow()):
        raise InvalidToken("API key revoked or expired.", reason="session_revoked")
    return Principal(user=user, session_id=key.id, claims=claims)


async def _issue(
    keyring: KeyRing, settings: Settings, user: User, session: AuthSession, refresh_token: str
) -> IssuedTokens:
    keys = await keyring.current()
    return IssuedTokens(
        access_token=sign_access_token(keys, settings, user, session),
        expires_in=settings.access_token_ttl_seconds,
        refresh_token=refresh_token,
        user=user,
        session=session,
    )


def _refresh_expiry(settings: Settings, session: AuthSession) -> datetime:
    return min(utcnow() + timedelta(seconds=settings.refresh_token_ttl_seconds), session.expires_at)


def _new_refresh_row(settings: Settings, session: AuthSession, token: str) -> RefreshToken:
    expires = _refresh_expiry(settings, session)
    return RefreshToken(session_id=session.id, token_hash=token_digest(token), expires_at=expires)


async def start_session(
    db: AsyncSession,
    keyring: KeyRing,
    settings: Settings,
    user: User,
    *,
    method: str,
    client: Client,
    second_factor: str | None = None,
    second_step: str | None = None,
    also_proven: tuple[str, ...] = (),
) -> IssuedTokens:
    """A new session for a user whose sign-in was proven just now by `method` (and, when they have
    one, the RFC 8176 `second_factor`: the `amr` then says `mfa` too; `also_proven` adds values a
    method proves only sometimes). `second_step` (totp, recovery_code, passkey) is what finished a
    two-step sign-in, for the audit trail, which records every sign-in here."""
    if not user.is_active:
        raise AccountDeactivated("This account is deactivated.")
    now = utcnow()
    amr = set(FIRST_FACTOR_AMR[method]) | set(also_proven)
    if second_factor is not None:
        amr |= {second_factor, "mfa"}
    session = AuthSession(
        id=uuid.uuid4(),
        user_id=user.id,
        method=method,
        created_at=now,
        last_used_at=now,
        auth_time=now,
        amr=sorted(amr),
        expires_at=now + timedelta(seconds=settings.session_max_age_seconds),
        user_agent=client.user_agent,
        ip=client.ip,
    )
    await audit.record_sign_in(db, settings, user, method=method, client=client, second_step=second_step)
    token = new_token()
    await SessionRepository(db).start(
        session, user, token_digest=token_digest(token), expires_at=_refresh_expiry(settings, session)
    )
    return await _issue(keyring, settings, user, session, token)


async def refresh_session(
    db: AsyncSession, keyring: KeyRing, settings: Settings, raw_token: str, client: Client
) -> IssuedTokens:
    """Rotate: the presented token is spent and its successor returned.

    The row lock makes concurrent refreshes with one token take turns: the first rotates, the
    next (within the grace period) gets the same successor. A token rotated out earlier than
    that is a stolen copy: the whole family is revoked.
    """
    tokens = RefreshTokenRepository(db)
    row = await tokens.with_owner(token_digest(raw_token))
    if row is None:
        raise InvalidRefreshToken("Unknown refresh token.")
    token, session, user = row
    now = utcnow()
    if session.revoked_at is not None:
        raise InvalidRefreshToken("This session has ended.")
    if not user.is_active:
        raise InvalidRefreshToken("This account is deactivated.")
    if session.expires_at <= now or token.expires_at <= now:
        raise InvalidRefreshToken("The refresh token has expired.")

    successor = derive_successor(settings.token_secret, str(session.id), raw_token)
    if token.rotated_at is not None:
        current = await tokens.by_digest(token_digest(successor))
        within_grace = now - token.rotated_at <= timedelta(seconds=settings.refresh_reuse_grace_seconds)
        if within_grace and current is not None and current.rotated_at is None:
            return await _issue(keyring, settings, user, session, successor)
        await revoke_sessions(db, user.id, [session], reason="refresh_reuse")
        raise RefreshTokenReused("This refresh token was already used; the session is revoked.")

    if session.org_id is not None:
        # the role may have changed since the switch: the new access token says the current one
        member = await OrgMemberRepository(db).find(session.org_id, user.id)
        if member is None:  # its removal revoked the session; never sign an org claim without one
            raise InvalidRefreshToken("This session has ended.")
        session.org_role = member.role
    await tokens.rotate(
        token,
        session,
        successor_digest=token_digest(successor),
        expires_at=_refresh_expiry(settings, session),
        at=now,
        user_agent=client.user_agent or session.user_agent,
        ip=client.ip or session.ip,
    )
    return await _issue(keyring, settings, user, session, successor)


async def renew_sign_in(
    db: AsyncSession,
    keyring: KeyRing,
    settings: Settings,
    principal: Principal,
    *,
    proven: tuple[str, ...],
    at: datetime,
) -> IssuedTokens:
    """The caller proved a factor (`proven`: RFC 8176 values) again `at` now (the clock the
    recent-sign-in rule compares with): the session's `auth_time`, and fresh tokens. Its refresh
    tokens so far are rotated out: presented again, they count as reuse like any rotated-out token."""
    session = await SessionRepository(db).own(principal.user.id, principal.session_id)
    if session is None or session.revoked_at is not None:
        raise SessionNotFound("This session has ended.")
    now = utcnow()
    session.auth_time = at
    session.last_used_at = now
    session.amr = sorted({*session.amr, *proven})
    await RefreshTokenRepository(db).rotate_out(session.id, at=now)
    token = new_token()
    db.add(_new_refresh_row(settings, session, token))
    await db.flush()
    return await _issue(keyring, settings, principal.user, session, token)


async def switch_session(
    db: AsyncSession,
    keyring: KeyRing,
    settings: Settings,
    principal: Principal,
    *,
    org_id: uuid.UUID | None,
    org_role: str | None,
) -> IssuedTokens:
    """Exchange the caller's session for one acting in `org_id` with `org_role` (None: personal).

    A new session (a new `sid`) continues the sign-in (same method, `auth_time`, `amr`, expiry) and
    the old one is revoked, so a token of the old session can never act where the new one does, and
    revoking the sessions acting in an org reaches exactly the tokens that carry it."""
    current = await SessionRepository(db).own(principal.user.id, principal.session_id)
    if current is None or current.revoked_at is not None:
        raise SessionNotFound("This session has ended.")
    now = utcnow()
    session = AuthSession(
        id=uuid.uuid4(),
        user_id=current.user_id,
        method=current.method,
        created_at=now,
        last_used_at=now,
        auth_time=current.auth_time,
        amr=list(current.amr),
        expires_at=current.expires_at,
        user_agent=current.user_agent,
        ip=current.ip,
        org_id=org_id,
        org_role=org_role,
    )
    db.add(session)
    await revoke_sessions(db, principal.user.id, [current], reason="org_switched")
    token = new_token()
    db.add(_new_refresh_row(settings, session, token))
    await db.flush()
    return await _issue(keyring, settings, principal.user, session, token)


async def revoke_sessions(
    db: AsyncSession,
    user_id: uuid.UUID,
    sessions: list[AuthSession],
    *,
    reason: str,
    actor_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revoke the given sessions and tell the verifiers (session.revoked); `actor_id`: the admin
    who did it, for the audit trail."""
    now = utcnow()
    revoked = [s for s in sessions if s.revoked_at is None]
    for session in revoked:
        session.revoked_at = now
        session.revoke_reason = reason
    if revoked:
        audit.record(
            db,
            audit.AuditEventType.SESSIONS_REVOKED,
            user_id,
            actor_id=actor_id,
            details={"reason": reason, "session_ids": [str(s.id) for s in revoked]},
        )
        await db.flush()
        await emit(
            db,
            SessionRevoked(
                user_id=user_id,
                session_ids=[s.id for s in revoked],
                reason=reason,
                revoked_at=now,
            ),
            user_id=user_id,
        )
    return [s.id for s in revoked]


async def active_sessions(db: AsyncSession, user_id: uuid.UUID) -> list[AuthSession]:
    return await SessionRepository(db).active(user_id)


async def revoke_all_sessions(
    db: AsyncSession, user_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None
) -> list[uuid.UUID]:
    sessions = [s for s in await SessionRepository(db).active(user_id, for_update=True) if s.id != keep]
    return await revoke_sessions(db, user_id, sessions, reason=reason)


async def logout(db: AsyncSession, principal: Principal) -> None:
    """End the session the caller's access token belongs to."""
    session = await SessionRepository(db).own(principal.user.id, principal.session_id)
    if session is not None:
        await revoke_sessions(db, principal.user.id, [session], reason="logout")


async def revoke_own_session(
    db: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID, *, actor_id: uuid.UUID | None = None
) -> None:
    """End one of the user's active sessions (by them, or by the admin `actor_id`); any other id
    is not found."""
    session = await SessionRepository(db).own(user_id, session_id)
    if session is None or session.revoked_at is not None or session.expires_at <= utcnow():
        raise SessionNotFound("No such active session.")
    await revoke_sessions(db, user_id, [session], reason="revoked", actor_id=actor_id)


# Verifiers keep a revocation for the lifetime of the tokens it refuses, plus their leeway: the list
# reaches that far back, with a margin for clocks.
REVOCATION_LIST_MARGIN = timedelta(seconds=60)


async def revocations(db: AsyncSession, settings: Settings) -> Revocations:
    """Every revocation a verifier's denylist must hold now: sessions and API keys revoked and users
    deactivated (and still so) within the longest access-token lifetime."""
    since = utcnow() - timedelta(seconds=settings.access_token_ttl_seconds) - REVOCATION_LIST_MARGIN
    return Revocations(
        since=since,
        # a revoked API key is the `sid` of the tokens exchanged from it: listed among the sessions
        sessions=[
            RevokedSession(session_id=sid, revoked_at=at)
            for sid, at in [
                *await SessionRepository(db).revoked_since(since),
                *await ApiKeyRepository(db).revoked_since(since),
            ]
        ],
        users=[
            DeactivatedUser(user_id=uid, deactivated_at=at)
            for uid, at in await UserRepository(db).deactivated_since(since)
        ],
    )
