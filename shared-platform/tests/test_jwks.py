"""JWKSVerifier against a real JWKS served over HTTP, the bearer dependencies, and joserfc interop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from fastapi import Depends, FastAPI, Request
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet, RSAKey
from prometheus_client import REGISTRY

from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.errors import install_exception_handlers
from gatehouse_platform.jwks import (
    JWKSVerifier,
    KeysUnavailable,
    TokenVerifier,
    current_claims,
    require_role,
)
from gatehouse_platform.jwt import InvalidToken, UnknownKeyId, decode_access_token, public_jwk

ISSUER = "https://auth.gatehouse.test"
AUDIENCE = "gatehouse"
MIN_REFETCH = 30.0


@pytest.fixture(scope="module")
def old_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def new_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def unpublished_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def mint(key: RSAPrivateKey, kid: str, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
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
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})


def jwks_of(**keys: RSAPrivateKey) -> dict[str, Any]:
    return {"keys": [public_jwk(key.public_key(), kid) for kid, key in keys.items()]}


@dataclass
class JWKSServer:
    """A real HTTP server on a free port, in a thread, serving whatever `jwks` holds."""

    jwks: dict[str, Any]
    status: int = 200
    fetches: int = 0
    requested: threading.Event = field(default_factory=threading.Event)
    answer: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer = field(init=False)

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                owner.fetches += 1
                owner.requested.set()
                owner.answer.wait(timeout=5)
                body = json.dumps(owner.jwks).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.answer.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/.well-known/jwks.json"

    def stop(self) -> None:
        """Idempotent, so a test may take the endpoint down before the fixture's teardown."""
        if self._server.fileno() != -1:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def server(old_key: RSAPrivateKey) -> Iterator[JWKSServer]:
    served = JWKSServer(jwks_of(old=old_key))
    served.start()
    yield served
    served.stop()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_verifier(server: JWKSServer, clock: FakeClock) -> AsyncIterator[Callable[..., JWKSVerifier]]:
    made: list[JWKSVerifier] = []

    def make(**options: Any) -> JWKSVerifier:
        verifier = JWKSVerifier(
            server.url,
            issuer=ISSUER,
            audience=AUDIENCE,
            min_refetch_interval=MIN_REFETCH,
            clock=clock,
            **options,
        )
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()


def fetch_metric(outcome: str) -> float:
    return REGISTRY.get_sample_value("gatehouse_jwks_fetches_total", {"outcome": outcome}) or 0.0


async def test_valid_token_is_accepted_with_one_fetch(
    make_verifier: Callable[..., JWKSVerifier], server: JWKSServer, old_key: RSAPrivateKey
) -> None:
    verifier = make_verifier()
    sub = uuid.uuid4()

    claims = await verifier.verify(mint(old_key, "old", sub=str(sub)))
    await verifier.verify(mint(old_key, "old"))

    assert claims.sub == sub
    assert server.fetches == 1


async def test_concurrent_first_use_shares_one_fetch(
    make_verifier: Callable[..., JWKSVerifier], server: JWKSServer, old_key: RSAPrivateKey
) -> None:
    verifier = make_verifier()

    await asyncio.gather(*(verifier.verify(mint(old_key, "old")) for _ in range(20)))

    assert server.fetches == 1


async def test_keys_are_refetched_once_the_ttl_has_passed(
    make_verifier: Callable[..., JWKSVerifier], server: JWKSServer, clock: FakeClock, old_key: RSAPrivateKey
) -> None:
    verifier = make_verifier(cache_ttl=600)
    await verifier.verify(mint(old_key, "old"))

    clock.advance(599)
    await verifier.verify(mint(old_key, "old"))
    assert server.fetches == 1
    clock.advance(1)
    await verifier.verify(mint(old_key, "old"))
    assert server.fetches == 2


async def test_token_from_a_rotated_in_key_triggers_exactly_one_refetch(
    make_verifier: Callable[..., JWKSVerifier],
    server: JWKSServer,
    clock: FakeClock,
    old_key: RSAPrivateKey,
    new_key: RSAPrivateKey,
) -> None:
    verifier = make_verifier()
    await verifier.verify(mint(old_key, "old"))
    server.jwks = jwks_of(old=old_key, new=new_key)
    clock.advance(MIN_REFETCH)

    await verifier.verify(mint(new_key, "new"))
    await verifier.verify(mint(new_key, "new"))
    await verifier.verify(mint(old_key, "old"))

    assert server.fetches == 2


async def test_unknown_kid_is_rejected_after_a_rate_limited_refetch(
    make_verifier: Callable[..., JWKSVerifier],
    server: JWKSServer,
    clock: FakeClock,
    old_key: RSAPrivateKey,
    unpublished_key: RSAPrivateKey,
) -> None:
    verifier = make_verifier()
    await verifier.verify(mint(old_key, "old"))
    clock.advance(MIN_REFETCH)

    with pytest.raises(UnknownKeyId):
        await verifier.verify(mint(unpublished_key, "ghost"))
    assert server.fetches == 2
    clock.advance(MIN_REFETCH - 1)
    with pytest.raises(UnknownKeyId):
        await verifier.verify(mint(unpublished_key, "ghost"))
    assert server.fetches == 2


