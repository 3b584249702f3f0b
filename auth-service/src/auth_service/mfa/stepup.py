"""Step-up: sensitive actions need a recent sign-in, and re-authentication renews it; admins may
be required to have a second factor."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.clock import Clock
from auth_service.errors import InvalidCredentials, MfaEnrollmentRequired, MfaSignInRequired
from auth_service.keys.service import KeyRing
from auth_service.mfa.service import status, verify_totp
from auth_service.mfa.totp import TotpSeeds
from auth_service.passkeys.service import PasskeyProof, verify_assertion
from auth_service.principal import Client, Principal
from auth_service.security import PasswordHasher, normalize_password
from auth_service.sessions.service import IssuedTokens, renew_sign_in
from auth_service.settings import Settings
from auth_service.throttle import Throttle
from gatehouse_platform.jwks import require_recent_sign_in as recent_sign_in


def require_recent_sign_in(principal: Principal, settings: Settings, clock: Clock) -> None:
    """From the token alone: its `auth_time` within `recent_auth_seconds` (tokens from before the
    claim existed have none, and count as old)."""
    recent_sign_in(principal.claims, settings.recent_auth_seconds, clock.now())


# RFC 8176 `amr` values that prove a sign-in used more than one factor (a passkey with user
# verification says `mfa` too)
MULTI_FACTOR_AMR = "mfa"


async def require_admin_factor(db: AsyncSession, settings: Settings, principal: Principal) -> None:
    """When `admins_need_mfa`: the admin has a second factor, and this session proved it."""
    if not settings.admins_need_mfa:
        return
    if not (await status(db, principal.user.id)).has_factor:
        raise MfaEnrollmentRequired("Admins need a second factor: set up an authenticator app or a passkey.")
    if MULTI_FACTOR_AMR not in principal.claims.amr:
        raise MfaSignInRequired("Sign in again with your second factor to use the admin API.")


async def reauthenticate(
    db: AsyncSession,
    hasher: PasswordHasher,
    seeds: TotpSeeds,
    throttle: Throttle,
    keyring: KeyRing,
    settings: Settings,
    clock: Clock,
    principal: Principal,
    *,
    password: str | None,
    code: str | None,
    passkey: PasskeyProof | None,
    client: Client,
) -> IssuedTokens:
    """The password, a code from the authenticator app, or a passkey of the caller's, proven again
    for this session."""
    user = principal.user
    account = f"reauth:{user.id}"
    await throttle.credential_attempt("reauthenticate", client.ip, account)
    proven: tuple[str, ...]
    if password is not None:
        ok = user.password_hash is not None and await hasher.verify(
            user.password_hash, normalize_password(password)
        )
        proven = ("pwd",)
    elif code is not None:
        ok = await verify_totp(db, seeds, settings, clock, user.id, code)
        proven = ("otp",)
    else:
        assert passkey is not None
        used, proven = await verify_assertion(db, passkey, clock)
        ok = used.user_id == user.id
    if not ok:
        await throttle.failed(account, method="reauthentication")
        raise InvalidCredentials("That is not correct.")
    await throttle.succeeded(account)
    return await renew_sign_in(db, keyring, settings, principal, proven=proven, at=clock.utcnow())
