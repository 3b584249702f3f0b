"""In-memory state of the emulator: users, pending consents, codes, access tokens, faults, clock.

Every read and write goes through one lock: uvicorn may serve requests from several threads
(sync code in FastAPI runs in a thread pool) and tests may call in from their own thread.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .config import (
    GitHubUser,
    GoogleUser,
    OAuthClient,
    OAuthEmulatorConfig,
    Provider,
)
from .keys import SigningKey

User = GoogleUser | GitHubUser
CONSENT_TTL_SECONDS = 600.0

FaultEndpoint = Literal["token", "userinfo", "jwks", "user", "emails", "id_token"]
IdTokenFault = Literal["wrong_nonce", "bad_signature", "wrong_audience", "wrong_issuer", "expired"]
_ENDPOINTS: dict[Provider, set[str]] = {
    "google": {"token", "userinfo", "jwks", "id_token"},
    "github": {"token", "user", "emails"},
}


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request, waiting for consent or bound to a code."""

    provider: Provider
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None = None
    code_challenge: str | None = None


@dataclass
class Grant:
    request: AuthorizationRequest
    user_key: str
    expires_at: float
    used: bool = False
    tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AccessToken:
    value: str
    provider: Provider
    client_id: str
    user_key: str
    scopes: tuple[str, ...]
    expires_at: float