async def test_burst_of_random_kids_causes_at_most_one_refetch_per_interval(
    make_verifier: Callable[..., JWKSVerifier],
    server: JWKSServer,
    clock: FakeClock,
    old_key: RSAPrivateKey,
    unpublished_key: RSAPrivateKey,
) -> None:
    verifier = make_verifier()
    await verifier.verify(mint(old_key, "old"))
    clock.advance(MIN_REFETCH)
    tokens = [mint(unpublished_key, uuid.uuid4().hex) for _ in range(50)]

    first = await asyncio.gather(*(verifier.verify(t) for t in tokens[:25]), return_exceptions=True)
    clock.advance(MIN_REFETCH / 2)
    second = await asyncio.gather(*(verifier.verify(t) for t in tokens[25:]), return_exceptions=True)

    assert all(isinstance(outcome, UnknownKeyId) for outcome in first + second)
    assert server.fetches == 2


async def test_cached_keys_keep_working_while_the_jwks_endpoint_is_down(
    make_verifier: Callable[..., JWKSVerifier], server: JWKSServer, clock: FakeClock, old_key: RSAPrivateKey
) -> None:
    verifier = make_verifier(cache_ttl=600)
    await verifier.verify(mint(old_key, "old"))
    server.stop()
    errors_before = fetch_metric("error")

    clock.advance(601)
    await verifier.verify(mint(old_key, "old"))
    clock.advance(MIN_REFETCH)
    await verifier.verify(mint(old_key, "old"))

    assert fetch_metric("error") == errors_before + 2


async def test_requests_do_not_queue_behind_a_slow_ttl_refetch(
    make_verifier: Callable[..., JWKSVerifier], server: JWKSServer, clock: FakeClock, old_key: RSAPrivateKey
) -> None:
    verifier = make_verifier(cache_ttl=600)
    await verifier.verify(mint(old_key, "old"))
    clock.advance(601)
    server.answer.clear()  # the issuer hangs
    server.requested.clear()

    refetching = asyncio.create_task(verifier.verify(mint(old_key, "old")))
    assert await asyncio.to_thread(server.requested.wait, 5)
    await asyncio.wait_for(verifier.verify(mint(old_key, "old")), timeout=1)

    server.answer.set()
    await refetching


async def test_no_keys_ever_obtained_fails_closed_then_recovers(
    make_verifier: Callable[..., JWKSVerifier], server: JWKSServer, clock: FakeClock, old_key: RSAPrivateKey
) -> None:
    verifier = make_verifier(empty_cache_retry_interval=2.0)
    server.status = 503

    for _ in range(3):
        with pytest.raises(KeysUnavailable) as caught:
            await verifier.verify(mint(old_key, "old"))
    assert (caught.value.status, caught.value.headers["Retry-After"]) == (503, "2")
    assert server.fetches == 1

    server.status = 200
    clock.advance(2.0)
    await verifier.verify(mint(old_key, "old"))
    assert server.fetches == 2


async def test_jwks_without_usable_keys_does_not_replace_the_cache(
    make_verifier: Callable[..., JWKSVerifier], server: JWKSServer, clock: FakeClock, old_key: RSAPrivateKey
) -> None:
    verifier = make_verifier(cache_ttl=600)
    await verifier.verify(mint(old_key, "old"))
    server.jwks = {"keys": []}

    clock.advance(601)
    await verifier.verify(mint(old_key, "old"))

    assert server.fetches == 2


async def test_claims_checks_still_apply(
    make_verifier: Callable[..., JWKSVerifier], old_key: RSAPrivateKey
) -> None:
    verifier = make_verifier()

    with pytest.raises(InvalidToken, match="issuer"):
        await verifier.verify(mint(old_key, "old", iss="https://evil.test"))


class SessionDenylist:
    def __init__(self, *revoked: uuid.UUID) -> None:
        self.revoked = set(revoked)

    async def is_revoked(self, claims: AccessTokenClaims) -> bool:
        return claims.sid in self.revoked


async def test_denylist_rejects_revoked_tokens(
    make_verifier: Callable[..., JWKSVerifier], old_key: RSAPrivateKey
) -> None:
    revoked_sid = uuid.uuid4()
    verifier = make_verifier(denylist=SessionDenylist(revoked_sid))

    await verifier.verify(mint(old_key, "old"))
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(mint(old_key, "old", sid=str(revoked_sid)))

    assert (caught.value.reason, caught.value.detail) == ("revoked", "token revoked")


async def test_joserfc_verifies_our_token_against_the_published_jwks(
    server: JWKSServer, old_key: RSAPrivateKey
) -> None:
    async with httpx.AsyncClient() as client:
        key_set = KeySet.import_key_set((await client.get(server.url)).json())
    token = mint(old_key, "old", roles=["admin"])

    decoded = jose_jwt.decode(token, key_set, algorithms=["RS256"])
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": AUDIENCE}
    ).validate(decoded.claims)

    assert decoded.header["kid"] == "old"
    assert decoded.claims["roles"] == ["admin"]


