"""Signing in: with a password, or with a one-time code sent by email."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts import deletion
from auth_service.accounts.repository import UserRepository
from auth_service.accounts.service import mark_verified
from auth_service.audit import service as audit
from auth_service.captcha import Captcha
from auth_service.errors import (
    AccountDeactivated,
    AccountNotPendingDeletion,
    AccountPendingDeletion,
    CaptchaFailed,
    InvalidCredentials,
    InvalidLoginCode,
)
from auth_service.events import emit
from auth_service.keys.service import KeyRing
from auth_service.mfa.login import SecondFactorRequired, after_first_factor
from auth_service.models import LoginCode
from auth_service.principal import Client
from auth_service.security import PasswordHasher, new_login_code, normalize_password
from auth_service.sessions.repository import LoginCodeRepository
from auth_service.sessions.service import IssuedTokens
from auth_service.settings import Settings
from auth_service.throttle import Throttle
from gatehouse_contracts.events import LoginCodeRequested
from gatehouse_platform.db import utcnow


async def login_with_password(
    db: AsyncSession,
    hasher: PasswordHasher,
    throttle: Throttle,
    captcha: Captcha,
    keyring: KeyRing,
    settings: Settings,
    login: str,
    password: str,
    captcha_token: str | None,
    client: Client,
    *,
    cancel_deletion: bool = False,
) -> IssuedTokens | SecondFactorRequired:
    """The password sign-in. An account its owner asked to delete answers 403
    `account-pending-deletion` to the right password (only then: a wrong one says nothing of it);
    with `cancel_deletion` the right password restores it and signs in (its second factor, when it
    has one, is still asked)."""
    await throttle.credential_attempt("login", client.ip, login)
    try:
        # before the password is looked at: a bot past the threshold learns nothing of it
        await captcha.check("login", client.ip, login, captcha_token)
    except CaptchaFailed:
        failed = await UserRepository(db).by_login(login)
        if failed is not None:
            audit.record(db, audit.AuditEventType.SIGN_IN_FAILED, failed.id, client=client, method="captcha")
        raise
    user = await UserRepository(db).by_login(login)
    password = normalize_password(password)
    # verify() hashes against a dummy when there is no user or no password: same cost either way.
    ok = await hasher.verify(user.password_hash if user else None, password)
    if user is None or not ok:
        if user is not None:
            audit.record(db, audit.AuditEventType.SIGN_IN_FAILED, user.id, client=client, method="password")
        await throttle.failed(login, method="password", ip=client.ip)
        raise InvalidCredentials("The email, username or password is not correct.")
    assert user.password_hash is not None
    await throttle.succeeded(login)
    if cancel_deletion:
        if not user.owner_may_cancel_deletion:
            if user.is_active:
                raise AccountNotPendingDeletion("This account is not scheduled for deletion.")
            raise AccountDeactivated("This account is deactivated.")
        deletion.restore(db, user)
        await deletion.announce_restored(db, user)
    elif user.owner_may_cancel_deletion:
        assert user.erase_at is not None
        raise AccountPendingDeletion(
            "This account is scheduled for deletion. Cancel the deletion to sign in again.",
            erase_at=user.erase_at.isoformat(),
        )
    if not user.is_active:
        raise AccountDeactivated("This account is deactivated.")
    if hasher.needs_rehash(user.password_hash):
        user.password_hash = await hasher.hash(password)
    return await after_first_factor(db, keyring, settings, user, method="password", client=client)


async def request_login_code(
    db: AsyncSession,
    hasher: PasswordHasher,
    throttle: Throttle,
    settings: Settings,
    email: str,
    client: Client,
) -> None:
    """Emails a code to an active account; the caller answers the same for any address, and an
    unknown address costs the same hash."""
    await throttle.request_attempt("login-code", client.ip, email)
    user = await UserRepository(db).by_email(email)
    code = new_login_code()
    code_hash = await hasher.hash(code)
    if user is None or not user.is_active:
        return
    now = utcnow()
    codes = LoginCodeRepository(db)
    await codes.spend_all(user.id, at=now)
    expires_at = now + timedelta(seconds=settings.login_code_ttl_seconds)
    codes.add(LoginCode(user_id=user.id, code_hash=code_hash, expires_at=expires_at))
    await emit(
        db,
        LoginCodeRequested(user_id=user.id, email=user.email, code=code, expires_at=expires_at),
        user_id=user.id,
    )


async def login_with_code(
    db: AsyncSession,
    hasher: PasswordHasher,
    throttle: Throttle,
    keyring: KeyRing,
    settings: Settings,
    email: str,
    code: str,
    client: Client,
) -> IssuedTokens | SecondFactorRequired:
    """The latest unused code, within its lifetime and attempt budget; spent on success."""
    await throttle.credential_attempt("login-code", client.ip, email)
    user = await UserRepository(db).by_email(email)
    record = await LoginCodeRepository(db).latest_usable(user.id) if user is not None else None
    max_attempts = settings.login_code_max_attempts
    usable = record is not None and record.attempts < max_attempts
    ok = await hasher.verify(record.code_hash if record is not None and usable else None, code)
    if user is None or record is None or not ok:
        if user is not None:
            audit.record(db, audit.AuditEventType.SIGN_IN_FAILED, user.id, client=client, method="email_code")
        if record is not None:
            record.attempts += 1
            if record.attempts >= max_attempts:
                record.used_at = utcnow()  # the budget is spent: this code is dead
        await throttle.failed(email, method="email_code", ip=client.ip)
        raise InvalidLoginCode("The code is not correct or has expired; ask for a new one.")
    record.used_at = utcnow()
    if not user.is_active:
        raise AccountDeactivated("This account is deactivated.")
    if user.email_verified_at is None:
        await mark_verified(db, user)  # the code arrived in this mailbox
    await throttle.succeeded(email)
    return await after_first_factor(db, keyring, settings, user, method="email_code", client=client)
