"""Sign-in, refresh, sign-out and the list of my sessions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status

from auth_service.accounts.schemas import Status
from auth_service.dependencies import ClientDep, CurrentPrincipal, DbSession, ServicesDep
from auth_service.errors import (
    AccountDeactivated,
    InvalidCredentials,
    InvalidLoginCode,
    InvalidRefreshToken,
    SessionNotFound,
)
from auth_service.sessions import login, service
from auth_service.sessions.schemas import (
    CodeLoginRequest,
    LoginCodeRequest,
    LoginRequest,
    RefreshRequest,
    SessionList,
    SessionOut,
    TokenResponse,
)
from auth_service.settings import Settings
from gatehouse_platform.errors import TooManyRequests, Unauthorized, responses

router = APIRouter(prefix="/auth", tags=["sessions"])


def set_refresh_cookie(
    response: Response, settings: Settings, issued: service.IssuedTokens, path: str | None = None
) -> None:
    """The refresh token as an httpOnly cookie, for browsers; `no-store` keeps tokens out of caches."""
    response.set_cookie(
        settings.refresh_cookie_name,
        issued.refresh_token,
        max_age=int((issued.session.expires_at - issued.session.created_at).total_seconds()),
        path=path or settings.refresh_cookie_path,
        httponly=True,
        secure=settings.refresh_cookie_secure,
        samesite="lax",
    )
    response.headers["Cache-Control"] = "no-store"


def _tokens(response: Response, settings: Settings, issued: service.IssuedTokens) -> TokenResponse:
    set_refresh_cookie(response, settings, issued)
    return TokenResponse.of(issued)


def _clear_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        settings.refresh_cookie_name,
        path=settings.refresh_cookie_path,
        httponly=True,
        secure=settings.refresh_cookie_secure,
        samesite="lax",
    )


@router.post(
    "/login",
    responses=responses(InvalidCredentials, AccountDeactivated, TooManyRequests),
    summary="Password sign-in",
)
async def password_login(
    body: LoginRequest, db: DbSession, services: ServicesDep, client: ClientDep, response: Response
) -> TokenResponse:
    issued = await login.login_with_password(db, services, body.login, body.password, client)
    return _tokens(response, services.settings, issued)


@router.post("/refresh-token", responses=responses(InvalidRefreshToken), summary="Rotate the refresh token")
async def refresh_token(
    db: DbSession,
    services: ServicesDep,
    client: ClientDep,
    response: Response,
    request: Request,
    body: Annotated[RefreshRequest | None, Body()] = None,
) -> TokenResponse:
    """The refresh token comes in the JSON body (API clients) or the httpOnly cookie (browsers)."""
    raw = (body.refresh_token if body else None) or request.cookies.get(services.settings.refresh_cookie_name)
    if not raw:
        raise InvalidRefreshToken("Send the refresh token in the body or the refresh cookie.")
    issued = await service.refresh_session(db, services, raw, client)
    return _tokens(response, services.settings, issued)


@router.post(
    "/request/login-code", status_code=status.HTTP_202_ACCEPTED, responses=responses(TooManyRequests)
)
async def request_login_code(
    body: LoginCodeRequest, db: DbSession, services: ServicesDep, client: ClientDep
) -> Status:
    await login.request_login_code(db, services, str(body.email), client)
    return Status(status="accepted", detail="If the address has an account, a code is on its way.")


@router.post("/login/code", responses=responses(InvalidLoginCode, AccountDeactivated, TooManyRequests))
async def code_login(
    body: CodeLoginRequest, db: DbSession, services: ServicesDep, client: ClientDep, response: Response
) -> TokenResponse:
    issued = await login.login_with_code(db, services, str(body.email), body.code, client)
    return _tokens(response, services.settings, issued)


@router.post("/logout", responses=responses(Unauthorized), summary="End this session")
async def logout(
    principal: CurrentPrincipal, db: DbSession, services: ServicesDep, response: Response
) -> Status:
    session = await service.get_own_session(db, principal.user.id, principal.session_id)
    if session is not None:
        await service.revoke_sessions(db, principal.user.id, [session], reason="logout")
    _clear_cookie(response, services.settings)
    return Status(status="logged_out")


@router.post("/logout-all", responses=responses(Unauthorized), summary="End every session of mine")
async def logout_all(
    principal: CurrentPrincipal, db: DbSession, services: ServicesDep, response: Response
) -> Status:
    await service.revoke_all_sessions(db, principal.user.id, reason="logout_all")
    _clear_cookie(response, services.settings)
    return Status(status="logged_out")


@router.get("/sessions", responses=responses(Unauthorized))
async def list_sessions(principal: CurrentPrincipal, db: DbSession) -> SessionList:
    sessions = await service.active_sessions(db, principal.user.id)
    return SessionList(
        items=[
            SessionOut(
                id=s.id,
                method=s.method,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                expires_at=s.expires_at,
                user_agent=s.user_agent,
                ip=str(s.ip) if s.ip else None,
                current=s.id == principal.session_id,
            )
            for s in sessions
        ]
    )


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, SessionNotFound),
)
async def revoke_session(session_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession) -> None:
    session = await service.get_own_session(db, principal.user.id, session_id)
    if session is None or session.revoked_at is not None:
        raise SessionNotFound("No such active session.")
    await service.revoke_sessions(db, principal.user.id, [session], reason="revoked")
