"""Bodies of the second-factor endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from auth_service.mfa.service import MfaStatus, TotpSetup
from auth_service.security import PASSWORD_MAX_LENGTH
from gatehouse_platform.schemas import RequestModel

TOTP_CODE = r"^[0-9]{6}$"


class TotpSetupOut(BaseModel):
    """Nothing is on yet: scan the QR code (or type `secret`), then confirm with a code."""

    secret: str
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as a QR code, an SVG document")

    @classmethod
    def of(cls, setup: TotpSetup) -> TotpSetupOut:
        return cls(secret=setup.secret, otpauth_uri=setup.otpauth_uri, qr_svg=setup.qr_svg)


class TotpCode(RequestModel):
    code: str = Field(pattern=TOTP_CODE)


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="Shown this once; each works once")


class MfaStatusOut(BaseModel):
    totp: bool
    recovery_codes_left: int
    passkeys: int
    methods: list[str] = Field(description="What a password or code sign-in offers as its second step")

    @classmethod
    def of(cls, status: MfaStatus) -> MfaStatusOut:
        return cls(
            totp=status.totp,
            recovery_codes_left=status.recovery_codes_left,
            passkeys=status.passkeys,
            methods=status.methods,
        )


class MfaLoginRequest(RequestModel):
    """The pending sign-in's token and one of: a code from the authenticator app, a recovery code,
    or a passkey assertion."""

    mfa_token: str = Field(min_length=1, max_length=200)
    code: str | None = Field(default=None, pattern=TOTP_CODE)
    recovery_code: str | None = Field(default=None, min_length=1, max_length=64)
    passkey: dict[str, Any] | None = Field(
        default=None, description="An assertion on a `POST /auth/passkeys/login/options` challenge"
    )

    @model_validator(mode="after")
    def _one_factor(self) -> MfaLoginRequest:
        if sum(factor is not None for factor in (self.code, self.recovery_code, self.passkey)) != 1:
            raise ValueError("Give one of code, recovery_code or passkey.")
        return self


class ReauthenticateRequest(RequestModel):
    """The password, a code from the authenticator app, or a passkey assertion (its challenge from
    `POST /auth/passkeys/login/options`)."""

    password: str | None = Field(default=None, min_length=1, max_length=PASSWORD_MAX_LENGTH * 4)
    code: str | None = Field(default=None, pattern=TOTP_CODE)
    passkey: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_proof(self) -> ReauthenticateRequest:
        if sum(proof is not None for proof in (self.password, self.code, self.passkey)) != 1:
            raise ValueError("Give one of password, code or passkey.")
        return self
