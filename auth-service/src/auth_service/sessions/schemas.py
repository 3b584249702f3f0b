"""Bodies of sign-in, refresh and session endpoints (OAuth 2.0 token response naming)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from auth_service.accounts.schemas import CaptchaToken, UserOut
from auth_service.mfa.login import SecondFactorRequired
from auth_service.models import AuthSession
from auth_service.security import PASSWORD_MAX_LENGTH
from auth_service.sessions.service import IssuedTokens
from gatehouse_platform.schemas import RequestModel, exactly_one_of


class CaptchaWidget(BaseModel):
    mode: Literal["off", "always", "adaptive"]
    provider: Literal["turnstile", "hcaptcha"] | None
    site_key: str | None


class LoginRequest(RequestModel):
    """Sign in with the email or the username, and the password."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("email", "username"))

    email: str | None = Field(default=None, max_length=320)
    username: str | None = Field(default=None, max_length=32)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH * 4)
    captcha_token: str | None = CaptchaToken

    @model_validator(mode="after")
    def _one_identifier(self) -> LoginRequest:
        if bool(self.email) == bool(self.username):
            raise ValueError("Give either email or username.")
        return self

    @property
    def login(self) -> str:
        return self.email or self.username or ""


class RefreshRequest(RequestModel):
    refresh_token: str | None = Field(default=None, max_length=200)


class LoginCodeRequest(RequestModel):
    email: EmailStr = Field(max_length=320)


class CodeLoginRequest(RequestModel):
    email: EmailStr = Field(max_length=320)
    code: str = Field(pattern=r"^[0-9]{6}$")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
    user: UserOut

    @classmethod
    def of(cls, issued: IssuedTokens) -> TokenResponse:
        return cls(
            access_token=issued.access_token,
            expires_in=issued.expires_in,
            refresh_token=issued.refresh_token,
            user=UserOut.of(issued.user),
        )


class MfaRequiredResponse(BaseModel):
    """The first factor is proven; finish with `POST /auth/login/mfa` and one of `methods`."""

    mfa_required: Literal[True] = True
    mfa_token: str = Field(description="Single use, valid `expires_in` seconds")
    methods: list[Literal["totp", "recovery_code", "passkey"]]
    expires_in: int

    @classmethod
    def of(cls, pending: SecondFactorRequired) -> MfaRequiredResponse:
        return cls.model_validate(
            {"mfa_token": pending.mfa_token, "methods": pending.methods, "expires_in": pending.expires_in}
        )


SignInResponse = TokenResponse | MfaRequiredResponse


class SessionOut(BaseModel):
    id: uuid.UUID
    method: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool

    @classmethod
    def of(cls, session: AuthSession, current: uuid.UUID | None) -> SessionOut:
        """`current`: the caller's own session, marked as such."""
        return cls(
            id=session.id,
            method=session.method,
            created_at=session.created_at,
            last_used_at=session.last_used_at,
            expires_at=session.expires_at,
            user_agent=session.user_agent,
            ip=str(session.ip) if session.ip else None,
            current=session.id == current,
        )


class SessionList(BaseModel):
    items: list[SessionOut]
    next_cursor: str | None = None
