"""Public keys (JWKS) and the OpenID discovery document, so anyone can verify our tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from auth_service.dependencies import ServicesDep

router = APIRouter(tags=["keys"])


@router.get("/auth/.well-known/jwks.json", summary="Public signing keys (JWKS)")
@router.get("/.well-known/jwks.json", include_in_schema=False)
async def jwks(services: ServicesDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return (await services.keyring.current()).jwks


@router.get("/auth/.well-known/openid-configuration", summary="OpenID discovery document")
@router.get("/.well-known/openid-configuration", include_in_schema=False)
async def openid_configuration(services: ServicesDep) -> dict[str, Any]:
    settings = services.settings
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
