"""Who a request comes from, as the rules see it: the signed-in principal and the client's address.

The typed dependencies that produce them (`CurrentPrincipal`, `ClientDep`) live in
`dependencies.py`; the rules import the types from here, never from the wiring.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from auth_service.models import ApiKey, User
from gatehouse_contracts.tokens import AccessTokenClaims


@dataclass(frozen=True)
class Client:
    ip: str | None
    user_agent: str | None
    place: str | None = None  # "City, Country" when a GeoIP database is configured


@dataclass(frozen=True)
class Principal:
    user: User
    session_id: uuid.UUID
    claims: AccessTokenClaims


@dataclass(frozen=True)
class OrgKeyCaller:
    """A token exchanged from an organization's API key: it names no person, only the org (read
    with a member's rights, within the key's scopes)."""

    key: ApiKey
    org_id: uuid.UUID
    claims: AccessTokenClaims