class FaultSpec(BaseModel):
    """`POST /_emulator/faults`: the next `times` calls to `endpoint` misbehave."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider
    endpoint: FaultEndpoint
    status: int | None = Field(None, ge=400, le=599, description="answer this status (default 500)")
    kind: IdTokenFault | None = Field(None, description="endpoint id_token only: how the token is wrong")
    delay_seconds: float = Field(0, ge=0, le=30, description="wait before answering")
    times: int = Field(1, ge=1, le=10_000)

    @model_validator(mode="after")
    def _check(self) -> FaultSpec:
        if self.endpoint not in _ENDPOINTS[self.provider]:
            raise ValueError(f"{self.provider} endpoints with faults: {sorted(_ENDPOINTS[self.provider])}")
        if self.endpoint == "id_token":
            if self.kind is None or self.status is not None:
                raise ValueError("an id_token fault takes a `kind` and no `status`")
        elif self.kind is not None:
            raise ValueError("`kind` applies to the id_token endpoint only")
        elif self.status is None and not self.delay_seconds:
            object.__setattr__(self, "status", 500)
        return self


@dataclass
class _ActiveFault:
    spec: FaultSpec
    remaining: int


class CodeRejected(Exception):
    """The code is unknown, expired, already used or belongs to another provider."""


class EmulatorState:
    def __init__(self, config: OAuthEmulatorConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.signing_key = SigningKey.generate()
        self._other_key: SigningKey | None = None
        self._clock = clock
        self._lock = threading.Lock()
        self._offset = 0.0
        self._google_users: dict[str, GoogleUser] = {}
        self._github_users: dict[str, GitHubUser] = {}
        self._consents: dict[str, tuple[AuthorizationRequest, float]] = {}
        self._codes: dict[str, Grant] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._faults: list[_ActiveFault] = []
        self.reset()

    def reset(self) -> None:
        """Back to the configured users; no codes, tokens or faults; the clock back to real time."""
        with self._lock:
            self._offset = 0.0
            self._google_users = {user.key: user for user in self.config.google_users}
            self._github_users = {user.key: user for user in self.config.github_users}
            self._consents.clear()
            self._codes.clear()
            self._tokens.clear()
            self._faults.clear()

    # --- clock -------------------------------------------------------------------------------
    def now(self) -> float:
        """Emulator time: governs the expiry of codes, consents and access tokens."""
        with self._lock:
            return self._now()

    def _now(self) -> float:
        """`now()` for a caller that holds the lock."""
        return self._clock() + self._offset

    def advance_clock(self, seconds: float) -> float:
        with self._lock:
            self._offset += seconds
            return self._now()

    # --- clients and users -------------------------------------------------------------------
    def client(self, provider: Provider, client_id: str) -> OAuthClient | None:
        return next((c for c in self.config.clients(provider) if c.client_id == client_id), None)

    def users(self, provider: Provider) -> list[User]:
        with self._lock:
            return list(self._google_users.values() if provider == "google" else self._github_users.values())

    def google_user(self, ref: str) -> GoogleUser | None:
        """By key or (case-insensitive) email."""
        with self._lock:
            if ref in self._google_users:
                return self._google_users[ref]
            return next((u for u in self._google_users.values() if u.email.lower() == ref.lower()), None)

    def github_user(self, ref: str) -> GitHubUser | None:
        """By key, login or (case-insensitive) any of the user's emails."""
        with self._lock:
            if ref in self._github_users:
                return self._github_users[ref]
            for user in self._github_users.values():
                if user.login == ref or ref.lower() in {e.email.lower() for e in user.emails}:
                    return user
            return None

    def find_user(self, provider: Provider, ref: str) -> User | None:
        return self.google_user(ref) if provider == "google" else self.github_user(ref)

    def put_user(self, user: User) -> None:
        with self._lock:
            if isinstance(user, GoogleUser):
                self._google_users[user.key] = user
            else:
                self._github_users[user.key] = user

    def delete_user(self, provider: Provider, key: str) -> bool:
        with self._lock:
            users: dict[str, GoogleUser] | dict[str, GitHubUser]
            users = self._google_users if provider == "google" else self._github_users
            return users.pop(key, None) is not None

    # --- consent and codes -------------------------------------------------------------------
    def start_consent(self, request: AuthorizationRequest) -> str:
        consent_id = secrets.token_urlsafe(16)
        with self._lock:
            now = self._now()
            self._consents = {k: v for k, v in self._consents.items() if v[1] > now}
            self._consents[consent_id] = (request, now + CONSENT_TTL_SECONDS)
        return consent_id

    def take_consent(self, consent_id: str) -> AuthorizationRequest | None:
        with self._lock:
            entry = self._consents.pop(consent_id, None)
            if entry is None or entry[1] <= self._now():
                return None
            return entry[0]

    def issue_code(self, request: AuthorizationRequest, user_key: str) -> str:
        # Google's codes carry a "/", which clients must encode; GitHub's are 20 hex digits
        code = "4/0" + secrets.token_urlsafe(32) if request.provider == "google" else secrets.token_hex(10)
        with self._lock:
            now = self._now()
            # a used code is kept while its tokens may live, so a replay still revokes them
            keep_until = self.config.access_token_ttl_seconds
            self._codes = {k: g for k, g in self._codes.items() if g.expires_at + keep_until > now}
            self._codes[code] = Grant(request, user_key, expires_at=now + self.config.code_ttl_seconds)
        return code

    def redeem_code(self, provider: Provider, code: str) -> Grant:
        """Consume a code. A second use fails and revokes the tokens the first use got (RFC 6749 4.1.2)."""
        with self._lock:
            grant = self._codes.get(code)
            if grant is None or grant.request.provider != provider:
                raise CodeRejected("the authorization code is unknown")
            if grant.used:
                for token in grant.tokens:
                    self._tokens.pop(token, None)
                raise CodeRejected("the authorization code was already used; its tokens are revoked")
            grant.used = True
            if grant.expires_at <= self._now():
                raise CodeRejected("the authorization code has expired")
            return grant

    # --- access tokens -----------------------------------------------------------------------
    def issue_access_token(self, grant: Grant) -> AccessToken:
        request = grant.request
        if request.provider == "google":
            value = "ya29." + secrets.token_urlsafe(48)
        else:
            value = "gho_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))
        with self._lock:
            now = self._now()
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            token = AccessToken(
                value=value,
                provider=request.provider,
                client_id=request.client_id,
                user_key=grant.user_key,
                scopes=request.scopes,
                expires_at=now + self.config.access_token_ttl_seconds,
            )
            self._tokens[value] = token
            grant.tokens.append(value)
        return token

    def access_token(self, provider: Provider, value: str) -> AccessToken | None:
        """The live token with this value, or None (unknown, expired, revoked, other provider)."""
        with self._lock:
            token = self._tokens.get(value)
            if token is None or token.provider != provider or token.expires_at <= self._now():
                return None
            return token

    def revoke_token(self, provider: Provider, value: str) -> bool:
        with self._lock:
            token = self._tokens.get(value)
            if token is None or token.provider != provider:
                return False
            del self._tokens[value]
            return True

    def revoke_grant(self, provider: Provider, client_id: str, user_key: str) -> int:
        """Revoke every token of this user for this client (GitHub's DELETE .../grant)."""
        with self._lock:
            doomed = [
                k
                for k, t in self._tokens.items()
                if (t.provider, t.client_id, t.user_key) == (provider, client_id, user_key)
            ]
            for value in doomed:
                del self._tokens[value]
            return len(doomed)

    # --- faults ------------------------------------------------------------------------------
    def add_fault(self, spec: FaultSpec) -> None:
        with self._lock:
            self._faults.append(_ActiveFault(spec, spec.times))

    def take_fault(self, provider: Provider, endpoint: str) -> FaultSpec | None:
        """The first pending fault for this endpoint, counted as used once."""
        with self._lock:
            for fault in self._faults:
                if (fault.spec.provider, fault.spec.endpoint) == (provider, endpoint):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault.spec
            return None

    def faults(self) -> list[dict[str, object]]:
        with self._lock:
            return [{**f.spec.model_dump(), "remaining": f.remaining} for f in self._faults]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def other_key(self) -> SigningKey:
        """A key that is not published: signs the ID tokens of a `bad_signature` fault."""
        if self._other_key is None:
            key = SigningKey.generate()  # slow: outside the lock
            with self._lock:
                if self._other_key is None:
                    self._other_key = key
        assert self._other_key is not None
        return self._other_key
