"""The access-token contract: auth-service issues it, every verifier reads it."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

ACCESS_TOKEN_TYP = "at+jwt"  # RFC 9068 header `typ`: an access token cannot pass as any other JWT
ALGORITHM = "RS256"


class AccessTokenClaims(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    iss: str
    aud: str | list[str]
    sub: uuid.UUID = Field(description="The user's id")
    iat: int
    nbf: int
    exp: int
    jti: str
    sid: uuid.UUID = Field(description="The session (refresh-token family) this token belongs to")
    email: str
    email_verified: bool
    roles: list[str] = Field(default_factory=list)
    auth_time: int | None = Field(
        default=None,
        description="When the session's sign-in was last proven (epoch seconds): set at sign-in, kept "
        "through refresh, renewed by re-authentication. Absent in tokens issued before it existed.",
    )
    amr: list[str] = Field(
        default_factory=list,
        description="How the session's sign-in was proven, RFC 8176 values: `pwd`, `otp`, `fed` "
        "(Google/GitHub), `hwk`/`swk` and `user` (a device-bound or synced passkey, user present), "
        "`mfa` when a second factor was proven too (a user-verified passkey counts as one)",
    )

    @property
    def user_id(self) -> uuid.UUID:
        return self.sub

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles
