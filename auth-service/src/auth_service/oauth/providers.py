"""Google and GitHub as OAuth 2.0 providers: the authorization URL, the code exchange (Authlib), and
the person behind the token as a `ProviderProfile`. Everything provider-specific stays here.

Failures surface as our errors: the provider refusing the code is `OAuthCodeRejected` (400), the
provider being unreachable or broken is `ProviderUnavailable` (502).

Authlib is imported where a client is made or its errors caught, not with this module: most
starts of auth-service serve no OAuth sign-in before they end, and it costs tens of ms to import.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from auth_service.errors import OAuthCodeRejected, ProviderUnavailable
from auth_service.settings import Settings
from gatehouse_platform.jwt import jwks_to_keys

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

ProviderName = Literal["google", "github"]


@dataclass(frozen=True)
class ProviderProfile:
    provider: ProviderName
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    avatar_url: str | None
    username_hint: str | None


class Provider(Protocol):
    name: ProviderName

    async def authorization_url(self, *, redirect_uri: str, state: str, verifier: str, nonce: str) -> str: ...

    async def profile(
        self, *, redirect_uri: str, code: str, verifier: str, nonce: str
    ) -> ProviderProfile: ...


def _client(
    client_id: str, client_secret: str, redirect_uri: str, scope: str, timeout: float
) -> AsyncOAuth2Client:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    client = AsyncOAuth2Client(
        client_id,
        client_secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=timeout,
    )

    def refuse_server_errors(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 500:
            raise ProviderUnavailable(f"The provider's token endpoint answered {response.status_code}.")
        return response

    client.register_compliance_hook("access_token_response", refuse_server_errors)
    return client


async def _exchange(client: AsyncOAuth2Client, token_url: str, code: str, verifier: str) -> dict[str, Any]:
    from authlib.integrations.httpx_client import OAuthError

    try:
        token = await client.fetch_token(token_url, code=code, code_verifier=verifier)
    except OAuthError as exc:
        raise OAuthCodeRejected(f"The provider refused the sign-in ({exc.error}).") from exc
    except httpx.HTTPError as exc:
        raise ProviderUnavailable("The provider could not be reached.") from exc
    except ValueError as exc:  # an answer that is not a token response at all
        raise ProviderUnavailable("The provider answered with something that is not a token.") from exc
    if not token.get("access_token"):
        raise ProviderUnavailable("The provider answered without an access token.")
    return dict(token)


async def _get_json(http: httpx.AsyncClient, url: str, **kwargs: Any) -> Any:
    try:
        response = await http.get(url, **kwargs)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable("The provider could not be reached.") from exc
    if response.status_code != 200:
        raise ProviderUnavailable(f"The provider answered {response.status_code} at {url}.")
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderUnavailable(f"The provider answered {url} with something that is not JSON.") from exc


class GoogleProvider:
    """OpenID Connect: endpoints from the discovery document, the person from the ID token, which
    is verified against the provider's JWKS (RS256, issuer, audience, expiry, and our nonce)."""

    name: ProviderName = "google"
    _CACHE_SECONDS = 3600.0

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        assert settings.google_client_id and settings.google_client_secret
        self._client_id = settings.google_client_id
        self._client_secret = settings.google_client_secret
        self._discovery_url = settings.google_discovery_url
        self._timeout = settings.oauth_http_timeout_seconds
        self._http = http
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str, RSAPublicKey] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _discovery(self) -> dict[str, Any]:
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._fetched_at > self._CACHE_SECONDS:
                metadata = await _get_json(self._http, self._discovery_url, timeout=self._timeout)
                if (
                    not isinstance(metadata, dict)
                    or not {
                        "issuer",
                        "authorization_endpoint",
                        "token_endpoint",
                        "jwks_uri",
                    }
                    <= metadata.keys()
                ):
                    raise ProviderUnavailable("The provider's discovery document is incomplete.")
                self._metadata, self._keys, self._fetched_at = metadata, {}, time.monotonic()
            return self._metadata

    async def _key(self, kid: str) -> RSAPublicKey:
        if kid not in self._keys:  # first use, or the provider rotated its keys
            metadata = await self._discovery()
            jwks = await _get_json(self._http, metadata["jwks_uri"], timeout=self._timeout)
            try:
                self._keys = jwks_to_keys(jwks)
            except ValueError as exc:
                raise ProviderUnavailable("The provider's JWKS could not be read.") from exc
        if kid not in self._keys:
            raise OAuthCodeRejected("The provider's ID token is signed by an unknown key.")
        return self._keys[kid]

    def _oauth(self, redirect_uri: str) -> AsyncOAuth2Client:
        return _client(
            self._client_id, self._client_secret, redirect_uri, "openid email profile", self._timeout
        )

    async def authorization_url(self, *, redirect_uri: str, state: str, verifier: str, nonce: str) -> str:
        metadata = await self._discovery()
        async with self._oauth(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
            )
        return str(url)

    async def profile(self, *, redirect_uri: str, code: str, verifier: str, nonce: str) -> ProviderProfile:
        metadata = await self._discovery()
        async with self._oauth(redirect_uri) as client:
            token = await _exchange(client, metadata["token_endpoint"], code, verifier)
        claims = await self._verify_id_token(token.get("id_token"), metadata["issuer"], nonce)
        return ProviderProfile(
            provider="google",
            subject=str(claims["sub"]),
            email=claims.get("email"),
            email_verified=claims.get("email_verified") is True,
            name=claims.get("name"),
            avatar_url=claims.get("picture"),
            username_hint=claims.get("given_name") or claims.get("name"),
        )

    async def _verify_id_token(self, id_token: object, issuer: str, nonce: str) -> dict[str, Any]:
        if not isinstance(id_token, str):
            raise OAuthCodeRejected("The provider sent no ID token.")
        try:
            header = jwt.get_unverified_header(id_token)
            key = await self._key(str(header.get("kid")))
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                audience=self._client_id,
                issuer=issuer,
                leeway=60,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise OAuthCodeRejected(f"The provider's ID token is not valid ({exc}).") from exc
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OAuthCodeRejected("The provider's ID token does not carry this sign-in's nonce.")
        return claims


