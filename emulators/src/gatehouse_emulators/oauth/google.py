"""Google-like OpenID Connect provider under `/google` (issuer `{base}/google`).

Paths mirror Google's: accounts.google.com/o/oauth2/v2/auth, oauth2.googleapis.com/token,
openidconnect.googleapis.com/v1/userinfo and www.googleapis.com/oauth2/v3/certs.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from . import authorize
from .common import NO_STORE, base_url, bearer_token, browser_base, fault_response, get_state
from .config import GoogleUser
from .exchange import TokenError, read_token_request, redeem
from .keys import at_hash
from .state import AccessToken, EmulatorState, Grant

router = APIRouter(prefix="/google", tags=["google"])

EMAIL_SCOPES = {"email", "https://www.googleapis.com/auth/userinfo.email"}
PROFILE_SCOPES = {"profile", "https://www.googleapis.com/auth/userinfo.profile"}
SCOPES = {"openid"} | EMAIL_SCOPES | PROFILE_SCOPES
CLAIMS = ["aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name"]
CLAIMS += ["nonce", "picture", "sub", "at_hash", "azp"]


def issuer(request: Request) -> str:
    return f"{base_url(request)}/google"


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> dict[str, Any]:
    iss = issuer(request)
    return {
        "issuer": iss,
        "authorization_endpoint": f"{browser_base(request)}/google/o/oauth2/v2/auth",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/v1/userinfo",
        "revocation_endpoint": f"{iss}/revoke",
        "jwks_uri": f"{iss}/oauth2/v3/certs",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": sorted(CLAIMS),
        "code_challenge_methods_supported": ["S256"],
    }


def _scopes(state: EmulatorState, params: dict[str, str]) -> tuple[str, ...]:
    """Google wants `response_type=code` and known scopes, `openid` among them."""
    if params.get("response_type") != "code":
        raise authorize.Refused("unsupported_response_type", "response_type must be code")
    authorize.require_state(state, params)
    scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
    if not scopes:
        raise authorize.Refused("invalid_request", "Missing required parameter: scope")
    if "openid" not in scopes:
        raise authorize.Refused("invalid_scope", "scope must include openid")
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise authorize.Refused("invalid_scope", f"unknown scope: {' '.join(unknown)}")
    return scopes


@router.get("/o/oauth2/v2/auth")
async def authorization(request: Request, state: EmulatorState = Depends(get_state)) -> Response:
    return authorize.start(request, state, "google", _scopes)


@router.post("/o/oauth2/v2/auth", include_in_schema=False)
async def consent_decision(request: Request, state: EmulatorState = Depends(get_state)) -> Response:
    return await authorize.decide(request, state, "google")


@router.post("/token")
async def token(request: Request, state: EmulatorState = Depends(get_state)) -> Response:
    if (fault := await fault_response(state, "google", "token")) is not None:
        return fault
    try:
        token_request = await read_token_request(request, state, "google")
        grant_type = token_request.fields.get("grant_type")
        if not grant_type:
            raise TokenError("invalid_request", "missing required parameter: grant_type")
        if grant_type != "authorization_code":
            raise TokenError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        grant = redeem(state, "google", token_request, redirect_required=True)
    except TokenError as exc:
        return _token_error(exc)
    user = state.google_user(grant.user_key)
    if user is None:
        return _token_error(TokenError("invalid_grant", "the user no longer exists"))
    access = state.issue_access_token(grant)
    body = {
        "access_token": access.value,
        "token_type": "Bearer",
        "expires_in": state.config.access_token_ttl_seconds,
        "scope": " ".join(grant.request.scopes),
        "id_token": id_token(request, state, grant, user, access),
    }
    return JSONResponse(body, headers=NO_STORE)


def _token_error(exc: TokenError) -> JSONResponse:
    """RFC 6749 5.2: JSON `error` + `error_description`; 401 with a challenge for invalid_client."""
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="google"'
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def id_token(
    request: Request, state: EmulatorState, grant: Grant, user: GoogleUser, access: AccessToken
) -> str:
    """The signed ID token; a pending `id_token` fault makes it wrong in the way it names."""
    now = int(time.time())  # real time: clients check it against their own clock
    claims: dict[str, Any] = {
        "iss": issuer(request),
        "azp": grant.request.client_id,
        "aud": grant.request.client_id,
        "sub": user.sub,
        "at_hash": at_hash(access.value),
        "iat": now,
        "exp": now + state.config.id_token_ttl_seconds,
        **profile_claims(request, user, grant.request.scopes),
    }
    if grant.request.nonce is not None:
        claims["nonce"] = grant.request.nonce
    fault = state.take_fault("google", "id_token")
    key, kid = state.signing_key, None
    if fault is not None:
        if fault.kind == "wrong_nonce":
            claims["nonce"] = "not-your-nonce-" + secrets.token_urlsafe(8)
        elif fault.kind == "wrong_audience":
            claims["aud"] = claims["azp"] = "someone-else.apps.googleusercontent.com"
        elif fault.kind == "wrong_issuer":
            claims["iss"] = "https://accounts.google.com.evil.example"
        elif fault.kind == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif fault.kind == "bad_signature":
            key, kid = state.other_key(), state.signing_key.kid  # claims a published kid
    return key.sign(claims, kid=kid)


def profile_claims(request: Request, user: GoogleUser, scopes: tuple[str, ...]) -> dict[str, Any]:
    """What the `email` and `profile` scopes release, like Google."""
    claims: dict[str, Any] = {}
    if EMAIL_SCOPES.intersection(scopes):
        claims.update(email=user.email, email_verified=user.email_verified)
    if PROFILE_SCOPES.intersection(scopes):
        picture = user.picture or f"{base_url(request)}/_emulator/avatars/google/{user.key}.svg"
        profile = {"name": user.name, "given_name": user.given_name, "family_name": user.family_name}
        claims.update({k: v for k, v in profile.items() if v is not None}, picture=picture)
    return claims


@router.api_route("/v1/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request, state: EmulatorState = Depends(get_state)) -> Response:
    if (fault := await fault_response(state, "google", "userinfo")) is not None:
        return fault
    value = bearer_token(request)
    access = state.access_token("google", value) if value else None
    user = state.google_user(access.user_key) if access else None
    if access is None or user is None:
        return JSONResponse(
            {"error": "invalid_request", "error_description": "Invalid Credentials"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="google", error="invalid_token"'},
        )
    return JSONResponse({"sub": user.sub, **profile_claims(request, user, access.scopes)}, headers=NO_STORE)


@router.get("/oauth2/v3/certs")
async def jwks(state: EmulatorState = Depends(get_state)) -> Response:
    if (fault := await fault_response(state, "google", "jwks")) is not None:
        return fault
    return JSONResponse(
        {"keys": [state.signing_key.public_jwk()]}, headers={"Cache-Control": "public, max-age=300"}
    )


@router.post("/revoke")
async def revoke(request: Request, state: EmulatorState = Depends(get_state)) -> Response:
    """Like Google's: `token=` in the form or query; 200 once revoked, 400 invalid_token otherwise."""
    form = await request.form()
    value = form.get("token") or request.query_params.get("token")
    if isinstance(value, str) and state.revoke_token("google", value):
        return JSONResponse({})
    return JSONResponse(
        {"error": "invalid_token", "error_description": "Token expired or revoked"}, status_code=400
    )
