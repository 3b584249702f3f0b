"""Public keys (JWKS) and the OpenID discovery document, so anyone can verify our tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from auth_service.dependencies import KeyRingDep, SettingsDep
from auth_service.keys import service

router = APIRouter(tags=["keys"])


@router.get("/auth/.well-known/jwks.json", summary="Public signing keys (JWKS)")
@router.get("/.well-known/jwks.json", include_in_schema=False)
async def jwks(keyring: KeyRingDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return (await keyring.current()).jwks


@router.get("/auth/.well-known/openid-configuration", summary="OpenID discovery document")
@router.get("/.well-known/openid-configuration", include_in_schema=False)
async def openid_configuration(settings: SettingsDep) -> dict[str, Any]:
    return service.discovery_document(settings)
