"""What a sign-in must remember between the redirect to the provider and the callback.

It travels in a short-lived cookie, encrypted and authenticated with Fernet (so the PKCE verifier
and nonce are unreadable and nothing in it can be altered), scoped to the provider's path,
httpOnly and SameSite=Lax (the callback is a top-level GET from the provider, which Lax allows).
Each state is accepted once: the callback records it in Redis, so a replayed callback fails even
within the cookie's lifetime.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from dataclasses import asdict, dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.asyncio import Redis

from auth_service.errors import OAuthStateInvalid
from auth_service.settings import Settings


@dataclass(frozen=True)
class SignInState:
    provider: str
    state: str
    verifier: str
    nonce: str
    redirect_to: str | None
    link_user_id: str | None = None  # set when a signed-in user is linking this provider

    @classmethod
    def new(
        cls, provider: str, redirect_to: str | None, link_user_id: uuid.UUID | None = None
    ) -> SignInState:
        return cls(
            provider=provider,
            state=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),  # 86 characters: within PKCE's 43–128
            nonce=secrets.token_urlsafe(32),
            redirect_to=redirect_to,
            link_user_id=str(link_user_id) if link_user_id else None,
        )


def cookie_name(provider: str) -> str:
    return f"gatehouse_oauth_{provider}"


def cookie_path(provider: str) -> str:
    return f"/auth/{provider}"


class StateCookies:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gatehouse oauth state").derive(
            settings.token_secret.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._ttl = settings.oauth_state_ttl_seconds
        self._redis = redis
        self._prefix = f"{settings.redis_key_prefix}:oauth-state"

    @property
    def ttl(self) -> int:
        return self._ttl

    def seal(self, state: SignInState) -> str:
        return self._fernet.encrypt(json.dumps(asdict(state)).encode()).decode()

    def open(self, provider: str, sealed: str | None, returned_state: str | None) -> SignInState:
        """The state this browser started, if the provider returned the same one; else 400."""
        if not sealed:
            raise OAuthStateInvalid("This sign-in was not started here or has expired; start again.")
        try:
            state = SignInState(**json.loads(self._fernet.decrypt(sealed.encode(), ttl=self._ttl)))
        except (InvalidToken, ValueError, TypeError) as exc:
            raise OAuthStateInvalid(
                "This sign-in has expired or its cookie is damaged; start again."
            ) from exc
        if state.provider != provider or not secrets.compare_digest(state.state, returned_state or ""):
            raise OAuthStateInvalid("The provider returned a state this sign-in did not send.")
        return state

    async def spend(self, state: SignInState) -> None:
        """Accept each state once; a second callback with it is a replay."""
        digest = hashlib.sha256(state.state.encode()).hexdigest()
        if not await self._redis.set(f"{self._prefix}:{digest}", 1, nx=True, ex=self._ttl):
            raise OAuthStateInvalid("This sign-in was completed already; start again.")
