"""The access-token contract: auth-service issues it, every verifier reads it."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ACCESS_TOKEN_TYP = "at+jwt"  # RFC 9068 header `typ`: an access token cannot pass as any other JWT
ALGORITHM = "RS256"

API_KEY_PREFIX = "gk_live_"  # every API key starts so: secret scanners can find leaked keys
# What an API key may be allowed to do. A person's own session is not limited by scopes; a token
# exchanged from an API key carries the key's scopes in `scope` and may do only those.
ApiKeyScope = Literal["profile:read", "orgs:read", "billing:read", "billing:write"]
API_KEY_SCOPES: dict[ApiKeyScope, str] = {
    "profile:read": "Read the key owner's profile (GET /auth/me)",
    "orgs:read": "Read the org and its members",
    "billing:read": "Read subscriptions, entitlements, payments and invoices",
    "billing:write": "Subscribe, change plan, cancel and resume",
}
OrgRole = Literal["owner", "admin", "member"]


class AccessTokenClaims(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    iss: str
    aud: str | list[str]
    sub: uuid.UUID = Field(
        description="The user's id; for a token exchanged from an organization's API key, the key's id "
        "(such a token names no person)"
    )
    iat: int
    nbf: int
    exp: int
    jti: str
    sid: uuid.UUID = Field(
        description="The session (refresh-token family) this token belongs to; the API key's id for a "
        "token exchanged from a key"
    )
    email: str = Field(description="The user's email address; empty for an organization's API key")
    email_verified: bool = Field(
        description="Whether `email` was verified; false for an organization's API key"
    )
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

    org_id: uuid.UUID | None = Field(
        default=None,
        description="The organization this token acts in (after POST /auth/orgs/{id}/switch, or an org's API "
        "key); absent for a personal session",
    )
    org_role: OrgRole | None = Field(
        default=None,
        description="The person's role in `org_id`; `member` for an organization's API key (it reads with "
        "a member's rights, within its scopes)",
    )
    scope: str | None = Field(
        default=None,
        description="Set only on tokens exchanged from an API key (RFC 9068 `scope`): the space-separated "
        "scopes of API_KEY_SCOPES the token may use; `sid` is then the key's id",
    )

    @property
    def scopes(self) -> frozenset[str] | None:
        """The API key's scopes, or None for a person's session (not limited by scopes)."""
        return None if self.scope is None else frozenset(self.scope.split())

    def allows(self, scope: str) -> bool:
        """Whether this token may do what `scope` names: always for a person's session."""
        return self.scope is None or scope in self.scope.split()

    @property
    def is_api_key(self) -> bool:
        return self.scope is not None

    @property
    def user_id(self) -> uuid.UUID:
        return self.sub

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles
