"""Forgotten password (emailed link), setting a new one with it, and changing it when signed in."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.breaches import BreachedPasswords
from auth_service.accounts.repository import OneTimeTokenRepository, UserRepository
from auth_service.accounts.service import (
    confirm_password,
    issue_one_time_token,
    mark_verified,
    spend_one_time_token,
)
from auth_service.audit import service as audit
from auth_service.captcha import Captcha
from auth_service.events import emit
from auth_service.models import TokenPurpose, User
from auth_service.principal import Client, Principal
from auth_service.security import (
    PasswordHasher,
    check_password_policy,
    normalize_password,
)
from auth_service.sessions.service import revoke_all_sessions
from auth_service.settings import Settings
from auth_service.throttle import Throttle
from gatehouse_contracts.events import PasswordChanged, PasswordResetRequested
from gatehouse_platform.db import utcnow


async def request_reset(
    db: AsyncSession,
    throttle: Throttle,
    captcha: Captcha,
    settings: Settings,
    email: str,
    captcha_token: str | None,
    client: Client,
) -> None:
    """Sends a link when the address belongs to an active account; the caller answers the same
    either way (the bot check too comes before the address is looked up)."""
    await throttle.request_attempt("reset", client.ip, email)
    await captcha.check("reset", client.ip, email, captcha_token)
    user = await UserRepository(db).by_email(email)
    if user is None or not user.is_active:
        return
    token, expires_at = await issue_one_time_token(
        db, user, TokenPurpose.RESET_PASSWORD, settings.reset_token_ttl_seconds
    )
    await emit(
        db,
        PasswordResetRequested(
            user_id=user.id, email=user.email, username=user.username, token=token, expires_at=expires_at
        ),
        user_id=user.id,
    )


async def _set_password(
    hasher: PasswordHasher, breaches: BreachedPasswords, user: User, new_password: str
) -> None:
    password = normalize_password(new_password)
    check_password_policy(password, email=user.email, username=user.username)
    await breaches.check(password)
    user.password_hash = await hasher.hash(password)


async def reset_password(
    db: AsyncSession, hasher: PasswordHasher, breaches: BreachedPasswords, raw_token: str, new_password: str
) -> User:
    """The link proves the mailbox: the password is set, every session ends, other links die."""
    user = await spend_one_time_token(db, raw_token, TokenPurpose.RESET_PASSWORD)
    await _set_password(hasher, breaches, user, new_password)
    await OneTimeTokenRepository(db).spend_all(user.id, TokenPurpose.RESET_PASSWORD)
    if user.email_verified_at is None:
        await mark_verified(db, user)
    await revoke_all_sessions(db, user.id, reason="password_reset")
    audit.record(db, audit.AuditEventType.PASSWORD_CHANGED, user.id, method="reset")
    await emit(
        db,
        PasswordChanged(user_id=user.id, email=user.email, method="reset", changed_at=utcnow()),
        user_id=user.id,
    )
    return user


async def change_password(
    db: AsyncSession,
    hasher: PasswordHasher,
    breaches: BreachedPasswords,
    principal: Principal,
    old_password: str,
    new_password: str,
) -> None:
    """Old password required; the other sessions end, this one stays."""
    user = await UserRepository(db).by_id(principal.user.id, for_update=True)
    assert user is not None
    await confirm_password(hasher, user, old_password)
    await _set_password(hasher, breaches, user, new_password)
    await revoke_all_sessions(db, user.id, reason="password_changed", keep=principal.session_id)
    audit.record(db, audit.AuditEventType.PASSWORD_CHANGED, user.id, method="change")
    await emit(
        db,
        PasswordChanged(user_id=user.id, email=user.email, method="change", changed_at=utcnow()),
        user_id=user.id,
    )
