"""Setting up and removing second factors, recovery codes, and checking a second factor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.audit import service as audit
from auth_service.clock import Clock
from auth_service.errors import InvalidField, MfaNotEnabled, TotpAlreadyEnabled, TotpSetupNotStarted
from auth_service.events import emit
from auth_service.mfa.repository import RecoveryCodeRepository, TotpFactorRepository
from auth_service.mfa.totp import TotpSeeds, matching_step, qr_svg
from auth_service.models import RecoveryCode, TotpFactor, User
from auth_service.passkeys.repository import PasskeyRepository
from auth_service.security import new_recovery_code, recovery_code_digest
from auth_service.settings import Settings
from gatehouse_contracts.events import MfaDisabled, MfaEnabled, MfaResetByAdmin, RecoveryCodeUsed

RECOVERY_CODE_COUNT = 10


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True)
class MfaStatus:
    totp: bool
    recovery_codes_left: int
    passkeys: int

    @property
    def has_factor(self) -> bool:
        """A factor beyond the password: the app, or a passkey (a whole multi-factor sign-in)."""
        return self.totp or self.passkeys > 0

    @property
    def methods(self) -> list[str]:
        """What a password, code or provider sign-in offers as its second step."""
        methods = []
        if self.totp:
            methods.append("totp")
            if self.recovery_codes_left:
                methods.append("recovery_code")
        if self.passkeys:
            methods.append("passkey")
        return methods


async def status(db: AsyncSession, user_id: uuid.UUID) -> MfaStatus:
    totp, left, passkeys = await TotpFactorRepository(db).factors(user_id)
    return MfaStatus(totp=totp, recovery_codes_left=left if totp else 0, passkeys=passkeys)


async def start_totp_setup(db: AsyncSession, seeds: TotpSeeds, user: User) -> TotpSetup:
    """A new seed, pending until confirmed with a code; a previous pending setup is replaced."""
    factors = TotpFactorRepository(db)
    current = await factors.get(user.id, for_update=True)
    if current is not None and current.confirmed_at is not None:
        raise TotpAlreadyEnabled("Turn the authenticator app off before setting up another.")
    secret = seeds.new_secret()
    if current is None:
        factors.add(TotpFactor(user_id=user.id, secret_encrypted=seeds.encrypt(secret)))
    else:
        current.secret_encrypted = seeds.encrypt(secret)
        current.last_used_step = None
    uri = seeds.provisioning_uri(secret, user.email)
    return TotpSetup(secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri))


async def confirm_totp(
    db: AsyncSession, seeds: TotpSeeds, settings: Settings, clock: Clock, user: User, code: str
) -> list[str]:
    """Turns the pending authenticator app on once a code from it matches; returns the first
    recovery codes, which are shown this once."""
    factor = await TotpFactorRepository(db).get(user.id, for_update=True)
    if factor is None or factor.confirmed_at is not None:
        raise TotpSetupNotStarted("Start the authenticator app setup first.")
    step = matching_step(
        seeds.decrypt(factor.secret_encrypted), code, at=clock.now(), window=settings.totp_valid_window
    )
    if step is None:
        raise InvalidField("code", "The code does not match; check the app's clock and try again.")
    now = clock.utcnow()
    factor.confirmed_at = now
    factor.last_used_step = step
    codes = await _replace_recovery_codes(db, settings, user.id)
    audit.record(db, audit.AuditEventType.TOTP_ENABLED, user.id, method="totp")
    await emit(
        db, MfaEnabled(user_id=user.id, email=user.email, method="totp", enabled_at=now), user_id=user.id
    )
    return codes


async def disable_totp(db: AsyncSession, clock: Clock, user: User) -> None:
    """Turns the authenticator app off; its recovery codes go with it (they stand in for it)."""
    if await TotpFactorRepository(db).confirmed(user.id, for_update=True) is None:
        raise MfaNotEnabled("No authenticator app is set up.")
    await TotpFactorRepository(db).remove(user.id)
    await RecoveryCodeRepository(db).remove_all(user.id)
    audit.record(db, audit.AuditEventType.TOTP_DISABLED, user.id, method="totp")
    await emit(
        db,
        MfaDisabled(user_id=user.id, email=user.email, method="totp", disabled_at=clock.utcnow()),
        user_id=user.id,
    )


async def regenerate_recovery_codes(db: AsyncSession, settings: Settings, user: User) -> list[str]:
    if await TotpFactorRepository(db).confirmed(user.id) is None:
        raise MfaNotEnabled("Set up an authenticator app first: recovery codes stand in for it.")
    audit.record(db, audit.AuditEventType.RECOVERY_CODES_REGENERATED, user.id)
    return await _replace_recovery_codes(db, settings, user.id)


async def _replace_recovery_codes(db: AsyncSession, settings: Settings, user_id: uuid.UUID) -> list[str]:
    """New codes; the old ones die."""
    codes_repo = RecoveryCodeRepository(db)
    await codes_repo.remove_all(user_id)
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        codes_repo.add(
            RecoveryCode(
                user_id=user_id, code_hash=recovery_code_digest(settings.token_secret, str(user_id), code)
            )
        )
    return codes


async def reset_by_admin(db: AsyncSession, clock: Clock, admin: User, user: User) -> None:
    """Removes every second factor, passkey and recovery code of `user`; they are told by email."""
    await TotpFactorRepository(db).remove(user.id)
    await RecoveryCodeRepository(db).remove_all(user.id)
    await PasskeyRepository(db).remove_all(user.id)
    audit.record(db, audit.AuditEventType.ADMIN_MFA_RESET, user.id, actor_id=admin.id)
    await emit(
        db,
        MfaResetByAdmin(user_id=user.id, email=user.email, admin_id=admin.id, reset_at=clock.utcnow()),
        user_id=user.id,
    )


async def verify_totp(
    db: AsyncSession, seeds: TotpSeeds, settings: Settings, clock: Clock, user_id: uuid.UUID, code: str
) -> bool:
    """A code from the user's authenticator app, each accepted once: its time-step must come after
    the last accepted one (the factor's row is locked, so two uses of one code take turns)."""
    factor = await TotpFactorRepository(db).confirmed(user_id, for_update=True)
    if factor is None:
        return False
    step = matching_step(
        seeds.decrypt(factor.secret_encrypted), code, at=clock.now(), window=settings.totp_valid_window
    )
    if step is None or (factor.last_used_step is not None and step <= factor.last_used_step):
        return False
    factor.last_used_step = step
    return True


async def use_recovery_code(
    db: AsyncSession, settings: Settings, clock: Clock, user: User, code: str
) -> bool:
    """Spends one of the user's recovery codes, if `code` is one; the user is told how many are left."""
    codes = RecoveryCodeRepository(db)
    record = await codes.usable(user.id, recovery_code_digest(settings.token_secret, str(user.id), code))
    if record is None:
        return False
    now = clock.utcnow()
    record.used_at = now
    await db.flush()
    left = await codes.count_unused(user.id)
    await emit(
        db, RecoveryCodeUsed(user_id=user.id, email=user.email, codes_left=left, used_at=now), user_id=user.id
    )
    return True
