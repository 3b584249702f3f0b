"""The token endpoint both providers share: client authentication (client_secret_basic and
client_secret_post, RFC 6749 2.3.1), the code checks and PKCE (RFC 7636). Errors are raised with
RFC 6749 codes; each provider words them its own way."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

from fastapi import Request

from .config import OAuthClient, Provider
from .keys import s256
from .state import CodeRejected, EmulatorState, Grant

_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


class TokenError(Exception):
    def __init__(self, error: str, description: str, *, status: int = 400, github_error: str | None = None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.github_error = github_error  # when GitHub names this case differently


@dataclass(frozen=True)
class TokenRequest:
    client: OAuthClient
    fields: dict[str, str]


async def read_token_request(
    request: Request, state: EmulatorState, provider: Provider, *, query_too: bool = False
) -> TokenRequest:
    """Parse the form (and, like GitHub, the query when `query_too`) and authenticate the client."""
    form = await request.form()
    items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    if query_too:
        items += list(request.query_params.multi_items())
    fields: dict[str, str] = {}
    for key, value in items:
        if key in fields:
            raise TokenError("invalid_request", f"parameter sent more than once: {key}")
        fields[key] = value

    basic = _basic_credentials(request)
    if basic is not None and "client_secret" in fields:
        raise TokenError("invalid_request", "use one client authentication method, not two")
    secret: str | None
    if basic is not None:
        client_id, secret = basic
        if fields.get("client_id", client_id) != client_id:
            raise TokenError("invalid_request", "client_id differs from the Authorization header's")
    else:
        client_id, secret = fields.get("client_id", ""), fields.get("client_secret")
    client = state.client(provider, client_id) if client_id else None
    if client is None or secret is None or not _same(secret, client.client_secret):
        raise TokenError("invalid_client", "client authentication failed", status=401)
    return TokenRequest(client=client, fields=fields)


def basic_client(request: Request, state: EmulatorState, provider: Provider) -> OAuthClient:
    """The client authenticated by `Authorization: Basic client_id:client_secret` (GitHub's app API)."""
    basic = _basic_credentials(request)
    client = state.client(provider, basic[0]) if basic else None
    if basic is None or client is None or not _same(basic[1], client.client_secret):
        raise TokenError("invalid_client", "client authentication failed", status=401)
    return client


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def redeem(
    state: EmulatorState, provider: Provider, token_request: TokenRequest, *, redirect_required: bool
) -> Grant:
    """The grant behind `code`, checked against the client, redirect_uri and PKCE verifier.

    The code is spent by this call whatever the outcome: a code is good for one attempt.
    """
    fields = token_request.fields
    code = fields.get("code")
    if not code:
        raise TokenError(
            "invalid_request", "missing required parameter: code", github_error="bad_verification_code"
        )
    try:
        grant = state.redeem_code(provider, code)
    except CodeRejected as exc:
        raise TokenError("invalid_grant", str(exc)) from exc
    request = grant.request
    if request.client_id != token_request.client.client_id:
        raise TokenError("invalid_grant", "the code was issued to another client")
    redirect_uri = fields.get("redirect_uri")
    if redirect_uri is None and redirect_required:
        raise TokenError("invalid_request", "missing required parameter: redirect_uri")
    if redirect_uri is not None and redirect_uri != request.redirect_uri:
        raise TokenError(
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
            github_error="redirect_uri_mismatch",
        )
    verifier = fields.get("code_verifier")
    if request.code_challenge is None:
        if verifier is not None:
            raise TokenError(
                "invalid_grant", "code_verifier sent, but the authorization had no code_challenge"
            )
    elif verifier is None:
        raise TokenError("invalid_grant", "missing code_verifier: the authorization had a code_challenge")
    elif not _VERIFIER.match(verifier) or not hmac.compare_digest(s256(verifier), request.code_challenge):
        raise TokenError("invalid_grant", "code_verifier does not match the code_challenge")
    return grant


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise TokenError("invalid_client", "malformed Basic credentials", status=401) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise TokenError("invalid_client", "malformed Basic credentials", status=401)
    return unquote_plus(client_id), unquote_plus(secret)  # RFC 6749 2.3.1: form-encoded, then Basic
