"""GitHub-like OAuth app provider under `/github`: github.com/login/oauth/* and, under
`/github/api`, the few api.github.com endpoints a sign-in needs (a client sets its API base to
`{base}/github/api/`).

Like GitHub: the token endpoint answers form-encoded unless `Accept: application/json`, and
reports a bad code or bad credentials with status 200 and an `error` field.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from . import authorize
from .common import NO_STORE, base_url, bearer_token, fault_response, get_state
from .config import GitHubUser
from .exchange import TokenError, basic_client, read_token_request, redeem
from .state import AccessToken, EmulatorState, FaultEndpoint

router = APIRouter(prefix="/github", tags=["github"])
api = APIRouter(prefix="/github/api", tags=["github"])

DOCS = "https://docs.github.com/rest"
_TROUBLESHOOTING = (
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
)
_GITHUB_ERRORS = {"invalid_client": "incorrect_client_credentials", "invalid_grant": "bad_verification_code"}
_ERROR_ANCHORS = {
    "incorrect_client_credentials": "#incorrect-client-credentials",
    "redirect_uri_mismatch": "#redirect-uri-mismatch2",
    "bad_verification_code": "#bad-verification-code",
}
EMAIL_SCOPES = {"user", "user:email"}


def _scopes(state: EmulatorState, params: dict[str, str]) -> tuple[str, ...]:
    """GitHub takes any scopes, separated by spaces or commas."""
    authorize.require_state(state, params)
    return tuple(dict.fromkeys(s for s in re.split(r"[\s,]+", params.get("scope", "")) if s))


@router.get("/login/oauth/authorize")
async def authorization(request: Request, state: EmulatorState = Depends(get_state)) -> Response:
    return authorize.start(request, state, "github", _scopes)


@router.post("/login/oauth/authorize", include_in_schema=False)
async def consent_decision(request: Request, state: EmulatorState = Depends(get_state)) -> Response:
    return await authorize.decide(request, state, "github")


@router.post("/login/oauth/access_token")
async def access_token(request: Request, state: EmulatorState = Depends(get_state)) -> Response:
    if (fault := await fault_response(state, "github", "token")) is not None:
        return fault
    as_json = "application/json" in request.headers.get("accept", "")
    try:
        token_request = await read_token_request(request, state, "github", query_too=True)
        grant_type = token_request.fields.get("grant_type", "authorization_code")
        if grant_type != "authorization_code":
            raise TokenError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        grant = redeem(state, "github", token_request, redirect_required=False)
    except TokenError as exc:
        error = exc.github_error or _GITHUB_ERRORS.get(exc.error, exc.error)
        body = {"error": error, "error_description": exc.description}
        if error in _ERROR_ANCHORS:
            body["error_uri"] = _TROUBLESHOOTING + _ERROR_ANCHORS[error]
        return _token_answer(body, as_json)  # GitHub: status 200 even for errors
    token = state.issue_access_token(grant)
    return _token_answer(
        {"access_token": token.value, "token_type": "bearer", "scope": ",".join(token.scopes)}, as_json
    )


def _token_answer(body: dict[str, str], as_json: bool) -> Response:
    if as_json:
        return JSONResponse(body, headers=NO_STORE)
    return Response(urlencode(body), media_type="application/x-www-form-urlencoded", headers=NO_STORE)


async def _caller(
    request: Request, state: EmulatorState, endpoint: FaultEndpoint
) -> tuple[AccessToken, GitHubUser] | Response:
    """The token and user behind an API call, or the answer instead: a pending fault, or a 401."""
    if (fault := await fault_response(state, "github", endpoint)) is not None:
        return fault
    value = bearer_token(request, schemes=("bearer", "token"))
    if value is None:
        return JSONResponse(
            {"message": "Requires authentication", "documentation_url": DOCS}, status_code=401
        )
    token = state.access_token("github", value)
    user = state.github_user(token.user_key) if token else None
    if token is None or user is None:
        body = {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
        return JSONResponse(body, status_code=401)
    return token, user


def _scope_headers(token: AccessToken, accepted: str) -> dict[str, str]:
    return {"X-OAuth-Scopes": ", ".join(token.scopes), "X-Accepted-OAuth-Scopes": accepted}


@api.get("/user")
async def get_user(request: Request, state: EmulatorState = Depends(get_state)) -> Response:
    found = await _caller(request, state, "user")
    if isinstance(found, Response):
        return found
    token, user = found
    return JSONResponse(user_json(request, user), headers=_scope_headers(token, ""))


def user_json(request: Request, user: GitHubUser) -> dict[str, Any]:
    api_base = f"{base_url(request)}/github/api"
    return {
        "login": user.login,
        "id": user.id,
        "node_id": f"U_emulated{user.id}",
        "avatar_url": user.avatar_url or f"{base_url(request)}/_emulator/avatars/github/{user.key}.svg",
        "url": f"{api_base}/users/{user.login}",
        "html_url": f"{base_url(request)}/github/{user.login}",
        "type": "User",
        "site_admin": False,
        "name": user.name,
        "company": None,
        "blog": "",
        "location": None,
        "email": user.email,
        "bio": None,
        "created_at": "2011-01-25T18:44:36Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }


@api.get("/user/emails")
async def get_emails(request: Request, state: EmulatorState = Depends(get_state)) -> Response:
    found = await _caller(request, state, "emails")
    if isinstance(found, Response):
        return found
    token, user = found
    headers = _scope_headers(token, "user, user:email")
    if not EMAIL_SCOPES.intersection(token.scopes):  # OAuth app tokens need user:email here
        return JSONResponse(
            {"message": "Not Found", "documentation_url": DOCS}, status_code=404, headers=headers
        )
    return JSONResponse([email.model_dump() for email in user.emails], headers=headers)


@api.delete("/applications/{client_id}/token")
async def delete_token(
    client_id: str, request: Request, state: EmulatorState = Depends(get_state)
) -> Response:
    """Revoke one token; the app authenticates with Basic client_id:client_secret."""
    return await _delete(client_id, request, state, whole_grant=False)


@api.delete("/applications/{client_id}/grant")
async def delete_grant(
    client_id: str, request: Request, state: EmulatorState = Depends(get_state)
) -> Response:
    """Revoke every token the user gave this app."""
    return await _delete(client_id, request, state, whole_grant=True)


async def _delete(client_id: str, request: Request, state: EmulatorState, *, whole_grant: bool) -> Response:
    try:
        client = basic_client(request, state, "github")
    except TokenError:
        return JSONResponse({"message": "Bad credentials", "documentation_url": DOCS}, status_code=401)
    try:
        body = await request.json()
    except ValueError:
        body = None
    value = body.get("access_token") if isinstance(body, dict) else None
    token = state.access_token("github", value) if isinstance(value, str) else None
    if client.client_id != client_id or token is None or token.client_id != client_id:
        return JSONResponse({"message": "Not Found", "documentation_url": DOCS}, status_code=404)
    if whole_grant:
        state.revoke_grant("github", client_id, token.user_key)
    else:
        state.revoke_token("github", token.value)
    return Response(status_code=204)
