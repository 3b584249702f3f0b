"""Second factors: the authenticator app, recovery codes, the second step of a sign-in, and
re-authentication."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from auth_service.dependencies import (
    ChallengesDep,
    ClientDep,
    ClockDep,
    CurrentPrincipal,
    DbSession,
    HasherDep,
    KeyRingDep,
    RecentPrincipal,
    SettingsDep,
    ThrottleDep,
    TotpSeedsDep,
    WebAuthnDep,
)
from auth_service.errors import (
    InvalidCredentials,
    InvalidField,
    InvalidMfaToken,
    InvalidSecondFactor,
    MfaNotEnabled,
    PasskeyRejected,
    ReauthenticationRequired,
    TotpAlreadyEnabled,
    TotpSetupNotStarted,
)
from auth_service.mfa import login, service, stepup
from auth_service.mfa.schemas import (
    MfaLoginRequest,
    MfaStatusOut,
    ReauthenticateRequest,
    RecoveryCodesOut,
    TotpCode,
    TotpSetupOut,
)
from auth_service.passkeys.service import PasskeyProof
from auth_service.sessions.cookies import tokens_response
from auth_service.sessions.schemas import TokenResponse
from gatehouse_platform.errors import TooManyRequests, Unauthorized, responses

router = APIRouter(prefix="/auth", tags=["mfa"])


@router.get("/mfa", responses=responses(Unauthorized), summary="Which second factors are on")
async def mfa_status(principal: CurrentPrincipal, db: DbSession) -> MfaStatusOut:
    return MfaStatusOut.of(await service.status(db, principal.user.id))


@router.post(
    "/mfa/totp/setup",
    responses=responses(Unauthorized, TotpAlreadyEnabled),
    summary="Start setting up an authenticator app",
)
async def totp_setup(
    principal: CurrentPrincipal, db: DbSession, seeds: TotpSeedsDep, response: Response
) -> TotpSetupOut:
    response.headers["Cache-Control"] = "no-store"
    return TotpSetupOut.of(await service.start_totp_setup(db, seeds, principal.user))


@router.post(
    "/mfa/totp/confirm",
    responses=responses(Unauthorized, TotpSetupNotStarted, InvalidField),
    summary="Turn the authenticator app on with a code from it; returns the recovery codes, once",
)
async def totp_confirm(
    body: TotpCode,
    principal: CurrentPrincipal,
    db: DbSession,
    seeds: TotpSeedsDep,
    settings: SettingsDep,
    clock: ClockDep,
    response: Response,
) -> RecoveryCodesOut:
    response.headers["Cache-Control"] = "no-store"
    codes = await service.confirm_totp(db, seeds, settings, clock, principal.user, body.code)
    return RecoveryCodesOut(recovery_codes=codes)


@router.delete(
    "/mfa/totp",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(ReauthenticationRequired, MfaNotEnabled),
    summary="Turn the authenticator app off (needs a recent sign-in)",
)
async def totp_disable(principal: RecentPrincipal, db: DbSession, clock: ClockDep) -> None:
    await service.disable_totp(db, clock, principal.user)


@router.post(
    "/mfa/recovery-codes",
    responses=responses(ReauthenticationRequired, MfaNotEnabled),
    summary="New recovery codes; the old ones stop working (needs a recent sign-in)",
)
async def recovery_codes(
    principal: RecentPrincipal, db: DbSession, settings: SettingsDep, response: Response
) -> RecoveryCodesOut:
    response.headers["Cache-Control"] = "no-store"
    return RecoveryCodesOut(
        recovery_codes=await service.regenerate_recovery_codes(db, settings, principal.user)
    )


@router.post(
    "/login/mfa",
    responses=responses(InvalidMfaToken, InvalidSecondFactor, PasskeyRejected, TooManyRequests),
    summary="Finish a sign-in with the second factor",
)
async def mfa_login(
    body: MfaLoginRequest,
    db: DbSession,
    seeds: TotpSeedsDep,
    throttle: ThrottleDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    clock: ClockDep,
    client: ClientDep,
    webauthn: WebAuthnDep,
    challenges: ChallengesDep,
    response: Response,
) -> TokenResponse:
    issued = await login.complete_sign_in(
        db,
        seeds,
        throttle,
        keyring,
        settings,
        clock,
        body.mfa_token,
        code=body.code,
        recovery_code=body.recovery_code,
        passkey=PasskeyProof(body.passkey, webauthn, challenges) if body.passkey is not None else None,
        client=client,
    )
    return tokens_response(response, settings, issued)


@router.post(
    "/reauthenticate",
    responses=responses(Unauthorized, InvalidCredentials, PasskeyRejected, TooManyRequests),
    summary="Prove the password, a code or a passkey again: fresh tokens for this session, auth_time now",
)
async def reauthenticate(
    body: ReauthenticateRequest,
    principal: CurrentPrincipal,
    db: DbSession,
    hasher: HasherDep,
    seeds: TotpSeedsDep,
    throttle: ThrottleDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    clock: ClockDep,
    client: ClientDep,
    webauthn: WebAuthnDep,
    challenges: ChallengesDep,
    response: Response,
) -> TokenResponse:
    passkey = PasskeyProof(body.passkey, webauthn, challenges) if body.passkey is not None else None
    issued = await stepup.reauthenticate(
        db,
        hasher,
        seeds,
        throttle,
        keyring,
        settings,
        clock,
        principal,
        password=body.password,
        code=body.code,
        passkey=passkey,
        client=client,
    )
    return tokens_response(response, settings, issued)