async def test_token_signed_with_joserfc_is_accepted_by_our_verifier(
    make_verifier: Callable[..., JWKSVerifier], old_key: RSAPrivateKey
) -> None:
    pem = old_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + 60,
        "jti": "j-1", "sid": str(uuid.uuid4()), "email": "ada@example.com", "email_verified": False,
    }  # fmt: skip
    token = jose_jwt.encode(
        {"alg": "RS256", "kid": "old", "typ": "at+jwt"}, claims, RSAKey.import_key(pem), algorithms=["RS256"]
    )

    assert (await make_verifier().verify(token)).jti == "j-1"


class LocalVerifier:
    """What auth-service does: verify with keys it holds, no HTTP."""

    def __init__(self, keys: dict[str, RSAPublicKey]) -> None:
        self.keys = keys

    async def verify(self, token: str) -> AccessTokenClaims:
        return decode_access_token(token, self.keys, issuer=ISSUER, audience=AUDIENCE)


def get_verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier


claims_dependency = current_claims(get_verifier)
CurrentClaims = Annotated[AccessTokenClaims, Depends(claims_dependency)]
AdminClaims = Annotated[AccessTokenClaims, Depends(require_role("admin", claims_dependency))]
ReaderClaims = Annotated[AccessTokenClaims, Depends(current_claims(get_verifier, scope="billing:read"))]


@pytest.fixture
async def api(old_key: RSAPrivateKey) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.verifier = LocalVerifier({"old": old_key.public_key()})
    install_exception_handlers(app)

    @app.get("/me")
    async def me(claims: CurrentClaims) -> dict[str, str]:
        return {"sub": str(claims.sub)}

    @app.get("/admin")
    async def admin(claims: AdminClaims) -> dict[str, str]:
        return {"sub": str(claims.sub)}

    @app.get("/read")
    async def read(claims: ReaderClaims) -> dict[str, str]:
        return {"sub": str(claims.sub)}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


def failure_metric(reason: str) -> float:
    return REGISTRY.get_sample_value("gatehouse_token_verification_failures_total", {"reason": reason}) or 0.0


@pytest.mark.parametrize("authorization", [None, "Basic YWRhOnB3", "Bearer", "Bearer "])
async def test_missing_bearer_token_is_a_401_without_error_code(
    api: httpx.AsyncClient, authorization: str | None
) -> None:
    before = failure_metric("missing")
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = await api.get("/me", headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert failure_metric("missing") == before + 1


async def test_invalid_bearer_token_is_a_401_that_does_not_echo_it(
    api: httpx.AsyncClient, old_key: RSAPrivateKey
) -> None:
    token = mint(old_key, "old", exp=int(time.time()) - 60)
    before = failure_metric("expired")

    response = await api.get("/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["detail"] == "token expired"
    assert token not in response.text
    assert failure_metric("expired") == before + 1


async def test_valid_bearer_token_yields_the_claims(api: httpx.AsyncClient, old_key: RSAPrivateKey) -> None:
    sub = uuid.uuid4()

    response = await api.get("/me", headers={"Authorization": f"bearer {mint(old_key, 'old', sub=str(sub))}"})

    assert (response.status_code, response.json()) == (200, {"sub": str(sub)})


async def test_require_role_forbids_callers_without_the_role(
    api: httpx.AsyncClient, old_key: RSAPrivateKey
) -> None:
    user = await api.get("/admin", headers={"Authorization": f"Bearer {mint(old_key, 'old')}"})
    admin = await api.get(
        "/admin", headers={"Authorization": f"Bearer {mint(old_key, 'old', roles=['admin'])}"}
    )

    assert user.status_code == 403
    assert user.json()["detail"] == "requires the 'admin' role"
    assert admin.status_code == 200


async def test_an_api_keys_token_passes_only_where_a_scope_it_holds_is_named(
    api: httpx.AsyncClient, old_key: RSAPrivateKey
) -> None:
    def with_scope(scope: str | None, **claims: object) -> dict[str, str]:
        extra = {} if scope is None else {"scope": scope}
        return {"Authorization": f"Bearer {mint(old_key, 'old', **extra, **claims)}"}

    person = await api.get("/read", headers=with_scope(None))
    reader = await api.get("/read", headers=with_scope("profile:read billing:read"))
    writer = await api.get("/read", headers=with_scope("billing:write"))
    unscoped_route = await api.get("/me", headers=with_scope("profile:read billing:read"))
    admin_key = await api.get("/admin", headers=with_scope("billing:read", roles=["admin"]))

    assert person.status_code == reader.status_code == 200
    for refused, needed in ((writer, "billing:read"), (unscoped_route, None), (admin_key, None)):
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/insufficient-scope")
        assert refused.json().get("required_scope") == needed
        assert refused.headers["WWW-Authenticate"].startswith('Bearer error="insufficient_scope"')
