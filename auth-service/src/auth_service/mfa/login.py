"""The second step of a sign-in: after the first factor, a user with a second factor gets an
`mfa_token` instead of tokens, and trades it with a code for the session.

The pending sign-in is a row in Postgres (`mfa_challenges`, the token stored as SHA-256), not a
Redis key: it is created, spent and counted in the request's own unit of work — a wrong code's
attempt and a token that died of it are committed with the error, the session starts in the same
transaction that spends the token, and the row lock makes concurrent guesses on one token take
turns so its attempt budget holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.audit import service as audit
from auth_service.clock import Clock
from auth_service.errors import AccountDeactivated, InvalidMfaToken, InvalidSecondFactor
from auth_service.keys.service import KeyRing
from auth_service.mfa.repository import MfaChallengeRepository
from auth_service.mfa.service import status, use_recovery_code, verify_totp
from auth_service.mfa.totp import TotpSeeds
from auth_service.models import MfaChallenge, User
from auth_service.passkeys.service import PasskeyProof, verify_assertion
from auth_service.principal import Client
from auth_service.security import new_token, token_digest
from auth_service.sessions.service import IssuedTokens, start_session
from auth_service.settings import Settings
from auth_service.throttle import Throttle
from gatehouse_platform.db import utcnow


@dataclass(frozen=True)
class SecondFactorRequired:
    mfa_token: str
    methods: list[str]
    expires_in: int


async def after_first_factor(
    db: AsyncSession, keyring: KeyRing, settings: Settings, user: User, *, method: str, client: Client
) -> IssuedTokens | SecondFactorRequired:
    """The session, or — when the user has a second factor — a pending sign-in bound to this
    first factor's attempt (its user and method), single use and short-lived."""
    if not user.is_active:
        raise AccountDeactivated("This account is deactivated.")
    methods = (await status(db, user.id)).methods
    if not methods:
        return await start_session(db, keyring, settings, user, method=method, client=client)
    token = new_token()
    ttl = settings.mfa_token_ttl_seconds
    MfaChallengeRepository(db).add(
        MfaChallenge(
            user_id=user.id,
            token_hash=token_digest(token),
            method=method,
            expires_at=utcnow() + timedelta(seconds=ttl),
        )
    )
    return SecondFactorRequired(mfa_token=token, methods=methods, expires_in=ttl)


async def complete_sign_in(
    db: AsyncSession,
    seeds: TotpSeeds,
    throttle: Throttle,
    keyring: KeyRing,
    settings: Settings,
    clock: Clock,
    mfa_token: str,
    *,
    code: str | None,
    recovery_code: str | None,
    passkey: PasskeyProof | None,
    client: Client,
) -> IssuedTokens:
    """A code from the authenticator app, a recovery code, or one of the user's passkeys, for a
    pending sign-in. Wrong codes are throttled per account (limits and back-off) and counted per
    token, which dies when its budget is spent."""
    pending = await MfaChallengeRepository(db).pending(token_digest(mfa_token))
    if pending is None:
        raise InvalidMfaToken("This sign-in has expired or was completed; sign in again.")
    challenge, user = pending
    account = f"mfa:{challenge.user_id}"
    await throttle.credential_attempt("login-mfa", client.ip, account)
    second_factor: str | None = "otp"
    proven: tuple[str, ...] = ()
    if code is not None:
        step = "totp"
        ok = await verify_totp(db, seeds, settings, clock, user.id, code)
    elif recovery_code is not None:
        step = "recovery_code"
        ok = await use_recovery_code(db, settings, clock, user, recovery_code)
    else:
        assert passkey is not None
        step = "passkey"
        used, proven = await verify_assertion(db, passkey, clock)
        ok, second_factor = used.user_id == user.id, None
    if not ok:
        audit.record(db, audit.AuditEventType.SIGN_IN_FAILED, user.id, client=client, method=step)
        challenge.attempts += 1
        await throttle.failed(account, method=step, ip=client.ip)
        if challenge.attempts >= settings.mfa_max_attempts:
            challenge.used_at = utcnow()
            raise InvalidSecondFactor("The code is not correct, and this sign-in is over; sign in again.")
        raise InvalidSecondFactor("The code is not correct, or was already used.")
    challenge.used_at = utcnow()
    await throttle.succeeded(account)
    return await start_session(
        db,
        keyring,
        settings,
        user,
        method=challenge.method,
        client=client,
        second_factor=second_factor,
        second_step=step,
        also_proven=proven,
    )
