"""Configuration of the OAuth emulator: registered clients and test users of each provider.

Users and clients are pydantic models, so the same validation applies to the defaults, to a
`--users` JSON file and to `POST /_emulator/users`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Provider = Literal["google", "github"]
PROVIDERS: tuple[Provider, ...] = ("google", "github")

_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _stable_number(provider: str, key: str) -> int:
    """A number derived from the user key, so a user keeps its id across emulator restarts."""
    return int.from_bytes(hashlib.sha256(f"{provider}:{key}".encode()).digest()[:8], "big")


class GoogleUser(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=_KEY_PATTERN, description="name tests use (`emulator_user=alice`)")
    email: str = Field(pattern=_EMAIL_PATTERN)
    email_verified: bool = True
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    picture: str | None = Field(None, description="default: an SVG avatar served by the emulator")
    sub: str = Field("", description="default: 21 digits derived from the key, like Google's")

    @model_validator(mode="after")
    def _default_sub(self) -> GoogleUser:
        if not self.sub:
            object.__setattr__(self, "sub", str(_stable_number("google", self.key)).rjust(21, "1")[:21])
        return self


class GitHubEmail(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str = Field(pattern=_EMAIL_PATTERN)
    primary: bool = False
    verified: bool = False
    visibility: Literal["public", "private"] | None = None


class GitHubUser(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=_KEY_PATTERN, description="name tests use (`emulator_user=octocat`)")
    login: str = Field("", description="default: the key")
    id: int = Field(0, ge=0, description="default: a number derived from the key")
    name: str | None = None
    email: str | None = Field(None, description="the public email shown by GET /user, or null")
    avatar_url: str | None = Field(None, description="default: an SVG avatar served by the emulator")
    emails: tuple[GitHubEmail, ...] = Field(
        (), description="GET /user/emails; default: the public email, primary and verified"
    )

    @model_validator(mode="after")
    def _defaults_and_consistency(self) -> GitHubUser:
        if not self.login:
            object.__setattr__(self, "login", self.key)
        if not self.id:
            object.__setattr__(self, "id", _stable_number("github", self.key) % 90_000_000 + 10_000_000)
        if not self.emails and self.email:
            default = GitHubEmail(email=self.email, primary=True, verified=True, visibility="public")
            object.__setattr__(self, "emails", (default,))
        if sum(1 for item in self.emails if item.primary) > 1:
            raise ValueError("a GitHub user has at most one primary email")
        if self.email and self.email not in {item.email for item in self.emails if item.verified}:
            raise ValueError("the public email must be one of the user's verified emails")
        return self


class OAuthClient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    redirect_uris: tuple[str, ...] = Field(
        (), description="allowed redirect URIs (exact match); empty: any http(s) URL"
    )


def default_google_users() -> list[GoogleUser]:
    return [
        GoogleUser(
            key="alice",
            email="alice@example.com",
            email_verified=True,
            name="Alice Example",
            given_name="Alice",
            family_name="Example",
        ),
        GoogleUser(
            key="bob",
            email="bob@example.com",
            email_verified=False,
            name="Bob Unverified",
            given_name="Bob",
            family_name="Unverified",
        ),
    ]


def default_github_users() -> list[GitHubUser]:
    return [
        GitHubUser(key="octocat", id=583231, name="The Octocat", email="octocat@example.com"),
        GitHubUser(
            key="private-carol",
            name="Carol Private",
            email=None,
            emails=(
                # listed first on purpose: a client must pick the primary verified address
                GitHubEmail(email="carol.old@example.org", primary=False, verified=False),
                GitHubEmail(email="carol@example.com", primary=True, verified=True, visibility="private"),
            ),
        ),
        GitHubUser(
            key="unverified-dave",
            name="Dave Unverified",
            email=None,
            emails=(
                GitHubEmail(email="dave@example.com", primary=True, verified=False, visibility="private"),
            ),
        ),
    ]


class OAuthEmulatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = Field(
        None, description="advertised base URL (issuer, discovery); default: the request's base URL"
    )
    browser_url: str | None = Field(
        None,
        description="base URL of the consent page (Google's authorization_endpoint) when browsers reach "
        "the emulator by another name than servers do; default: base_url",
    )
    google_clients: tuple[OAuthClient, ...] = (
        OAuthClient(client_id="gatehouse-google-client", client_secret="gatehouse-google-secret"),
    )
    github_clients: tuple[OAuthClient, ...] = (
        OAuthClient(client_id="gatehouse-github-client", client_secret="gatehouse-github-secret"),
    )
    google_users: tuple[GoogleUser, ...] = Field(default_factory=lambda: tuple(default_google_users()))
    github_users: tuple[GitHubUser, ...] = Field(default_factory=lambda: tuple(default_github_users()))
    code_ttl_seconds: float = Field(60, gt=0)
    access_token_ttl_seconds: int = Field(3600, gt=0)
    id_token_ttl_seconds: int = Field(3600, gt=0)
    require_state: bool = Field(True, description="refuse authorization requests without `state`")

    def clients(self, provider: Provider) -> tuple[OAuthClient, ...]:
        return self.google_clients if provider == "google" else self.github_clients

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, users_file: Path | None = None
    ) -> OAuthEmulatorConfig:
        """Defaults overridden by `OAUTH_EMULATOR_*` variables and an optional users file.

        The users file is JSON: `{"google": [user...], "github": [user...],
        "clients": {"google": [client...], "github": [client...]}}`; its users are added to the
        default ones (same key: replaced), its clients replace the configured ones.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("OAUTH_EMULATOR_BASE_URL"):
            values["base_url"] = env["OAUTH_EMULATOR_BASE_URL"].rstrip("/")
        if env.get("OAUTH_EMULATOR_BROWSER_URL"):
            values["browser_url"] = env["OAUTH_EMULATOR_BROWSER_URL"].rstrip("/")
        for provider in PROVIDERS:
            prefix = f"OAUTH_EMULATOR_{provider.upper()}_"
            client_id = env.get(prefix + "CLIENT_ID") or f"gatehouse-{provider}-client"
            secret = env.get(prefix + "CLIENT_SECRET") or f"gatehouse-{provider}-secret"
            uris = tuple(
                uri.strip() for uri in env.get(prefix + "REDIRECT_URIS", "").split(",") if uri.strip()
            )
            values[f"{provider}_clients"] = (
                OAuthClient(client_id=client_id, client_secret=secret, redirect_uris=uris),
            )
        if users_file is not None:
            document = json.loads(users_file.read_text(encoding="utf-8"))
            if not isinstance(document, dict):
                raise ValueError(f"{users_file}: expected a JSON object with 'google' and/or 'github' lists")
            values["google_users"] = _merge(default_google_users(), document.get("google", []), GoogleUser)
            values["github_users"] = _merge(default_github_users(), document.get("github", []), GitHubUser)
            for provider, clients in (document.get("clients") or {}).items():
                if provider not in PROVIDERS:
                    raise ValueError(f"{users_file}: unknown provider {provider!r} under 'clients'")
                values[f"{provider}_clients"] = tuple(OAuthClient.model_validate(c) for c in clients)
        return cls(**values)


def _merge(defaults: list[Any], extra: list[Any], model: type[BaseModel]) -> tuple[Any, ...]:
    users = {user.key: user for user in defaults}
    for raw in extra:
        user = model.model_validate(raw)
        users[user.key] = user  # type: ignore[attr-defined]
    return tuple(users.values())
