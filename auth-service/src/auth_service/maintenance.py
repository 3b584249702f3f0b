"""Periodic and operator work: purge expired secrets, create the first admin."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.accounts.repository import OneTimeTokenRepository, UserRepository
from auth_service.audit.service import purge_older_than
from auth_service.errors import InvalidField
from auth_service.mfa.repository import MfaChallengeRepository
from auth_service.models import User
from auth_service.security import PasswordHasher, check_password_policy, normalize_password
from auth_service.sessions.repository import LoginCodeRepository, RefreshTokenRepository, SessionRepository
from auth_service.settings import Settings, get_settings
from gatehouse_platform.db import session_scope, utcnow
from gatehouse_platform.retention import prune_outbox
from gatehouse_platform.tasks import run_job

_EMAIL = TypeAdapter(EmailStr)  # as the API and the events check an address

log = logging.getLogger(__name__)

T = TypeVar("T")


async def run_in_transaction(work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    """One unit of work outside a request (CLI, Celery task), on its own short-lived engine."""
    settings = get_settings()

    async def job(sessions: async_sessionmaker[AsyncSession]) -> T:
        async with session_scope(sessions) as session:
            return await work(session, settings)

    return await run_job(settings.database_url, job, pool_size=1)


# Spent and expired rows are kept this long for audit before they go.
RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class PurgeResult:
    one_time_tokens: int
    login_codes: int
    refresh_tokens: int
    sessions: int
    published_events: int
    mfa_challenges: int
    audit_events: int


async def purge_expired(db: AsyncSession, settings: Settings) -> PurgeResult:
    horizon = utcnow() - RETENTION
    now = utcnow()
    tokens = await OneTimeTokenRepository(db).purge(now, horizon)
    codes = await LoginCodeRepository(db).purge(now, horizon)
    refresh = await RefreshTokenRepository(db).purge(now, horizon)
    sessions = await SessionRepository(db).purge(horizon)
    published = await prune_outbox(db)
    challenges = await MfaChallengeRepository(db).purge(now, horizon)
    audit_events = await purge_older_than(db, settings.audit_retention_days)
    result = PurgeResult(tokens, codes, refresh, sessions, published, challenges, audit_events)
    log.info("purged expired credentials", extra=result.__dict__)
    return result


async def create_admin(
    db: AsyncSession, settings: Settings, *, email: str, password: str, username: str | None = None
) -> User:
    """Creates the admin, or grants admin to an existing account with that email (idempotent). The
    address must be one registration accepts (no special-use domain such as .local or .test): the
    events that carry it refuse any other."""
    try:
        email = _EMAIL.validate_python(email)
    except ValidationError:
        raise InvalidField("email", "Not an email address registration accepts.") from None
    users = UserRepository(db)
    existing = await users.by_email(email)
    if existing is not None:
        if "admin" not in existing.roles:
            existing.roles = sorted({*existing.roles, "admin"})
        return existing
    username = username or email.split("@")[0][:32]
    password = normalize_password(password)
    check_password_policy(password, email=email, username=username)
    hasher = PasswordHasher(settings)
    try:
        password_hash = await hasher.hash(password)
    finally:
        hasher.close()
    user = User(
        id=uuid.uuid4(),
        email=email,
        username=username,
        password_hash=password_hash,
        roles=["admin"],
        is_active=True,
        email_verified_at=utcnow(),
        registration_method="password",
    )
    users.add_with_profile(user)
    await db.flush()
    return user
