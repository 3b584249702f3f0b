"""Who a provider's person is here: sign in the linked identity, else link by verified email, else
provision a new account. And a signed-in user's identities: list, link, unlink."""

from __future__ import annotations

import re
import secrets
import uuid
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.repository import UserRepository
from auth_service.accounts.service import send_verification
from auth_service.audit import service as audit
from auth_service.errors import (
    AccountDeactivated,
    IdentityInUse,
    IdentityNotFound,
    LastSignInMethod,
    OAuthStateInvalid,
    ProviderEmailUnusable,
    RedirectNotAllowed,
    UserNotFound,
)
from auth_service.events import emit
from auth_service.keys.service import KeyRing
from auth_service.mfa.login import SecondFactorRequired, after_first_factor
from auth_service.models import Identity, User
from auth_service.oauth.providers import ProviderName, ProviderProfile
from auth_service.oauth.repository import IdentityRepository
from auth_service.principal import Client
from auth_service.sessions.service import IssuedTokens, revoke_all_sessions
from auth_service.settings import Settings
from gatehouse_contracts.events import IdentityLinked, IdentityUnlinked, UserRegistered, UserVerified
from gatehouse_platform.db import utcnow

USERNAME_ALLOWED = re.compile(r"[^A-Za-z0-9_.-]+")


def check_redirect(url: str | None, allowlist: list[str]) -> str | None:
    """`url` if it falls under an allow-listed origin (and path prefix, when the entry has one)."""
    if url is None:
        return None
    target = urlsplit(url)
    if target.scheme not in ("http", "https") or not target.hostname or target.username or "\\" in url:
        raise RedirectNotAllowed("redirect_to must be an absolute http(s) URL on an allowed origin.")
    for entry in allowlist:
        allowed = urlsplit(entry)
        same_origin = (target.scheme, target.hostname, target.port) == (
            allowed.scheme,
            allowed.hostname,
            allowed.port,
        )
        if same_origin and target.path.startswith(allowed.path or "/"):
            return url
    raise RedirectNotAllowed("redirect_to is not on the list of allowed redirect targets.")


async def sign_in(
    db: AsyncSession, keyring: KeyRing, settings: Settings, profile: ProviderProfile, client: Client
) -> IssuedTokens | SecondFactorRequired:
    user = await _account_for(db, settings, profile)
    return await after_first_factor(db, keyring, settings, user, method=profile.provider, client=client)


async def _account_for(db: AsyncSession, settings: Settings, profile: ProviderProfile) -> User:
    users = UserRepository(db)
    identity = await IdentityRepository(db).by_subject(profile.provider, profile.subject)
    if identity is not None:
        user = await users.by_id(identity.user_id, for_update=True)
        assert user is not None  # the foreign key cascades
        identity.email, identity.email_verified = profile.email, profile.email_verified
        identity.last_login_at = utcnow()
        return user
    if not profile.email:
        raise ProviderEmailUnusable("The provider shared no email address; allow access to it and try again.")
    existing = await users.by_email(profile.email, for_update=True)
    if existing is None:
        return await _provision(db, settings, profile)
    if not profile.email_verified:
        # Anyone can put any address on a provider account: an unverified one proves nothing.
        raise ProviderEmailUnusable(
            "An account with this email exists and the provider has not verified the address. "
            "Sign in another way, then link this provider from your account."
        )
    if not existing.is_active:
        raise AccountDeactivated("This account is deactivated.")
    if not existing.email_verified:
        await _claim_unverified_account(db, existing)
    await _link(db, existing, profile)
    return existing


async def _claim_unverified_account(db: AsyncSession, user: User) -> None:
    """Whoever registered this address never proved they own it; the provider just proved that its
    person does. The unproven password goes (it may be an attacker's, set up in advance to share the
    account), its sessions end, and the owner can set a password by reset."""
    user.email_verified_at = utcnow()
    user.password_hash = None
    await revoke_all_sessions(db, user.id, reason="revoked")
    await emit(
        db,
        UserVerified(user_id=user.id, email=user.email, verified_at=user.email_verified_at),
        user_id=user.id,
    )


