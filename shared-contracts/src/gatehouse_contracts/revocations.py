"""What auth-service tells verifiers that rebuild their denylist (after their Redis lost its data):
every revocation that can still matter, i.e. newer than the longest access-token lifetime.

Served at `REVOCATIONS_PATH` by auth-service to the services inside the deployment (the gateway
refuses the path from outside).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

REVOCATIONS_PATH = "/auth/internal/revocations"
JWKS_PATH = "/auth/.well-known/jwks.json"  # where auth-service publishes its keys


def revocations_url_beside(jwks_url: str) -> str:
    """Where the issuer serving `jwks_url` serves the revocation list: a verifier needs one
    setting, its JWKS URL, and finds the list on the same host."""
    parts = urlsplit(jwks_url)
    prefix = parts.path.removesuffix(JWKS_PATH) if parts.path.endswith(JWKS_PATH) else ""
    return f"{parts.scheme}://{parts.netloc}{prefix}{REVOCATIONS_PATH}"


class RevokedSession(BaseModel):
    model_config = ConfigDict(frozen=True)

    session_id: uuid.UUID
    revoked_at: datetime


class DeactivatedUser(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: uuid.UUID
    deactivated_at: datetime


class Revocations(BaseModel):
    """Sessions revoked and users deactivated (and still so) since `since`."""

    model_config = ConfigDict(extra="ignore")

    since: datetime
    sessions: list[RevokedSession]
    users: list[DeactivatedUser]
