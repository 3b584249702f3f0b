"""API keys: a person creates one (the secret shown once), lists and revokes theirs; the gateway
exchanges a presented key for a short-lived access token (`POST /auth/internal/api-keys/exchange`).

A key is `gk_live_<12 hex>_<43 base64url>`: the fixed prefix for secret scanners, a public id part
(stored as `prefix`, how a key is found and told apart) and 256 random bits. Only HMAC-SHA-256 of
the whole key under AUTH_API_KEY_PEPPER is stored, compared in constant time. The exchanged token
is an ordinary access token whose `sid` is the key's id (so revoking the key is the session
denylist's business), whose `scope` is the key's scopes and whose `roles` are empty: a key never
acts as an admin. `last_used_at` is written at exchange, once per token, not per request.

An org's key (`org_id` set) is created by one of the org's owners or admins and belongs to the org:
its owners and admins list and revoke it, and it outlives its creator's membership and account.
Its token names no person: `sub` and `sid` are the key's id, `email` is empty, `org_id` is the org
and `org_role` is `member` (the key reads with a member's rights, within its scopes). It may hold
only the org-wide scopes (ORG_KEY_SCOPES). The org's deletion revokes it.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.api_keys.repository import ApiKeyRepository
from auth_service.api_keys.revocation import RevokeReason, revoke_keys
from auth_service.audit import service as audit
from auth_service.errors import (
    ApiKeyNotFound,
    InvalidApiKey,
    InvalidField,
    OrgNotFound,
    OrgRoleRequired,
    TooManyApiKeys,
)
from auth_service.events import emit
from auth_service.keys.service import KeyRing
from auth_service.models import ApiKey, User
from auth_service.orgs import service as orgs
from auth_service.orgs.repository import OrgRepository
from auth_service.principal import Client
from auth_service.security import API_KEY_ID_CHARS, api_key_digest, new_api_key
from auth_service.sessions.service import encode_access_token
from auth_service.settings import Settings
from gatehouse_contracts.events import ApiKeyCreated
from gatehouse_contracts.tokens import API_KEY_PREFIX, API_KEY_SCOPES, ApiKeyScope
from gatehouse_platform.db import utcnow

# what an org's key may hold: the org-wide reads. `profile:read` reads a person (an org key names
# none) and `billing:write` needs an org admin (an org key acts as a member).
ORG_KEY_SCOPES: frozenset[ApiKeyScope] = frozenset({"orgs:read", "billing:read"})
_KEY_SHAPE = re.compile(
    rf"^(?P<prefix>{re.escape(API_KEY_PREFIX)}[0-9a-f]{{{API_KEY_ID_CHARS}}})_[A-Za-z0-9_-]{{43}}$"
)
# compared with when no key has that id part, so an unknown key costs what a wrong secret does
_NO_DIGEST = b"\0" * 32


@dataclass(frozen=True)
class Exchanged:
    access_token: str
    expires_in: int
    key: ApiKey


async def create(
    db: AsyncSession,
    settings: Settings,
    user: User,
    *,
    name: str,
    scopes: list[ApiKeyScope],
    expires_in_days: int | None,
    client: Client,
    org_id: uuid.UUID | None = None,
) -> tuple[ApiKey, str]:
    """A personal key, or (given `org_id`, by one of its owners or admins) the org's key, and its
    secret (returned this once). `api_key.created` tells its creator. The limit of working keys
    holds per person for personal keys and per org for an org's."""
    keys = ApiKeyRepository(db)
    if org_id is not None:
        outside = sorted(set(scopes) - ORG_KEY_SCOPES)
        if outside:
            raise InvalidField(
                "scopes", f"an organization's key may hold only {', '.join(sorted(ORG_KEY_SCOPES))}"
            )
        await orgs.membership(db, user.id, org_id, *orgs.MANAGERS, lock=True)  # org keys take turns
        if await keys.count_active(org_id=org_id) >= settings.api_keys_per_user:
            raise TooManyApiKeys(
                f"The organization has {settings.api_keys_per_user} working API keys already: "
                "revoke one first."
            )
    elif await keys.count_active(user.id) >= settings.api_keys_per_user:
        raise TooManyApiKeys(
            f"You have {settings.api_keys_per_user} working API keys already: revoke one first."
        )
    now = utcnow()
    prefix, secret = new_api_key(API_KEY_PREFIX)
    ordered = [s for s in API_KEY_SCOPES if s in set(scopes)]  # documented order, no repeats
    key = keys.add(
        ApiKey(
            id=uuid.uuid4(),
            user_id=user.id,
            org_id=org_id,
            name=name,
            prefix=prefix,
            secret_hash=api_key_digest(settings.api_key_pepper, secret),
            scopes=ordered,
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        )
    )
    audit.record(
        db,
        audit.AuditEventType.API_KEY_CREATED,
        user.id,
        client=client,
        details={
            "key_id": str(key.id),
            "name": name,
            "prefix": prefix,
            "scopes": ordered,
            **({"org_id": str(org_id)} if org_id else {}),
        },
    )
    await keys.flush()
    await emit(
        db,
        ApiKeyCreated(
            key_id=key.id,
            user_id=user.id,
            email=user.email,
            org_id=org_id,
            name=name,
            prefix=prefix,
            scopes=ordered,
            expires_at=key.expires_at,
            created_at=now,
        ),
        user_id=user.id,
    )
    return key, secret


