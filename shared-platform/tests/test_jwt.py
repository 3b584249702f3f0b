"""decode_access_token, public_jwk and jwks_to_keys: every way a token is accepted or rejected."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from gatehouse_platform.jwt import (
    InvalidToken,
    UnknownKeyId,
    decode_access_token,
    jwks_to_keys,
    public_jwk,
)

ISSUER = "https://auth.gatehouse.test"
AUDIENCE = "gatehouse"
KID = "key-1"


@pytest.fixture(scope="module")
def private_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def keys(private_key: RSAPrivateKey) -> dict[str, RSAPublicKey]:
    return {KID: private_key.public_key()}


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid access-token claims; an override of None removes the claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
        "sid": str(uuid.uuid4()),
        "email": "ada@example.com",
        "email_verified": True,
        "roles": ["user"],
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def mint(key: RSAPrivateKey, payload: dict[str, Any], *, kid: str = KID, typ: str = "at+jwt") -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid, "typ": typ})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(token: str, keys: dict[str, RSAPublicKey]) -> Any:
    return decode_access_token(token, keys, issuer=ISSUER, audience=AUDIENCE)


def rejection(token: str, keys: dict[str, RSAPublicKey]) -> InvalidToken:
    with pytest.raises(InvalidToken) as caught:
        decode(token, keys)
    assert not token or token not in str(caught.value.detail)  # never echo the token
    return caught.value


def test_valid_token_is_accepted_and_parsed(
    private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]
) -> None:
    payload = claims(roles=["user", "admin"])

    parsed = decode(mint(private_key, payload), keys)

    assert parsed.sub == uuid.UUID(payload["sub"])
    assert parsed.sid == uuid.UUID(payload["sid"])
    assert parsed.jti == payload["jti"]
    assert parsed.is_admin
    assert parsed.email == "ada@example.com"


def test_audience_list_containing_ours_is_accepted(
    private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]
) -> None:
    assert decode(mint(private_key, claims(aud=["other", AUDIENCE])), keys).aud == ["other", AUDIENCE]


def test_typ_as_full_media_type_is_accepted(
    private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]
) -> None:
    decode(mint(private_key, claims(), typ="application/AT+JWT"), keys)


def test_alg_none_is_rejected(keys: dict[str, RSAPublicKey]) -> None:
    token = jwt.encode(claims(), "", algorithm="none", headers={"kid": KID, "typ": "at+jwt"})

    assert rejection(token, keys).reason == "algorithm"


def test_hs256_signed_with_the_public_key_is_rejected(
    private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]
) -> None:
    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": KID}).encode())
    body = b64url(json.dumps(claims()).encode())
    signature = b64url(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())

    assert rejection(f"{header}.{body}.{signature}", keys).reason == "algorithm"


def test_other_asymmetric_alg_is_rejected(keys: dict[str, RSAPublicKey]) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": KID, "typ": "at+jwt"})

    assert rejection(token, keys).reason == "algorithm"


def test_expired_token_is_rejected(private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]) -> None:
    now = int(time.time())
    error = rejection(mint(private_key, claims(iat=now - 1000, nbf=now - 1000, exp=now - 60)), keys)

    assert (error.reason, error.detail) == ("expired", "token expired")


def test_expiry_within_leeway_is_tolerated(private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]) -> None:
    now = int(time.time())
    decode(mint(private_key, claims(iat=now - 900, nbf=now - 900, exp=now - 2)), keys)


def test_token_before_nbf_is_rejected(private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]) -> None:
    error = rejection(mint(private_key, claims(nbf=int(time.time()) + 60)), keys)

    assert (error.reason, error.detail) == ("not_yet_valid", "token not yet valid")


def test_token_issued_in_the_future_is_rejected(
    private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]
) -> None:
    assert rejection(mint(private_key, claims(iat=int(time.time()) + 60)), keys).reason == "not_yet_valid"


def test_wrong_issuer_is_rejected(private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]) -> None:
    assert rejection(mint(private_key, claims(iss="https://evil.test")), keys).reason == "issuer"


def test_wrong_audience_is_rejected(private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]) -> None:
    assert rejection(mint(private_key, claims(aud="billing-admin")), keys).reason == "audience"


def test_unknown_kid_raises_the_distinct_error(
    private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]
) -> None:
    with pytest.raises(UnknownKeyId) as caught:
        decode(mint(private_key, claims(), kid="key-2"), keys)

    assert caught.value.status == 401


def test_token_signed_by_another_key_under_our_kid_is_rejected(keys: dict[str, RSAPublicKey]) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    assert rejection(mint(impostor, claims()), keys).reason == "signature"


def test_tampered_payload_is_rejected(private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]) -> None:
    header, _, signature = mint(private_key, claims()).split(".")
    forged_body = b64url(json.dumps(claims(roles=["admin"])).encode())

    error = rejection(f"{header}.{forged_body}.{signature}", keys)

    assert (error.reason, error.detail) == ("signature", "signature invalid")


def test_wrong_typ_is_rejected(private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]) -> None:
    assert rejection(mint(private_key, claims(), typ="JWT"), keys).reason == "typ"


def test_missing_typ_is_rejected(private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]) -> None:
    token = jwt.encode(claims(), private_key, algorithm="RS256", headers={"kid": KID, "typ": None})

    assert rejection(token, keys).reason == "typ"


def test_missing_sid_is_rejected(private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]) -> None:
    error = rejection(mint(private_key, claims(sid=None)), keys)

    assert (error.reason, error.detail) == ("claims", "token lacks the 'sid' claim")


def test_non_uuid_subject_is_rejected(private_key: RSAPrivateKey, keys: dict[str, RSAPublicKey]) -> None:
    error = rejection(mint(private_key, claims(sub="root")), keys)

    assert (error.reason, error.detail) == ("claims", "token claims invalid: sub")


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "e30.e30.", "ey.ey.ey.ey"])
def test_garbage_is_rejected_as_malformed(token: str, keys: dict[str, RSAPublicKey]) -> None:
    assert rejection(token, keys).reason in {"malformed", "algorithm"}


def test_public_jwk_round_trips_through_jwks_to_keys(private_key: RSAPrivateKey) -> None:
    jwk = public_jwk(private_key.public_key(), KID)

    assert jwk.keys() == {"kty", "use", "alg", "kid", "n", "e"}
    assert (jwk["kty"], jwk["use"], jwk["alg"], jwk["e"]) == ("RSA", "sig", "RS256", "AQAB")
    parsed = jwks_to_keys({"keys": [jwk]})
    assert parsed[KID].public_numbers() == private_key.public_key().public_numbers()


def test_jwks_to_keys_skips_keys_that_cannot_verify_our_tokens(private_key: RSAPrivateKey) -> None:
    public = private_key.public_key()
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    unlabelled = {k: v for k, v in public_jwk(public, "no-use-no-alg").items() if k not in ("use", "alg")}
    jwks = {
        "keys": [
            public_jwk(public, "good"),
            unlabelled,
            {**public_jwk(public, "enc"), "use": "enc"},
            {**public_jwk(public, "rs512"), "alg": "RS512"},
            {**public_jwk(public, "broken"), "n": "!!"},
            {k: v for k, v in public_jwk(public, "x").items() if k != "kid"},
            public_jwk(short, "short"),
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            "not-an-object",
        ]
    }

    assert set(jwks_to_keys(jwks)) == {"good", "no-use-no-alg"}


@pytest.mark.parametrize("document", [{}, {"keys": "nope"}, []])
def test_jwks_to_keys_refuses_a_document_that_is_not_a_jwks(document: Any) -> None:
    with pytest.raises(ValueError, match="JWKS"):
        jwks_to_keys(document)