class GitHubProvider:
    """OAuth 2.0 (no ID token): the person from `GET /user`, the address from `GET /user/emails`,
    where only an address GitHub marks verified counts as verified."""

    name: ProviderName = "github"
    _API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        assert settings.github_client_id and settings.github_client_secret
        self._client_id = settings.github_client_id
        self._client_secret = settings.github_client_secret
        self._authorize_url = settings.github_authorize_url
        self._token_url = settings.github_token_url
        self._api = settings.github_api_url.rstrip("/")
        self._timeout = settings.oauth_http_timeout_seconds
        self._http = http

    def _oauth(self, redirect_uri: str) -> AsyncOAuth2Client:
        return _client(
            self._client_id, self._client_secret, redirect_uri, "read:user user:email", self._timeout
        )

    async def authorization_url(self, *, redirect_uri: str, state: str, verifier: str, nonce: str) -> str:
        async with self._oauth(redirect_uri) as client:
            url, _ = client.create_authorization_url(self._authorize_url, state=state, code_verifier=verifier)
        return str(url)

    async def profile(self, *, redirect_uri: str, code: str, verifier: str, nonce: str) -> ProviderProfile:
        async with self._oauth(redirect_uri) as client:
            token = await _exchange(client, self._token_url, code, verifier)
        headers = {**self._API_HEADERS, "Authorization": f"Bearer {token['access_token']}"}
        user = await _get_json(self._http, f"{self._api}/user", headers=headers, timeout=self._timeout)
        emails = await _get_json(
            self._http, f"{self._api}/user/emails", headers=headers, timeout=self._timeout
        )
        if not isinstance(user, dict) or "id" not in user or not isinstance(emails, list):
            raise ProviderUnavailable("The provider's user API answered in an unexpected shape.")
        email, verified = _best_email(emails)
        return ProviderProfile(
            provider="github",
            subject=str(user["id"]),
            email=email,
            email_verified=verified,
            name=user.get("name"),
            avatar_url=user.get("avatar_url"),
            username_hint=user.get("login"),
        )


def _best_email(emails: list[Any]) -> tuple[str | None, bool]:
    """The primary address if verified, else any verified one, else the unverified primary."""
    entries = [e for e in emails if isinstance(e, dict) and isinstance(e.get("email"), str)]
    for wanted in (
        lambda e: e.get("primary") and e.get("verified"),
        lambda e: e.get("verified"),
        lambda e: e.get("primary"),
    ):
        for entry in entries:
            if wanted(entry):
                return entry["email"], entry.get("verified") is True
    return None, False


def configured_providers(settings: Settings, http: httpx.AsyncClient) -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    if settings.google_client_id and settings.google_client_secret:
        providers["google"] = GoogleProvider(settings, http)
    if settings.github_client_id and settings.github_client_secret:
        providers["github"] = GitHubProvider(settings, http)
    return providers