async def list_keys(db: AsyncSession, user_id: uuid.UUID, org_id: uuid.UUID | None = None) -> list[ApiKey]:
    """My working personal keys; given `org_id`, the org's working keys (to its owners and admins)."""
    if org_id is None:
        return await ApiKeyRepository(db).active_of_user(user_id)
    await orgs.membership(db, user_id, org_id, *orgs.MANAGERS)
    return await ApiKeyRepository(db).active_of_org(org_id)


async def revoke(
    db: AsyncSession, user_id: uuid.UUID, key_id: uuid.UUID, *, client: Client | None = None
) -> None:
    """The person revokes one of their working personal keys, or a working key of an org they own
    or administer; any other id is not found."""
    keys = ApiKeyRepository(db)
    key = await keys.own(user_id, key_id)
    if key is None and (key := await keys.of_some_org(key_id)) is not None:
        assert key.org_id is not None
        try:
            await orgs.membership(db, user_id, key.org_id, *orgs.MANAGERS)
        except (OrgNotFound, OrgRoleRequired):
            key = None
    if key is None or not _works(key):
        raise ApiKeyNotFound("No such API key.")
    await revoke_keys(db, [key], reason="revoked", client=client, actor_id=user_id)


async def revoke_all_of_user(db: AsyncSession, user_id: uuid.UUID, *, reason: RevokeReason) -> None:
    """Every working personal key of the person dies (their account is deactivated or deleted);
    the org keys they created belong to their orgs and live on."""
    keys = await ApiKeyRepository(db).active_of_user(user_id, for_update=True)
    await revoke_keys(db, keys, reason=reason)


def _works(key: ApiKey) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > utcnow())


async def exchange(db: AsyncSession, keyring: KeyRing, settings: Settings, presented: str) -> Exchanged:
    """An access token for a working key; one 401 `invalid-api-key` for every other case."""
    shape = _KEY_SHAPE.match(presented)
    row = await ApiKeyRepository(db).by_prefix_with_user(shape["prefix"]) if shape else None
    digest = api_key_digest(settings.api_key_pepper, presented)
    stored = row[0].secret_hash if row is not None else _NO_DIGEST
    if row is None or not hmac.compare_digest(digest, stored):
        raise InvalidApiKey("This API key is not valid.")
    key, user = row
    now = utcnow()
    lifetime = settings.access_token_ttl_seconds
    if key.expires_at is not None:
        lifetime = min(lifetime, int((key.expires_at - now).total_seconds()))
    if key.revoked_at is not None or lifetime < 1:
        raise InvalidApiKey("This API key was revoked or has expired.")
    # a personal key dies with its person; an org's key with its org (its creator may be long gone)
    if not (user.is_active if key.org_id is None else await _org_exists(db, key.org_id)):
        raise InvalidApiKey("This API key was revoked or has expired.")
    key.last_used_at = now
    keys = await keyring.current()
    token = encode_access_token(keys, _claims(settings, user, key, lifetime))
    return Exchanged(access_token=token, expires_in=lifetime, key=key)


async def _org_exists(db: AsyncSession, org_id: uuid.UUID) -> bool:
    return await OrgRepository(db).get(org_id) is not None


def _claims(settings: Settings, user: User, key: ApiKey, lifetime: int) -> dict[str, Any]:
    """A personal key's token is its person's (`sub`, `email`); an org key's names no person."""
    now = int(time.time())
    personal = key.org_id is None
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": str(user.id if personal else key.id),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "sid": str(key.id),
        "email": user.email if personal else "",
        "email_verified": user.email_verified if personal else False,
        "roles": [],  # a key never acts as an admin, whoever made it
        "auth_time": now,  # the key was presented just now
        "amr": [],
        "scope": key.scope,
    }
    if not personal:
        claims["org_id"] = str(key.org_id)
        claims["org_role"] = "member"  # an org key reads with a member's rights, within its scopes
    return claims
