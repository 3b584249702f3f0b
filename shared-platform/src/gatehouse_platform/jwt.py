"""Access-token verification core, shared by auth-service (its own keys, no HTTP) and remote verifiers.

Only RS256 is accepted and the algorithm is fixed here, never taken from the token, so `alg: none`
and HS256-signed-with-the-public-key forgeries fail before any key is touched.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from pydantic import ValidationError

from gatehouse_contracts.tokens import ACCESS_TOKEN_TYP, ALGORITHM, AccessTokenClaims
from gatehouse_platform.errors import Unauthorized

log = logging.getLogger(__name__)

REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "nbf", "exp", "jti", "sid")
MIN_RSA_KEY_BITS = 2048


class InvalidToken(Unauthorized):
    """The bearer token was rejected. `detail` says why for the client; `reason` is a short,
    fixed label for metrics. Neither ever contains the token."""

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason


class UnknownKeyId(InvalidToken):
    """The token names a `kid` we do not hold: a remote verifier may refetch the JWKS and retry once."""

    def __init__(self) -> None:
        super().__init__("token signed with an unknown key", reason="unknown_kid")


def _is_access_token_typ(typ: object) -> bool:
    # RFC 7515 §4.1.9: `typ` is a media type, compared case-insensitively, "application/" optional.
    return isinstance(typ, str) and typ.lower().removeprefix("application/") == ACCESS_TOKEN_TYP


def decode_access_token(
    token: str,
    keys: Mapping[str, RSAPublicKey],
    *,
    issuer: str,
    audience: str,
    leeway_seconds: int = 5,
) -> AccessTokenClaims:
    """Verify `token` against `keys` (kid → public key) and return its claims.

    Raises `UnknownKeyId` when the header's `kid` is not in `keys` (the caller decides whether to
    refetch), and `InvalidToken` for every other rejection.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("token malformed", reason="malformed") from None
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("token algorithm not allowed", reason="algorithm")
    if not _is_access_token_typ(header.get("typ")):
        raise InvalidToken("not an access token", reason="typ")
    kid = header.get("kid")
    if kid is None:
        raise InvalidToken("token has no key id", reason="malformed")
    key = keys.get(kid)
    if key is None:
        raise UnknownKeyId()

    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            leeway=leeway_seconds,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.InvalidSignatureError:
        raise InvalidToken("signature invalid", reason="signature") from None
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token expired", reason="expired") from None
    except jwt.ImmatureSignatureError:
        raise InvalidToken("token not yet valid", reason="not_yet_valid") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken("token issuer not accepted", reason="issuer") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("token audience not accepted", reason="audience") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"token lacks the {exc.claim!r} claim", reason="claims") from None
    except jwt.PyJWTError:
        raise InvalidToken("token malformed", reason="malformed") from None

    try:
        return AccessTokenClaims.model_validate(payload)
    except ValidationError as exc:
        fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
        raise InvalidToken(f"token claims invalid: {', '.join(fields)}", reason="claims") from None


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _uint_from_b64url(value: object) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a base64url string")
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def public_jwk(key: RSAPublicKey, kid: str) -> dict[str, str]:
    """The RFC 7517 JWK that auth-service publishes for `key` (public parameters only)."""
    numbers = key.public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": ALGORITHM,
        "kid": kid,
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }


def jwks_to_keys(jwks: Mapping[str, Any]) -> dict[str, RSAPublicKey]:
    """The usable signing keys of a JWKS, by kid.

    Keys that could not verify our tokens (other kty/use/alg, no kid, malformed, shorter than
    2048 bits) are skipped rather than failing the set, so an issuer may publish other keys beside
    ours. Raises ValueError only when the document is not a JWKS at all.
    """
    entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError("JWKS has no 'keys' list")
    keys: dict[str, RSAPublicKey] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        kid = entry.get("kid")
        if (
            not isinstance(kid, str)
            or entry.get("kty") != "RSA"
            or entry.get("use", "sig") != "sig"
            or entry.get("alg", ALGORITHM) != ALGORITHM
        ):
            continue
        try:
            numbers = RSAPublicNumbers(_uint_from_b64url(entry.get("e")), _uint_from_b64url(entry.get("n")))
            key = numbers.public_key()
        except ValueError:
            log.warning("skipping malformed JWK", extra={"kid": kid})
            continue
        if key.key_size < MIN_RSA_KEY_BITS:
            log.warning("skipping short RSA JWK", extra={"kid": kid, "bits": key.key_size})
            continue
        keys[kid] = key
    return keys
