"""Request and response bodies of the account endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    ValidationInfo,
    field_validator,
    model_validator,
)

from auth_service.models import User
from auth_service.security import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    normalize_password,
    password_policy_problem,
)
from gatehouse_platform.schemas import RequestModel, without_null

TOKEN_PATTERN = r"^[A-Za-z0-9_-]+$"  # the URL-safe alphabet our tokens are made of
USERNAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{1,30})[A-Za-z0-9]$"

CaptchaToken = Field(
    default=None,
    max_length=4096,
    description="The bot-check widget's token, when a 428 `captcha-required` asked for one (or "
    "`GET /auth/captcha` says `always`)",
)
NewPassword = Field(
    min_length=PASSWORD_MIN_LENGTH,
    max_length=PASSWORD_MAX_LENGTH,
    description=f"{PASSWORD_MIN_LENGTH}–{PASSWORD_MAX_LENGTH} characters, not a commonly used password, "
    "nor the username or email (checked again once NFKC-normalized)",
)
"""A password being set: the policy's length in the schema; the rest of the policy
(`security.check_password_policy`) answers 422 on the same field."""


class RegisterRequest(RequestModel):
    email: EmailStr = Field(max_length=320)
    username: str = Field(min_length=3, max_length=32, pattern=USERNAME_PATTERN)
    password: str = NewPassword
    display_name: str | None = Field(default=None, max_length=100)
    captcha_token: str | None = CaptchaToken

    @field_validator("password")
    @classmethod
    def _password_policy(cls, value: str, info: ValidationInfo) -> str:
        """The whole policy here, beside the other fields' checks, so one 422 names every invalid
        field (in a model validator it would run only once the other fields were valid). The email
        and username count as context only when they are valid themselves."""
        problem = password_policy_problem(
            normalize_password(value), email=info.data.get("email"), username=info.data.get("username")
        )
        if problem is not None:
            raise ValueError(problem)
        return value


class ProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    display_name: str | None
    first_name: str | None
    last_name: str | None
    avatar_url: str | None
    bio: str | None
    locale: str | None
    timezone: str | None


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    username: str
    email_verified: bool
    is_active: bool
    roles: list[str]
    registration_method: str
    created_at: datetime
    last_login_at: datetime | None
    deletion_requested_at: datetime | None = None
    erase_at: datetime | None = Field(
        default=None, description="When a deleted account is (or was to be) erased"
    )
    erased_at: datetime | None = None
    profile: ProfileOut | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            username=user.username,
            email_verified=user.email_verified,
            is_active=user.is_active,
            roles=sorted(user.roles),
            registration_method=user.registration_method,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
            deletion_requested_at=user.deletion_requested_at,
            erase_at=user.erase_at,
            erased_at=user.erased_at,
            profile=ProfileOut.model_validate(user.profile)
            if "profile" in user.__dict__ and user.profile
            else None,
        )


class ProfileUpdate(RequestModel):
    """Fields left out stay as they are; null clears one (not the username)."""

    model_config = ConfigDict(json_schema_extra=without_null("username"))

    username: str | None = Field(default=None, min_length=3, max_length=32, pattern=USERNAME_PATTERN)
    display_name: str | None = Field(default=None, max_length=100)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    avatar_url: HttpUrl | None = None
    bio: str | None = Field(default=None, max_length=1000)
    locale: str | None = Field(default=None, max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    timezone: str | None = Field(default=None, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from zoneinfo import available_timezones

        if value not in available_timezones():
            raise ValueError("Unknown time zone; use an IANA name such as Europe/Paris.")
        return value

    @model_validator(mode="after")
    def _username_not_null(self) -> ProfileUpdate:
        if "username" in self.model_fields_set and self.username is None:
            raise ValueError("username cannot be cleared")
        return self


class ChangeEmailRequest(RequestModel):
    new_email: EmailStr = Field(max_length=320)
    password: str | None = Field(default=None, max_length=PASSWORD_MAX_LENGTH * 4)


class PasswordConfirmation(RequestModel):
    password: str | None = Field(
        default=None,
        max_length=PASSWORD_MAX_LENGTH * 4,
        description="Required when the account has a password.",
    )


class TokenBody(RequestModel):
    token: str = Field(min_length=10, max_length=200, pattern=TOKEN_PATTERN)


class Status(BaseModel):
    status: Literal[
        "verified",
        "accepted",
        "verification_sent",
        "deactivated",
        "reactivated",
        "ok",
        "password_changed",
        "logged_out",
    ]
    detail: str | None = None


class DeletionScheduled(BaseModel):
    status: Literal["deletion_scheduled"] = "deletion_scheduled"
    erase_at: datetime = Field(
        description="When the account is erased, unless its deletion is cancelled first"
    )
    detail: str
