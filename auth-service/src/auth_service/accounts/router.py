"""Registration, my account, email verification, passwords, deactivation."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query, status
from fastapi.responses import RedirectResponse
from pydantic import EmailStr, Field

from auth_service.accounts import deletion, passwords, service
from auth_service.accounts.schemas import (
    TOKEN_PATTERN,
    CaptchaToken,
    ChangeEmailRequest,
    DeletionScheduled,
    NewPassword,
    PasswordConfirmation,
    ProfileUpdate,
    RegisterRequest,
    Status,
    TokenBody,
    UserOut,
)
from auth_service.dependencies import (
    BreachesDep,
    CaptchaDep,
    ClientDep,
    CurrentPrincipal,
    DbSession,
    HasherDep,
    ProfileReader,
    RecentPrincipal,
    SettingsDep,
    ThrottleDep,
)
from auth_service.errors import (
    AccountAlreadyDeleted,
    AlreadyVerified,
    EmailAlreadyRegistered,
    InvalidCredentials,
    InvalidField,
    InvalidOneTimeToken,
    ReauthenticationRequired,
    UsernameTaken,
)
from auth_service.security import PASSWORD_MAX_LENGTH
from gatehouse_platform.errors import TooManyRequests, Unauthorized, responses
from gatehouse_platform.schemas import RequestModel

router = APIRouter(prefix="/auth", tags=["accounts"])

REGISTRATION_ACCEPTED = "Check your inbox: the email we sent says how to go on."


class ForgotPasswordRequest(RequestModel):
    email: EmailStr = Field(max_length=320)
    captcha_token: str | None = CaptchaToken


class NewPasswordRequest(RequestModel):
    token: str = Field(min_length=10, max_length=200, pattern=TOKEN_PATTERN)
    new_password: str = NewPassword


class ChangePasswordRequest(RequestModel):
    old_password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH * 4)
    new_password: str = NewPassword


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(UsernameTaken, InvalidField, TooManyRequests),
    summary="Create an account (a verification email follows)",
)
async def register(
    body: RegisterRequest,
    db: DbSession,
    hasher: HasherDep,
    breaches: BreachesDep,
    throttle: ThrottleDep,
    captcha: CaptchaDep,
    settings: SettingsDep,
    client: ClientDep,
) -> Status:
    """The same answer whether or not the email already has an account (its owner is emailed
    instead of a verification link), so registration tells no one who has an account."""
    await service.register(db, hasher, breaches, throttle, captcha, settings, body, client)
    return Status(status="verification_sent", detail=REGISTRATION_ACCEPTED)


@router.get("/me", responses=responses(Unauthorized), summary="My profile (API keys: `profile:read`)")
async def me(principal: ProfileReader) -> UserOut:
    return UserOut.of(principal.user)  # read with its profile when the token was checked


@router.patch("/me", responses=responses(Unauthorized, UsernameTaken), summary="Update my profile")
async def update_me(body: ProfileUpdate, principal: CurrentPrincipal, db: DbSession) -> UserOut:
    return UserOut.of(await service.update_profile(db, principal.user, body))


@router.post(
    "/change-email",
    responses=responses(Unauthorized, ReauthenticationRequired, InvalidCredentials, EmailAlreadyRegistered),
    summary="Change my email (the new address must be verified; needs a recent sign-in)",
)
async def change_email(
    body: ChangeEmailRequest,
    principal: RecentPrincipal,
    db: DbSession,
    hasher: HasherDep,
    settings: SettingsDep,
) -> UserOut:
    return UserOut.of(await service.change_email(db, hasher, settings, principal, body))


@router.get(
    "/verify",
    response_model=Status,
    responses={**responses(InvalidOneTimeToken), 303: {"description": "A browser: to the web page"}},
    summary="The emailed verification link",
)
async def verify_link(
    token: Annotated[str, Query(min_length=10, max_length=200, pattern=TOKEN_PATTERN)],
    db: DbSession,
    accept: Annotated[str, Header()] = "",
) -> Status | RedirectResponse:
    """Links sent before the web front existed point here. A browser goes on to the web's
    `/verify-email`, which confirms with a button (so a mail scanner's GET spends nothing)."""
    if "text/html" in accept:
        return RedirectResponse(f"/verify-email?{urlencode({'token': token})}", status.HTTP_303_SEE_OTHER)
    await service.verify_email(db, token)
    return Status(status="verified")


@router.post("/verify", responses=responses(InvalidOneTimeToken))
async def verify(body: TokenBody, db: DbSession) -> Status:
    await service.verify_email(db, body.token)
    return Status(status="verified")


@router.post(
    "/request/verify",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(Unauthorized, AlreadyVerified, TooManyRequests),
    summary="Send the verification email again",
)
async def resend_verification(
    principal: CurrentPrincipal,
    db: DbSession,
    throttle: ThrottleDep,
    settings: SettingsDep,
    client: ClientDep,
) -> Status:
    await service.resend_verification(db, throttle, settings, principal.user, client)
    return Status(status="accepted")


@router.post("/forget-password", status_code=status.HTTP_202_ACCEPTED, responses=responses(TooManyRequests))
async def forget_password(
    body: ForgotPasswordRequest,
    db: DbSession,
    throttle: ThrottleDep,
    captcha: CaptchaDep,
    settings: SettingsDep,
    client: ClientDep,
) -> Status:
    """Same answer whether or not the address has an account."""
    await passwords.request_reset(
        db, throttle, captcha, settings, str(body.email), body.captcha_token, client
    )
    return Status(status="accepted", detail="If the address has an account, a reset link is on its way.")


@router.post(
    "/new-password", responses=responses(InvalidOneTimeToken, InvalidField), summary="Set a new password"
)
async def new_password(
    body: NewPasswordRequest, db: DbSession, hasher: HasherDep, breaches: BreachesDep
) -> Status:
    await passwords.reset_password(db, hasher, breaches, body.token, body.new_password)
    return Status(status="password_changed", detail="Every session was signed out.")


@router.post(
    "/change-password",
    responses=responses(Unauthorized, ReauthenticationRequired, InvalidCredentials, InvalidField),
    summary="Change my password (needs a recent sign-in)",
)
async def change_password(
    body: ChangePasswordRequest,
    principal: RecentPrincipal,
    db: DbSession,
    hasher: HasherDep,
    breaches: BreachesDep,
) -> Status:
    await passwords.change_password(db, hasher, breaches, principal, body.old_password, body.new_password)
    return Status(status="password_changed", detail="Your other sessions were signed out.")


@router.post(
    "/deactivate",
    responses=responses(Unauthorized, ReauthenticationRequired, InvalidCredentials),
    summary="Deactivate my account (needs a recent sign-in)",
)
async def deactivate(
    principal: RecentPrincipal,
    db: DbSession,
    hasher: HasherDep,
    body: PasswordConfirmation | None = None,
) -> Status:
    await service.deactivate_self(db, hasher, principal, body.password if body else None)
    return Status(status="deactivated")


@router.delete(
    "/me",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(Unauthorized, ReauthenticationRequired, AccountAlreadyDeleted),
    summary="Delete my account (needs a recent sign-in): disabled now, erased after the grace period",
)
async def delete_me(principal: RecentPrincipal, db: DbSession, settings: SettingsDep) -> DeletionScheduled:
    """Every session ends now. Until `erase_at`, signing in with the password answers 403
    `account-pending-deletion`, and `POST /auth/me/deletion/cancel` with the same credentials
    restores the account."""
    user = await service.get_user(db, principal.user.id, for_update=True)
    scheduled = await deletion.request_deletion(db, settings, user, by="self")
    assert scheduled.erase_at is not None
    return DeletionScheduled(
        erase_at=scheduled.erase_at,
        detail="Your account is disabled and will be erased then; sign in before to cancel.",
    )
