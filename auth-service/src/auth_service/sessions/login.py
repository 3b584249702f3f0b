"""Signing in: with a password, or with a one-time code sent by email."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.repository import UserRepository
from auth_service.accounts.service import mark_verified
from auth_service.dependencies import Client, Services
from auth_service.errors import AccountDeactivated, InvalidCredentials, InvalidLoginCode
from auth_service.events import emit
from auth_service.models import LoginCode
from auth_service.security import new_login_code, normalize_password
from auth_service.sessions.service import IssuedTokens, start_session
from gatehouse_contracts.events import LoginCodeRequested
from gatehouse_platform.db import utcnow


async def login_with_password(
    db: AsyncSession, services: Services, login: str, password: str, client: Client
) -> IssuedTokens:
    await services.throttle.credential_attempt("login", client.ip, login)
    user = await UserRepository(db).by_login(login)
    password = normalize_password(password)
    # verify() hashes against a dummy when there is no user or no password: same cost either way.
    ok = await services.hasher.verify(user.password_hash if user else None, password)
    if user is None or not ok:
        await services.throttle.failed(login)
        raise InvalidCredentials("The email, username or password is not correct.")
    assert user.password_hash is not None
    if not user.is_active:
        raise AccountDeactivated("This account is deactivated.")
    if services.hasher.needs_rehash(user.password_hash):
        user.password_hash = await services.hasher.hash(password)
    await services.throttle.succeeded(login)
    return await start_session(db, services, user, method="password", client=client)


async def request_login_code(db: AsyncSession, services: Services, email: str, client: Client) -> None:
    """Emails a code to an active account; the caller answers the same for any address, and an
    unknown address costs the same hash."""
    await services.throttle.request_attempt("login-code", client.ip, email)
    user = await UserRepository(db).by_email(email)
    code = new_login_code()
    code_hash = await services.hasher.hash(code)
    if user is None or not user.is_active:
        return
    now = utcnow()
    await db.execute(
        update(LoginCode).where(LoginCode.user_id == user.id, LoginCode.used_at.is_(None)).values(used_at=now)
    )
    expires_at = now + timedelta(seconds=services.settings.login_code_ttl_seconds)
    db.add(LoginCode(user_id=user.id, code_hash=code_hash, expires_at=expires_at))
    await emit(
        db,
        LoginCodeRequested(user_id=user.id, email=user.email, code=code, expires_at=expires_at),
        user_id=user.id,
    )


async def login_with_code(
    db: AsyncSession, services: Services, email: str, code: str, client: Client
) -> IssuedTokens:
    """The latest unused code, within its lifetime and attempt budget; spent on success."""
    await services.throttle.credential_attempt("login-code", client.ip, email)
    user = await UserRepository(db).by_email(email)
    record = None
    if user is not None:
        record = (
            await db.execute(
                select(LoginCode)
                .where(
                    LoginCode.user_id == user.id, LoginCode.used_at.is_(None), LoginCode.expires_at > utcnow()
                )
                .order_by(LoginCode.created_at.desc())
                .limit(1)
                .with_for_update()
            )
        ).scalar_one_or_none()
    max_attempts = services.settings.login_code_max_attempts
    usable = record is not None and record.attempts < max_attempts
    ok = await services.hasher.verify(record.code_hash if record is not None and usable else None, code)
    if user is None or record is None or not ok:
        if record is not None:
            record.attempts += 1
            if record.attempts >= max_attempts:
                record.used_at = utcnow()  # the budget is spent: this code is dead
        await services.throttle.failed(email)
        raise InvalidLoginCode("The code is not correct or has expired; ask for a new one.")
    record.used_at = utcnow()
    if not user.is_active:
        raise AccountDeactivated("This account is deactivated.")
    if user.email_verified_at is None:
        await mark_verified(db, user)  # the code arrived in this mailbox
    await services.throttle.succeeded(email)
    return await start_session(db, services, user, method="email_code", client=client)
