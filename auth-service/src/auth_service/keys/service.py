"""RS256 signing keys: the key ring that signs access tokens and publishes the JWKS, and the OpenID
discovery document that points verifiers at it.

Keys live in the `signing_keys` table with the private half Fernet-encrypted, or come from
configuration (AUTH_SIGNING_KEY_PEM). Rotation is staged so that nobody is signed out: the new key
is published at once and signs only `key_publish_ahead_seconds` later, by when every verifier can
have fetched it (a verifier refetches on an unknown kid at most every 30 s, and our replicas serve
a JWKS up to `key_cache_seconds` old); the key it replaces retires at that moment and stays
published until every token it signed has expired.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.keys.repository import SigningKeyRepository
from auth_service.models import SigningKey
from auth_service.settings import Settings
from gatehouse_platform.db import session_scope, utcnow
from gatehouse_platform.jwt import jwks_to_keys, public_jwk

PUBLISH_LEEWAY = timedelta(minutes=5)


def thumbprint_kid(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: a kid derived from the key itself."""
    jwk = public_jwk(public_key, kid="")
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class KeySet:
    signing_kid: str
    signing_key: rsa.RSAPrivateKey
    public_keys: dict[str, rsa.RSAPublicKey]
    jwks: dict[str, Any]
    loaded_at: float


def generate_key(fernet: Fernet, *, activates_at: datetime | None = None) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = thumbprint_kid(private.public_key())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    now = utcnow()
    return SigningKey(
        kid=kid,
        private_key_encrypted=fernet.encrypt(pem),
        public_jwk=public_jwk(private.public_key(), kid=kid),
        created_at=now,
        activates_at=activates_at or now,
    )


async def rotate_keys(
    session: AsyncSession, settings: Settings, *, publish_ahead_seconds: float | None = None
) -> SigningKey:
    """Publish a new key now that signs from `publish_ahead_seconds` (default: the setting) on;
    the keys signing until then retire at that moment. Returns the new key."""
    ahead = settings.key_publish_ahead_seconds if publish_ahead_seconds is None else publish_ahead_seconds
    key = generate_key(
        Fernet(settings.key_encryption_key.encode()), activates_at=utcnow() + timedelta(seconds=ahead)
    )
    keys = SigningKeyRepository(session)
    for current in await keys.unretired():
        current.retired_at = key.activates_at
    keys.add(key)
    await keys.flush()
    return key


class KeyRing:
    """Caches the key set for a few seconds so a rotation by the CLI reaches every replica soon.

    A reload reads the keys once for all the requests that find the cache stale together, and
    decrypts and parses only private keys it has not seen (a kid is the key's thumbprint): loading
    an RSA private key checks it, tens of milliseconds that sign-ins would otherwise wait on."""

    def __init__(self, settings: Settings, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._fernet = Fernet(settings.key_encryption_key.encode())
        self._cached: KeySet | None = None
        self._reloading = asyncio.Lock()
        self._private_keys: dict[str, rsa.RSAPrivateKey] = {}  # by kid

    def _stale(self) -> bool:
        cached = self._cached
        return cached is None or time.monotonic() - cached.loaded_at > self._settings.key_cache_seconds

    async def current(self) -> KeySet:
        if self._stale():
            async with self._reloading:
                if self._stale():  # else another request reloaded while this one waited
                    self._cached = await self._load()
        assert self._cached is not None
        return self._cached

    async def refresh(self) -> KeySet:
        async with self._reloading:
            self._cached = await self._load()
            return self._cached

    def _private_key(self, key: SigningKey) -> rsa.RSAPrivateKey:
        private = self._private_keys.get(key.kid)
        if private is None:
            loaded = serialization.load_pem_private_key(self._fernet.decrypt(key.private_key_encrypted), None)
            assert isinstance(loaded, rsa.RSAPrivateKey)
            private = self._private_keys[key.kid] = loaded
        return private

    async def _load(self) -> KeySet:
        if self._settings.signing_key_pem:
            return self._from_pem(self._settings.signing_key_pem)
        async with session_scope(self._session_factory) as session:
            now = utcnow()
            repository = SigningKeyRepository(session)
            keys = await self._published_keys(repository)
            if not _signing_now(keys, now):
                await repository.lock_creation()
                keys = await self._published_keys(repository)
                if not _signing_now(keys, now):
                    keys.append(generate_key(self._fernet))
                    repository.add(keys[-1])
        active = max(_signing_now(keys, utcnow()), key=lambda k: k.activates_at)
        private = self._private_key(active)
        jwks = {"keys": [k.public_jwk for k in sorted(keys, key=lambda k: k.created_at, reverse=True)]}
        return KeySet(
            signing_kid=active.kid,
            signing_key=private,
            public_keys=jwks_to_keys(jwks),
            jwks=jwks,
            loaded_at=time.monotonic(),
        )

    async def _published_keys(self, repository: SigningKeyRepository) -> list[SigningKey]:
        """Every key not yet retired, and the retired ones whose tokens may still be valid."""
        horizon = utcnow() - timedelta(seconds=self._settings.access_token_ttl_seconds) - PUBLISH_LEEWAY
        return await repository.published(retired_after=horizon)

    def _from_pem(self, pem: str) -> KeySet:
        """A key from configuration: rotation is then the operator's (AUTH_SIGNING_KEY_PEM)."""
        if self._cached is not None:
            return replace(self._cached, loaded_at=time.monotonic())  # configuration does not change
        private = serialization.load_pem_private_key(pem.encode(), None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError("AUTH_SIGNING_KEY_PEM must be an RSA private key")
        kid = thumbprint_kid(private.public_key())
        return KeySet(
            signing_kid=kid,
            signing_key=private,
            public_keys={kid: private.public_key()},
            jwks={"keys": [public_jwk(private.public_key(), kid=kid)]},
            loaded_at=time.monotonic(),
        )


def _signing_now(keys: list[SigningKey], now: datetime) -> list[SigningKey]:
    return [k for k in keys if k.activates_at <= now and (k.retired_at is None or k.retired_at > now)]


def discovery_document(settings: Settings) -> dict[str, Any]:
    """The OpenID discovery document: who issues our tokens and where their keys are."""
    base = settings.public_url.rstrip("/")
    return {
        "issuer": settings.issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{base}/auth/login",
        "userinfo_endpoint": f"{base}/auth/me",
        "revocation_endpoint": f"{base}/auth/logout",
        "response_types_supported": ["token"],
        "grant_types_supported": ["password", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "claims_supported": [
            "iss",
            "aud",
            "sub",
            "iat",
            "nbf",
            "exp",
            "jti",
            "sid",
            "email",
            "email_verified",
            "roles",
        ],
    }
