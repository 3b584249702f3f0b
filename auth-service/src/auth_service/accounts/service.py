"""Account rules: register, profile, email change, email verification, deactivation."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.breaches import BreachedPasswords
from auth_service.accounts.repository import OneTimeTokenRepository, UserRepository
from auth_service.accounts.schemas import ChangeEmailRequest, ProfileUpdate, RegisterRequest
from auth_service.api_keys import service as api_keys
from auth_service.audit import service as audit
from auth_service.captcha import Captcha
from auth_service.errors import (
    AlreadyVerified,
    EmailAlreadyRegistered,
    InvalidCredentials,
    InvalidOneTimeToken,
    UsernameTaken,
    UserNotFound,
)
from auth_service.events import emit
from auth_service.models import OneTimeToken, TokenPurpose, User
from auth_service.principal import Client, Principal
from auth_service.security import (
    PasswordHasher,
    check_password_policy,
    new_token,
    normalize_password,
    token_digest,
)
from auth_service.sessions.service import revoke_all_sessions
from auth_service.settings import Settings
from auth_service.throttle import Throttle
from gatehouse_contracts.events import (
    UserDeactivated,
    UserEmailChanged,
    UserEmailVerificationRequested,
    UserRegistered,
    UserSignUpAttempted,
    UserVerified,
)
from gatehouse_platform.db import utcnow


async def get_user(db: AsyncSession, user_id: uuid.UUID, *, for_update: bool = False) -> User:
    """The user with their profile."""
    user = await UserRepository(db).by_id(user_id, for_update=for_update)
    if user is None:
        raise UserNotFound(f"No user {user_id}.")
    return user


async def register(
    db: AsyncSession,
    hasher: PasswordHasher,
    breaches: BreachedPasswords,
    throttle: Throttle,
    captcha: Captcha,
    settings: Settings,
    body: RegisterRequest,
    client: Client,
) -> None:
    """A new account and its verification email, or, when the address already has an account, an
        email telling its owner; the caller answers the same either way, so registration tells no one
        which addresses have accounts. Both ways hash the password (the expensive step), so neither
        answers measurably sooner. Usernames are public handles: a taken one is said. A password seen in
    breaches is refused before the address is looked at, so that answer tells nothing either."""
    await throttle.request_attempt("register", client.ip, str(body.email))
    await captcha.check("register", client.ip, str(body.email), body.captcha_token)
    users = UserRepository(db)
    email = str(body.email)
    if await users.username_taken(body.username):
        raise UsernameTaken("This username is taken.")
    password = normalize_password(body.password)
    check_password_policy(password, email=email, username=body.username)
    await breaches.check(password)
    user = User(
        id=uuid.uuid4(),
        email=email,
        username=body.username,
        password_hash=await hasher.hash(password),
        roles=[],
        is_active=True,
        registration_method="password",
    )
    try:
        # A known address is found by the insert failing on its unique index, not by a look-up
        # first: both ways write, so they take alike (and no concurrent sign-up slips in between).
        async with db.begin_nested():
            users.add_with_profile(user)
            user.profile.display_name = body.display_name
            await db.flush()
    except IntegrityError as exc:
        existing = await users.by_email(email)
        if existing is None:  # the username went to a concurrent registration
            raise UsernameTaken("This username is taken.") from exc
        await tell_owner_of_sign_up_attempt(db, existing)
        return
    await emit(
        db,
        UserRegistered(
            user_id=user.id,
            email=user.email,
            username=user.username,
            provider="password",
            email_verified=False,
            registered_at=user.created_at,
        ),
        user_id=user.id,
    )
    await send_verification(db, settings, user)


async def tell_owner_of_sign_up_attempt(db: AsyncSession, user: User) -> None:
    """Someone registered with `user`'s address: its owner hears of it (sign in or reset). A
    deactivated account is told nothing, as a reset request for it sends nothing."""
    if not user.is_active:
        return
    await emit(
        db,
        UserSignUpAttempted(user_id=user.id, email=user.email, username=user.username, attempted_at=utcnow()),
        user_id=user.id,
    )


async def resend_verification(
    db: AsyncSession, throttle: Throttle, settings: Settings, user: User, client: Client
) -> None:
    """Asked for by the user: throttled, as every request that sends an email is."""
    await throttle.request_attempt("verify", client.ip, str(user.id))
    await send_verification(db, settings, user)


async def send_verification(db: AsyncSession, settings: Settings, user: User) -> None:
    """A new link for the current address; earlier links stop working."""
    if user.email_verified:
        raise AlreadyVerified("This email address is already verified.")
    token, expires_at = await issue_one_time_token(
        db, user, TokenPurpose.VERIFY_EMAIL, settings.verification_token_ttl_seconds
    )
    await emit(
        db,
        UserEmailVerificationRequested(
            user_id=user.id, email=user.email, username=user.username, token=token, expires_at=expires_at
        ),
        user_id=user.id,
    )


async def issue_one_time_token(
    db: AsyncSession, user: User, purpose: TokenPurpose, ttl_seconds: int
) -> tuple[str, datetime]:
    """A new link token for `user`'s current address (only its digest is stored) and when it
    expires; the earlier tokens of the same purpose stop working."""
    tokens = OneTimeTokenRepository(db)
    await tokens.spend_all(user.id, purpose)
    token = new_token()
    expires_at = utcnow() + timedelta(seconds=ttl_seconds)
    tokens.add(
        OneTimeToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=token_digest(token),
            email=user.email,
            expires_at=expires_at,
        )
    )
    return token, expires_at


async def spend_one_time_token(db: AsyncSession, raw: str, purpose: TokenPurpose) -> User:
    """The user a link token belongs to, spending the token; any failure says the same thing."""
    tokens = OneTimeTokenRepository(db)
    record = await tokens.by_digest(token_digest(raw), purpose)
    if record is None or record.used_at is not None or record.expires_at <= utcnow():
        raise InvalidOneTimeToken("This link is invalid or has expired; ask for a new one.")
    user = await UserRepository(db).by_id(record.user_id, for_update=True)
    if user is None or not user.is_active or user.email.lower() != record.email.lower():
        raise InvalidOneTimeToken("This link is invalid or has expired; ask for a new one.")
    record.used_at = utcnow()
    return user


async def verify_email(db: AsyncSession, raw_token: str) -> User:
    user = await spend_one_time_token(db, raw_token, TokenPurpose.VERIFY_EMAIL)
    if user.email_verified_at is None:
        await mark_verified(db, user)
    return user


async def mark_verified(db: AsyncSession, user: User) -> None:
    user.email_verified_at = utcnow()
    await emit(
        db,
        UserVerified(user_id=user.id, email=user.email, verified_at=user.email_verified_at),
        user_id=user.id,
    )


async def update_profile(db: AsyncSession, user: User, body: ProfileUpdate) -> User:
    users = UserRepository(db)
    changes = body.model_dump(exclude_unset=True, mode="json")
    username = changes.pop("username", None)
    if username is not None and username.lower() != user.username.lower():
        if await users.username_taken(username, excluding=user.id):
            raise UsernameTaken("This username is taken.")
        user.username = username
    elif username is not None:
        user.username = username  # a change of case only
    loaded = await users.by_id(user.id)
    assert loaded is not None
    for field, value in changes.items():
        setattr(loaded.profile, field, value)
    try:
        await db.flush()
    except IntegrityError as exc:
        raise UsernameTaken("This username is taken.") from exc
    return loaded


async def confirm_password(hasher: PasswordHasher, user: User, password: str | None) -> None:
    """Sensitive changes ask for the password again when the account has one."""
    if user.password_hash is None:
        return
    if not password or not await hasher.verify(user.password_hash, normalize_password(password)):
        raise InvalidCredentials("The password is not correct.")


async def change_email(
    db: AsyncSession,
    hasher: PasswordHasher,
    settings: Settings,
    principal: Principal,
    body: ChangeEmailRequest,
) -> User:
    users = UserRepository(db)
    user = await users.by_id(principal.user.id, for_update=True)
    assert user is not None
    await confirm_password(hasher, user, body.password)
    new_email = str(body.new_email)
    if new_email.lower() == user.email.lower():
        return user
    if await users.email_taken(new_email, excluding=user.id):
        raise EmailAlreadyRegistered("An account with this email already exists.")
    old_email = user.email
    user.email = new_email
    user.email_verified_at = None
    try:
        await db.flush()
    except IntegrityError as exc:
        raise EmailAlreadyRegistered("An account with this email already exists.") from exc
    audit.record(
        db,
        audit.AuditEventType.EMAIL_CHANGED,
        user.id,
        details={"old_email": old_email, "new_email": new_email},
    )
    await emit(
        db,
        UserEmailChanged(user_id=user.id, old_email=old_email, new_email=new_email, changed_at=utcnow()),
        user_id=user.id,
    )
    await send_verification(db, settings, user)
    return user


async def deactivate_self(
    db: AsyncSession, hasher: PasswordHasher, principal: Principal, password: str | None
) -> None:
    """The account holder's own deactivation: the password again, when the account has one."""
    user = await get_user(db, principal.user.id, for_update=True)
    await confirm_password(hasher, user, password)
    await deactivate(db, user, by="self")
    audit.record(db, audit.AuditEventType.ACCOUNT_DEACTIVATED, user.id)


async def deactivate(
    db: AsyncSession, user: User, *, by: Literal["self", "admin"], deleted: bool = False
) -> None:
    """Refresh tokens die at once; `user.deactivated` lets every verifier reject access tokens (and
    billing cancel the subscription). `deleted`: the start of a deletion, which says its own goodbye."""
    if not user.is_active:
        return
    now = utcnow()
    user.is_active = False
    user.deactivated_at = now
    await revoke_all_sessions(db, user.id, reason="deactivated")
    await api_keys.revoke_all_of_user(db, user.id, reason="owner_deleted")
    await emit(
        db,
        UserDeactivated(user_id=user.id, email=user.email, by=by, deactivated_at=now, deleted=deleted),
        user_id=user.id,
    )
