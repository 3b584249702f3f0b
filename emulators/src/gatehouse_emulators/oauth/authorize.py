"""The authorization endpoint both providers share: request checks, the consent page, automation
(`emulator_user`, `emulator_error`) and the redirects back to the client (RFC 6749 4.1).

A bad `client_id` or `redirect_uri` is shown as an HTML error page and never redirected to, as the
RFC demands; every other error goes back to the client's `redirect_uri` with `error` and `state`.
`start` is the GET handler of both; each provider passes the checks that make it differ (`Scopes`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .config import GitHubUser, OAuthClient, Provider
from .state import AuthorizationRequest, EmulatorState, User

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("gatehouse_emulators.oauth", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
TITLES: dict[Provider, str] = {"google": "Google", "github": "GitHub"}
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_GITHUB_DENIED = {
    "error_description": "The user has denied your application access.",
    "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied",
}


class Refused(Exception):
    """A bad authorization request the client is told about through its redirect_uri."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


# A provider's own checks of the query, in its order (`require_state` among them); returns the scopes.
Scopes = Callable[[EmulatorState, dict[str, str]], tuple[str, ...]]


class AuthorizeError(Exception):
    """An error the client cannot be told through its redirect_uri: shown to the person instead."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title
        self.message = message

    def page(self, provider: Provider) -> HTMLResponse:
        return error_page(provider, self.title, self.message)


def error_page(provider: Provider, title: str, message: str, status_code: int = 400) -> HTMLResponse:
    html = TEMPLATES.get_template("error.html").render(
        provider=TITLES[provider], title=title, message=message
    )
    return HTMLResponse(html, status_code=status_code)


def single_query_params(request: Request) -> dict[str, str]:
    """The query as a dict; a repeated parameter is an error (RFC 6749 3.1)."""
    params = request.query_params
    repeated = sorted({key for key in params if len(params.getlist(key)) > 1})
    if repeated:
        raise AuthorizeError("invalid_request", f"Parameters sent more than once: {', '.join(repeated)}")
    return dict(params)


def check_client(state: EmulatorState, provider: Provider, client_id: str | None) -> OAuthClient:
    client = state.client(provider, client_id) if client_id else None
    if client is None:
        raise AuthorizeError("invalid_client", f"The OAuth client was not found: {client_id!r}")
    return client


def check_redirect_uri(client: OAuthClient, redirect_uri: str | None) -> str:
    if not redirect_uri:
        if client.redirect_uris:
            return client.redirect_uris[0]  # GitHub's behaviour: the registered callback URL
        raise AuthorizeError("invalid_request", "Missing required parameter: redirect_uri")
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise AuthorizeError("redirect_uri_mismatch", f"Not an http(s) URL without fragment: {redirect_uri}")
    if client.redirect_uris and redirect_uri not in client.redirect_uris:
        raise AuthorizeError("redirect_uri_mismatch", f"redirect_uri is not registered: {redirect_uri}")
    return redirect_uri


def require_state(state: EmulatorState, params: dict[str, str]) -> None:
    if not params.get("state") and state.config.require_state:
        raise Refused("invalid_request", "Missing required parameter: state")


def check_pkce(code_challenge: str | None, method: str | None) -> None:
    """Only S256 is accepted."""
    if code_challenge is None:
        if method:
            raise Refused("invalid_request", "code_challenge_method without code_challenge")
    elif method != "S256":
        raise Refused("invalid_request", "code_challenge_method must be S256 (plain is not accepted)")
    elif not _PKCE_CHALLENGE.match(code_challenge):
        raise Refused(
            "invalid_request", "code_challenge must be BASE64URL(SHA256(code_verifier)), 43 characters"
        )


def start(request: Request, state: EmulatorState, provider: Provider, scopes_of: Scopes) -> Response:
    """`GET` of the authorization endpoint: check the request, then answer it (`respond`)."""
    try:
        params = single_query_params(request)
        client = check_client(state, provider, params.get("client_id"))
        redirect_uri = check_redirect_uri(client, params.get("redirect_uri"))
        try:
            scopes = scopes_of(state, params)
            check_pkce(params.get("code_challenge"), params.get("code_challenge_method"))
        except Refused as exc:
            return error_redirect(provider, redirect_uri, params.get("state"), exc.error, exc.description)
        auth = AuthorizationRequest(
            provider=provider,
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=params.get("state"),
            nonce=params.get("nonce") if provider == "google" else None,  # GitHub has no ID token
            code_challenge=params.get("code_challenge"),
        )
        return respond(request, state, auth)
    except AuthorizeError as exc:
        return exc.page(provider)


def redirect_to(uri: str, params: dict[str, str | None]) -> RedirectResponse:
    """302 to `uri` with `params` (None values left out) added to its query."""
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)


def error_redirect(
    provider: Provider, redirect_uri: str, state: str | None, error: str, description: str | None = None
) -> RedirectResponse:
    params: dict[str, str | None] = {"error": error, "error_description": description}
    if provider == "github" and error == "access_denied" and description is None:
        params.update(_GITHUB_DENIED)
    params["state"] = state
    return redirect_to(redirect_uri, params)


def approve(state: EmulatorState, request: AuthorizationRequest, user: User) -> RedirectResponse:
    code = state.issue_code(request, user.key)
    params: dict[str, str | None] = {"code": code, "state": request.state}
    if request.provider == "google":  # what Google adds; clients must ignore it
        params.update(scope=" ".join(request.scopes), authuser="0", prompt="consent")
    return redirect_to(request.redirect_uri, params)


def respond(request: Request, state: EmulatorState, auth: AuthorizationRequest) -> Response:
    """A valid request: automation answers at once, a person gets the consent page."""
    emulator_error = request.query_params.get("emulator_error")
    if emulator_error is not None:
        if not _ERROR_CODE.match(emulator_error):
            raise AuthorizeError(
                "emulator_error", "emulator_error must be an OAuth error code, e.g. access_denied"
            )
        return error_redirect(auth.provider, auth.redirect_uri, auth.state, emulator_error)
    emulator_user = request.query_params.get("emulator_user")
    if emulator_user is not None:
        user = state.find_user(auth.provider, emulator_user)
        if user is None:
            known = ", ".join(u.key for u in state.users(auth.provider))
            raise AuthorizeError(
                "emulator_user", f"No {auth.provider} user {emulator_user!r}; known: {known}"
            )
        return approve(state, auth, user)
    consent_id = state.start_consent(auth)
    html = TEMPLATES.get_template("consent.html").render(
        provider=TITLES[auth.provider],
        action=request.url.path,
        consent_id=consent_id,
        client_id=auth.client_id,
        redirect_uri=auth.redirect_uri,
        scopes=auth.scopes,
        users=[_describe(user) for user in state.users(auth.provider)],
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


async def decide(request: Request, state: EmulatorState, provider: Provider) -> Response:
    """The consent form's POST: `consent` (the pending request) and `user` (approve) or `deny`."""
    form = await request.form()
    consent_id, user_key, deny = form.get("consent"), form.get("user"), form.get("deny")
    auth = state.take_consent(consent_id) if isinstance(consent_id, str) else None
    if auth is None or auth.provider != provider:
        return error_page(provider, "Expired", "This consent page has expired or was used; sign in again.")
    if deny is not None:
        return error_redirect(provider, auth.redirect_uri, auth.state, "access_denied")
    user = state.find_user(provider, user_key) if isinstance(user_key, str) else None
    if user is None:
        return error_page(provider, "Unknown user", f"No {provider} user {user_key!r}.")
    return approve(state, auth, user)


def _describe(user: User) -> dict[str, str]:
    if isinstance(user, GitHubUser):
        primary = next((e for e in user.emails if e.primary), None)
        email = primary.email if primary else "no email"
        verified = bool(primary and primary.verified)
        label = user.login
    else:
        email, verified, label = user.email, user.email_verified, user.name or user.email
    note = "" if verified else "email not verified"
    return {"key": user.key, "label": label, "email": email, "note": note}
