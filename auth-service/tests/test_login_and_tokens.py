import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from auth_service.settings import Settings
from conftest import PASSWORD, bearer, register, signed_up
from gatehouse_platform.jwt import jwks_to_keys


async def jwks(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/auth/.well-known/jwks.json")
    assert response.status_code == 200
    return dict(response.json())


async def test_login_returns_tokens_and_sets_an_httponly_refresh_cookie(client: httpx.AsyncClient) -> None:
    user = await register(client)
    response = await client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["user"]["id"] == user["id"]
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/auth" in cookie
    assert response.headers["cache-control"] == "no-store"


async def test_login_by_username_is_case_insensitive(client: httpx.AsyncClient) -> None:
    user = await register(client)
    response = await client.post(
        "/auth/login", json={"username": user["username"].upper(), "password": PASSWORD}
    )
    assert response.status_code == 200


async def test_wrong_password_and_unknown_user_get_the_same_answer(client: httpx.AsyncClient) -> None:
    user = await register(client)
    wrong = await client.post("/auth/login", json={"email": user["email"], "password": "not the password"})
    unknown = await client.post(
        "/auth/login", json={"email": "nobody@example.com", "password": "not the password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert {k: v for k, v in wrong.json().items() if k != "request_id"} == {
        k: v for k, v in unknown.json().items() if k != "request_id"
    }


async def test_access_token_verifies_with_pyjwt_and_joserfc_through_the_jwks(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    user, tokens = await signed_up(client)
    keyset = await jwks(client)
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "RS256" and header["typ"] == "at+jwt"
    key = jwks_to_keys(keyset)[header["kid"]]
    claims = jwt.decode(
        tokens["access_token"], key, algorithms=["RS256"], audience=settings.audience, issuer=settings.issuer
    )
    assert claims["sub"] == user["id"]
    assert claims["email"] == user["email"]
    assert claims["email_verified"] is False
    assert claims["roles"] == []
    assert uuid.UUID(claims["sid"])
    assert claims["exp"] - claims["iat"] == 900
    # An independent JOSE implementation agrees.
    token = jose_jwt.decode(tokens["access_token"], KeySet.import_key_set(keyset), algorithms=["RS256"])
    assert token.claims["sub"] == user["id"]


async def test_discovery_document_points_at_the_jwks(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get("/auth/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == settings.issuer
    assert doc["jwks_uri"].endswith("/.well-known/jwks.json")
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "attack",
    [
        "alg_none",
        "hs256_with_public_key",
        "expired",
        "not_yet_valid",
        "wrong_iss",
        "wrong_aud",
        "unknown_kid",
        "tampered",
        "wrong_typ",
        "stranger_key",
    ],
)
async def test_forged_or_invalid_access_tokens_are_rejected(
    client: httpx.AsyncClient, app: FastAPI, attack: str
) -> None:
    """Each token is signed with our real key unless the attack is about the key itself, so the
    check that fails is the one under test."""
    _, tokens = await signed_up(client)
    keys = await app.state.services.keyring.current()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    now = int(time.time())
    real = {"kid": keys.signing_kid, "typ": "at+jwt"}

    def sign(payload: dict[str, Any], key: Any = keys.signing_key, alg: str = "RS256", **header: Any) -> str:
        return jwt.encode(payload, key, algorithm=alg, headers={**real, **header})

    if attack == "alg_none":
        token = f"{_b64(json.dumps({'alg': 'none', **real}).encode())}.{_b64(json.dumps(claims).encode())}."
    elif attack == "hs256_with_public_key":
        public_pem = keys.public_keys[keys.signing_kid].public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signing_input = (
            f"{_b64(json.dumps({'alg': 'HS256', **real}).encode())}.{_b64(json.dumps(claims).encode())}"
        )
        token = (
            f"{signing_input}.{_b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"
        )
    elif attack == "expired":
        token = sign({**claims, "iat": now - 3600, "nbf": now - 3600, "exp": now - 600})
    elif attack == "not_yet_valid":
        token = sign({**claims, "nbf": now + 600, "exp": now + 1200})
    elif attack == "wrong_iss":
        token = sign({**claims, "iss": "https://evil.example"})
    elif attack == "wrong_aud":
        token = sign({**claims, "aud": "someone-else"})
    elif attack == "unknown_kid":
        token = sign(claims, kid="not-a-kid")
    elif attack == "tampered":
        head, _, signature = tokens["access_token"].split(".")
        token = f"{head}.{_b64(json.dumps({**claims, 'roles': ['admin']}).encode())}.{signature}"
    elif attack == "wrong_typ":
        token = sign(claims, typ="JWT")
    else:
        token = sign(claims, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    response = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, (attack, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert token not in response.text
    # The genuine token still works.
    assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 200