async def _link(db: AsyncSession, user: User, profile: ProviderProfile, *, announce: bool = True) -> Identity:
    """Record the identity; `announce` tells the owner (not needed when it created the account)."""
    identity = Identity(
        id=uuid.uuid4(),
        user_id=user.id,
        provider=profile.provider,
        subject=profile.subject,
        email=profile.email,
        email_verified=profile.email_verified,
        last_login_at=utcnow(),
    )
    db.add(identity)
    try:
        async with db.begin_nested():
            await db.flush()
    except IntegrityError as exc:
        raise IdentityInUse(
            f"Your account already has a {profile.provider} account linked; unlink it first."
        ) from exc
    audit.record(db, audit.AuditEventType.IDENTITY_LINKED, user.id, method=profile.provider)
    if not announce:
        return identity
    await emit(
        db,
        IdentityLinked(
            user_id=user.id,
            email=user.email,
            provider=profile.provider,
            provider_email=profile.email,
            linked_at=identity.created_at or utcnow(),
        ),
        user_id=user.id,
    )
    return identity


async def _provision(db: AsyncSession, settings: Settings, profile: ProviderProfile) -> User:
    assert profile.email is not None
    users = UserRepository(db)
    now = utcnow()
    user = User(
        id=uuid.uuid4(),
        email=profile.email,
        username=await _free_username(users, profile),
        password_hash=None,
        roles=[],
        is_active=True,
        registration_method=profile.provider,
        email_verified_at=now if profile.email_verified else None,
        last_login_at=now,
    )
    users.add_with_profile(user)
    user.profile.display_name = (profile.name or "")[:100] or None
    user.profile.avatar_url = (profile.avatar_url or "")[:2048] or None
    try:
        async with db.begin_nested():
            await db.flush()
    except IntegrityError as exc:  # a concurrent sign-up took the address or the username
        raise OAuthStateInvalid("This sign-in raced another one; please sign in again.") from exc
    await _link(db, user, profile, announce=False)
    await emit(
        db,
        UserRegistered(
            user_id=user.id,
            email=user.email,
            username=user.username,
            provider=profile.provider,
            email_verified=profile.email_verified,
            registered_at=user.created_at or now,
        ),
        user_id=user.id,
    )
    if not profile.email_verified:
        await send_verification(db, settings, user)
    return user


async def _free_username(users: UserRepository, profile: ProviderProfile) -> str:
    """From the provider's login, name or email, in our username alphabet; a suffix if taken."""
    hint = profile.username_hint or (profile.email or "").split("@")[0]
    base = USERNAME_ALLOWED.sub("-", hint).strip("-_.")[:26] or "user"
    if len(base) < 3:
        base = f"{base}-user"
    candidates = [base, *(f"{base}{n}" for n in range(2, 6))]
    for candidate in candidates:
        if not await users.username_taken(candidate):
            return candidate
    return f"{base}-{secrets.token_hex(2)}"


# A signed-in user's identities


async def identities(db: AsyncSession, user_id: uuid.UUID) -> list[Identity]:
    return await IdentityRepository(db).of_user(user_id)


async def link_identity(db: AsyncSession, user_id: uuid.UUID, profile: ProviderProfile) -> Identity:
    user = await UserRepository(db).by_id(user_id, for_update=True)
    if user is None:
        raise UserNotFound("The account that started this link is gone.")
    if not user.is_active:
        raise AccountDeactivated("This account is deactivated.")
    existing = await IdentityRepository(db).by_subject(profile.provider, profile.subject)
    if existing is not None:
        if existing.user_id != user_id:
            raise IdentityInUse(f"This {profile.provider} account signs in to another user.")
        return existing
    return await _link(db, user, profile)


async def unlink_identity(db: AsyncSession, user_id: uuid.UUID, provider: ProviderName) -> None:
    user = await UserRepository(db).by_id(user_id, for_update=True)
    assert user is not None
    repository = IdentityRepository(db)
    linked = await repository.of_user(user_id)
    if not any(i.provider == provider for i in linked):
        raise IdentityNotFound(f"No {provider} account is linked.")
    if user.password_hash is None and len(linked) == 1:
        raise LastSignInMethod("Set a password or link another provider before removing this one.")
    await repository.remove(user_id, provider)
    audit.record(db, audit.AuditEventType.IDENTITY_UNLINKED, user.id, method=provider)
    await emit(
        db,
        IdentityUnlinked(user_id=user.id, email=user.email, provider=provider, unlinked_at=utcnow()),
        user_id=user.id,
    )
