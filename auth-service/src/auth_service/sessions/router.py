"""Sign-in, refresh, sign-out and the list of my sessions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status

from auth_service.accounts.schemas import Status
from auth_service.dependencies import (
    CaptchaDep,
    CaptchaSettingsDep,
    ClientDep,
    CurrentPrincipal,
    DbSession,
    HasherDep,
    KeyRingDep,
    SettingsDep,
    ThrottleDep,
)
from auth_service.errors import (
    AccountDeactivated,
    AccountNotPendingDeletion,
    AccountPendingDeletion,
    InvalidCredentials,
    InvalidLoginCode,
    InvalidRefreshToken,
    SessionNotFound,
)
from auth_service.sessions import login, service
from auth_service.sessions.cookies import clear_refresh_cookie, sign_in_response, tokens_response
from auth_service.sessions.schemas import (
    CaptchaWidget,
    CodeLoginRequest,
    LoginCodeRequest,
    LoginRequest,
    RefreshRequest,
    SessionList,
    SessionOut,
    SignInResponse,
    TokenResponse,
)
from gatehouse_contracts.revocations import REVOCATIONS_PATH, Revocations
from gatehouse_platform.errors import TooManyRequests, Unauthorized, responses

router = APIRouter(prefix="/auth", tags=["sessions"])


@router.post(
    "/login",
    responses=responses(InvalidCredentials, AccountDeactivated, AccountPendingDeletion, TooManyRequests),
    summary="Password sign-in: tokens, or `mfa_required` and an `mfa_token` for the second step",
)
async def password_login(
    body: LoginRequest,
    db: DbSession,
    hasher: HasherDep,
    throttle: ThrottleDep,
    captcha: CaptchaDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    client: ClientDep,
    response: Response,
) -> SignInResponse:
    outcome = await login.login_with_password(
        db,
        hasher,
        throttle,
        captcha,
        keyring,
        settings,
        body.login,
        body.password,
        body.captcha_token,
        client,
    )
    return sign_in_response(response, settings, outcome)


@router.post(
    "/me/deletion/cancel",
    responses=responses(InvalidCredentials, AccountDeactivated, AccountNotPendingDeletion, TooManyRequests),
    summary="Cancel my account's deletion with my credentials: restored, and signed in as by /auth/login",
)
async def cancel_deletion(
    body: LoginRequest,
    db: DbSession,
    hasher: HasherDep,
    throttle: ThrottleDep,
    captcha: CaptchaDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    client: ClientDep,
    response: Response,
) -> SignInResponse:
    """For the answer 403 `account-pending-deletion` of `/auth/login`: the same body. An erased
    account has no credentials left (401 `invalid-credentials`); an admin's deletion is not the
    owner's to cancel (403 `account-deactivated`)."""
    outcome = await login.login_with_password(
        db,
        hasher,
        throttle,
        captcha,
        keyring,
        settings,
        body.login,
        body.password,
        body.captcha_token,
        client,
        cancel_deletion=True,
    )
    return sign_in_response(response, settings, outcome)


@router.get("/captcha", summary="The bot check: mode, provider and site key, for rendering the widget")
async def captcha_widget(captcha: CaptchaSettingsDep) -> CaptchaWidget:
    """`always`: send a `captcha_token` with every register, login and password reset;
    `adaptive`: only when an answer was 428 `captcha-required` (its problem names the same
    provider and site key); `off`: never."""
    return CaptchaWidget(**captcha.widget())


@router.post("/refresh-token", responses=responses(InvalidRefreshToken), summary="Rotate the refresh token")
async def refresh_token(
    db: DbSession,
    keyring: KeyRingDep,
    settings: SettingsDep,
    client: ClientDep,
    response: Response,
    request: Request,
    body: Annotated[RefreshRequest | None, Body()] = None,
) -> TokenResponse:
    """The refresh token comes in the JSON body (API clients) or the httpOnly cookie (browsers)."""
    raw = (body.refresh_token if body else None) or request.cookies.get(settings.refresh_cookie_name)
    if not raw:
        raise InvalidRefreshToken("Send the refresh token in the body or the refresh cookie.")
    issued = await service.refresh_session(db, keyring, settings, raw, client)
    return tokens_response(response, settings, issued)


@router.post(
    "/request/login-code", status_code=status.HTTP_202_ACCEPTED, responses=responses(TooManyRequests)
)
async def request_login_code(
    body: LoginCodeRequest,
    db: DbSession,
    hasher: HasherDep,
    throttle: ThrottleDep,
    settings: SettingsDep,
    client: ClientDep,
) -> Status:
    await login.request_login_code(db, hasher, throttle, settings, str(body.email), client)
    return Status(status="accepted", detail="If the address has an account, a code is on its way.")


@router.post(
    "/login/code",
    responses=responses(InvalidLoginCode, AccountDeactivated, TooManyRequests),
    summary="Sign in with an emailed code: tokens, or `mfa_required` and an `mfa_token`",
)
async def code_login(
    body: CodeLoginRequest,
    db: DbSession,
    hasher: HasherDep,
    throttle: ThrottleDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    client: ClientDep,
    response: Response,
) -> SignInResponse:
    outcome = await login.login_with_code(
        db, hasher, throttle, keyring, settings, str(body.email), body.code, client
    )
    return sign_in_response(response, settings, outcome)


@router.post("/logout", responses=responses(Unauthorized), summary="End this session")
async def logout(
    principal: CurrentPrincipal, db: DbSession, settings: SettingsDep, response: Response
) -> Status:
    await service.logout(db, principal)
    clear_refresh_cookie(response, settings)
    return Status(status="logged_out")


@router.post("/logout-all", responses=responses(Unauthorized), summary="End every session of mine")
async def logout_all(
    principal: CurrentPrincipal, db: DbSession, settings: SettingsDep, response: Response
) -> Status:
    await service.revoke_all_sessions(db, principal.user.id, reason="logout_all")
    clear_refresh_cookie(response, settings)
    return Status(status="logged_out")


@router.get("/sessions", responses=responses(Unauthorized))
async def list_sessions(principal: CurrentPrincipal, db: DbSession) -> SessionList:
    sessions = await service.active_sessions(db, principal.user.id)
    return SessionList(items=[SessionOut.of(s, principal.session_id) for s in sessions])


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, SessionNotFound),
)
async def revoke_session(session_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession) -> None:
    await service.revoke_own_session(db, principal.user.id, session_id)


@router.get(
    REVOCATIONS_PATH.removeprefix("/auth"),
    include_in_schema=False,  # for the deployment's own verifiers; the gateway refuses the path
    summary="Revocations that can still matter, for verifiers rebuilding their denylist",
)
async def revocation_list(db: DbSession, settings: SettingsDep) -> Revocations:
    return await service.revocations(db, settings)
