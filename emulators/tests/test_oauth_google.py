"""The Google side of the OAuth emulator, over real HTTP: httpx and Authlib as clients, ID tokens
verified with PyJWT against the served JWKS."""

import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from oauth_support import REDIRECT_URI, pkce_pair, redirect_params

from gatehouse_emulators.oauth import OAuthClient, OAuthEmulatorConfig, create_app
from gatehouse_platform.testing import free_port, serve_in_thread, wait_ready

pytest_plugins = ["oauth_fixtures"]

CLIENT_ID = "gatehouse-google-client"
CLIENT_SECRET = "gatehouse-google-secret"


def authorize(http: httpx.Client, **overrides: str | None) -> httpx.Response:
    params: dict[str, str | None] = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid email profile",
        "state": "state-123",
        "nonce": "nonce-456",
        "emulator_user": "alice",
        **overrides,
    }
    return http.get("/google/o/oauth2/v2/auth", params={k: v for k, v in params.items() if v is not None})


def get_code(http: httpx.Client, challenge: str | None = None, **overrides: str | None) -> str:
    extra = {"code_challenge": challenge, "code_challenge_method": "S256"} if challenge else {}
    params = redirect_params(authorize(http, **extra, **overrides))
    assert params["state"] == overrides.get("state", "state-123")
    return params["code"]


def exchange(http: httpx.Client, code: str, verifier: str | None = None, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **({"code_verifier": verifier} if verifier else {}),
        **overrides,
    }
    return http.post("/google/token", data=form)


def verify_id_token(base: str, id_token: str, **options: Any) -> dict[str, Any]:
    signing_key = jwt.PyJWKClient(f"{base}/google/oauth2/v3/certs").get_signing_key_from_jwt(id_token)
    claims: dict[str, Any] = jwt.decode(
        id_token,
        signing_key.key,
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=f"{base}/google",
        options={"require": ["iss", "aud", "sub", "iat", "exp"]},
        **options,
    )
    return claims


def test_discovery_advertises_the_served_base_url(http: httpx.Client, base: str) -> None:
    response = http.get("/google/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == f"{base}/google"
    assert doc["authorization_endpoint"] == f"{base}/google/o/oauth2/v2/auth"
    assert doc["token_endpoint"] == f"{base}/google/token"
    assert doc["userinfo_endpoint"] == f"{base}/google/v1/userinfo"
    assert doc["jwks_uri"] == f"{base}/google/oauth2/v3/certs"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "email", "profile"} <= set(doc["scopes_supported"])
    assert {"client_secret_post", "client_secret_basic"} <= set(doc["token_endpoint_auth_methods_supported"])
    assert {"sub", "email", "email_verified", "nonce", "name", "picture"} <= set(doc["claims_supported"])

    keys = http.get("/google/oauth2/v3/certs").json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["kid"]
    assert "d" not in keys[0]  # public part only


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_signs_in_with_pkce_and_nonce(http: httpx.Client, base: str, auth_method: str) -> None:
    doc = http.get("/google/.well-known/openid-configuration").json()
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    with OAuth2Client(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope="openid email profile",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method,
    ) as client:
        url, state = client.create_authorization_url(
            doc["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        assert "code_challenge=" in url
        callback = http.get(url + "&emulator_user=alice")  # params= would replace the URL's query
        assert callback.status_code == 302
        token = client.fetch_token(
            doc["token_endpoint"],
            authorization_response=callback.headers["location"],
            code_verifier=verifier,
            state=state,
        )
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] > 0
        assert set(token["scope"].split()) == {"openid", "email", "profile"}

        claims = verify_id_token(base, token["id_token"])
        assert claims["nonce"] == nonce
        assert claims["email"] == "alice@example.com"
        assert claims["email_verified"] is True
        assert claims["name"] == "Alice Example"
        assert claims["given_name"] == "Alice"
        assert claims["picture"].startswith("http")
        assert claims["azp"] == CLIENT_ID
        assert claims["exp"] > time.time() > claims["iat"] - 5
        digest = hashlib.sha256(token["access_token"].encode()).digest()
        assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
        header = jwt.get_unverified_header(token["id_token"])
        assert header["alg"] == "RS256" and header["kid"]

        userinfo = client.get(doc["userinfo_endpoint"])
        assert userinfo.status_code == 200
        assert userinfo.json() == {
            "sub": claims["sub"],
            "email": "alice@example.com",
            "email_verified": True,
            "name": "Alice Example",
            "given_name": "Alice",
            "family_name": "Example",
            "picture": claims["picture"],
        }
        assert http.get(claims["picture"]).headers["content-type"].startswith("image/svg+xml")


def test_sub_is_stable_per_user_and_bob_is_unverified(http: httpx.Client, base: str) -> None:
    def claims_for(user: str) -> dict[str, Any]:
        response = exchange(http, get_code(http, emulator_user=user))
        assert response.status_code == 200, response.text
        return verify_id_token(base, response.json()["id_token"])

    alice_1, alice_2, bob = claims_for("alice"), claims_for("alice@example.com"), claims_for("bob")
    assert alice_1["sub"] == alice_2["sub"]
    assert re.fullmatch(r"\d{21}", alice_1["sub"])
    assert bob["sub"] != alice_1["sub"]
    assert bob["email"] == "bob@example.com"
    assert bob["email_verified"] is False


def test_scopes_decide_which_claims_are_released(http: httpx.Client, base: str) -> None:
    response = exchange(http, get_code(http, scope="openid"))
    assert response.status_code == 200
    claims = verify_id_token(base, response.json()["id_token"])
    assert "email" not in claims and "name" not in claims
    userinfo = http.get(
        "/google/v1/userinfo", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert userinfo.json() == {"sub": claims["sub"]}


@pytest.mark.parametrize(
    ("verifier", "description"),
    [("wrong-" + "x" * 50, "does not match"), (None, "missing code_verifier")],
)
def test_pkce_verifier_must_match_the_challenge(
    http: httpx.Client, verifier: str | None, description: str
) -> None:
    _, challenge = pkce_pair()
    response = exchange(http, get_code(http, challenge), verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert description in response.json()["error_description"]
    assert response.headers["cache-control"] == "no-store"


def test_a_code_works_once_and_its_replay_revokes_the_token(http: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    code = get_code(http, challenge)
    first = exchange(http, code, verifier)
    assert first.status_code == 200
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert http.get("/google/v1/userinfo", headers=bearer).status_code == 200

    replay = exchange(http, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert http.get("/google/v1/userinfo", headers=bearer).status_code == 401


def test_redirect_uri_must_equal_the_authorization_requests(http: httpx.Client) -> None:
    response = exchange(http, get_code(http), redirect_uri="http://app.test/other")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("use_basic", [True, False])
def test_wrong_client_secret_is_invalid_client(http: httpx.Client, use_basic: bool) -> None:
    code = get_code(http)
    if use_basic:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
        response = http.post("/google/token", data=form, auth=(CLIENT_ID, "not-the-secret"))
        assert response.headers["www-authenticate"].startswith("Basic")
    else:
        response = exchange(http, code, client_secret="not-the-secret")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert exchange(http, code).status_code == 200  # a failed client authentication leaves the code alone


def test_token_request_errors(http: httpx.Client) -> None:
    code = get_code(http)
    unsupported = exchange(http, code, grant_type="refresh_token")
    assert (unsupported.status_code, unsupported.json()["error"]) == (400, "unsupported_grant_type")
    unknown = exchange(http, "4/0not-a-code")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_grant")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    both = http.post(
        "/google/token", data={**form, "client_secret": CLIENT_SECRET}, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert (both.status_code, both.json()["error"]) == (400, "invalid_request")


def test_codes_expire_after_60_seconds_and_tokens_later(http: httpx.Client) -> None:
    stale = get_code(http)
    fresh = get_code(http)
    token = exchange(http, fresh).json()["access_token"]
    http.post("/_emulator/clock/advance", json={"seconds": 61}).raise_for_status()
    expired = exchange(http, stale)
    assert (expired.status_code, expired.json()["error"]) == (400, "invalid_grant")
    assert "expired" in expired.json()["error_description"]

    bearer = {"Authorization": f"Bearer {token}"}
    assert http.get("/google/v1/userinfo", headers=bearer).status_code == 200
    http.post("/_emulator/clock/advance", json={"seconds": 3600}).raise_for_status()
    assert http.get("/google/v1/userinfo", headers=bearer).status_code == 401


def test_userinfo_refuses_a_bad_token(http: httpx.Client) -> None:
    for headers in ({"Authorization": "Bearer ya29.nonsense"}, {}):
        response = http.get("/google/v1/userinfo", headers=headers)
        assert response.status_code == 401
        assert response.json()["error_description"] == "Invalid Credentials"
        assert "invalid_token" in response.headers["www-authenticate"]


def test_revoked_token_stops_working(http: httpx.Client) -> None:
    token = exchange(http, get_code(http)).json()["access_token"]
    assert http.post("/google/revoke", data={"token": token}).status_code == 200
    assert http.get("/google/v1/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert http.post("/google/revoke", data={"token": token}).status_code == 400


def test_emulator_error_redirects_with_the_error_and_state(http: httpx.Client) -> None:
    params = redirect_params(authorize(http, emulator_user=None, emulator_error="access_denied"))
    assert params == {"error": "access_denied", "state": "state-123"}
    params = redirect_params(authorize(http, emulator_user=None, emulator_error="temporarily_unavailable"))
    assert params["error"] == "temporarily_unavailable"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"state": None}, "invalid_request"),
        ({"scope": "email profile"}, "invalid_scope"),
        ({"scope": "openid https://www.googleapis.com/auth/drive"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge": "a" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    ],
)
def test_bad_authorization_requests_go_back_with_an_error(
    http: httpx.Client, overrides: dict[str, str | None], error: str
) -> None:
    params = redirect_params(authorize(http, **overrides))
    assert params["error"] == error
    assert "code" not in params
    assert params.get("state") == overrides.get("state", "state-123")


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "someone-else"},
        {"redirect_uri": "javascript:alert(1)"},
        {"redirect_uri": None},
        {"emulator_user": "nobody"},
    ],
)
def test_requests_that_cannot_be_redirected_get_an_error_page(
    http: httpx.Client, overrides: dict[str, str | None]
) -> None:
    response = authorize(http, **overrides)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def consent_id(html: str) -> str:
    match = re.search(r'name="consent" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_consent_page_lists_users_and_approves(http: httpx.Client, base: str) -> None:
    page = authorize(http, emulator_user=None)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for text in ("Approve as Alice Example", "alice@example.com", "Approve as Bob Unverified", "Deny"):
        assert text in page.text
    assert "email not verified" in page.text  # Bob

    form = {"consent": consent_id(page.text), "user": "bob"}
    params = redirect_params(http.post("/google/o/oauth2/v2/auth", data=form))
    assert params["state"] == "state-123"
    claims = verify_id_token(base, exchange(http, params["code"]).json()["id_token"])
    assert claims["email"] == "bob@example.com"
    assert claims["nonce"] == "nonce-456"

    again = http.post("/google/o/oauth2/v2/auth", data=form)
    assert again.status_code == 400  # a consent page answers once


def test_consent_page_deny(http: httpx.Client) -> None:
    page = authorize(http, emulator_user=None)
    response = http.post("/google/o/oauth2/v2/auth", data={"consent": consent_id(page.text), "deny": "1"})
    assert redirect_params(response) == {"error": "access_denied", "state": "state-123"}


def test_consent_page_escapes_user_data(http: httpx.Client) -> None:
    user = {"key": "mallory", "email": "mallory@example.com", "name": "<script>alert(1)</script>"}
    http.post("/_emulator/users", json={"provider": "google", "user": user}).raise_for_status()
    page = authorize(http, emulator_user=None, state='"><b>state</b>')
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_users_added_at_runtime_sign_in(http: httpx.Client, base: str) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    added = http.post(
        "/_emulator/users",
        json={
            "provider": "google",
            "user": {"key": f"u-{uuid.uuid4().hex[:8]}", "email": email, "name": "Fresh"},
        },
    )
    assert added.status_code == 201
    assert re.fullmatch(r"\d{21}", added.json()["sub"])
    assert email in {user["email"] for user in http.get("/_emulator/users").json()["google"]}

    claims = verify_id_token(base, exchange(http, get_code(http, emulator_user=email)).json()["id_token"])
    assert (claims["sub"], claims["email"], claims["email_verified"]) == (added.json()["sub"], email, True)

    bad = http.post(
        "/_emulator/users", json={"provider": "google", "user": {"key": "x", "email": "not-an-email"}}
    )
    assert bad.status_code == 422


def test_token_endpoint_fault_answers_500_then_recovers(http: httpx.Client) -> None:
    code = get_code(http)
    fault = {"provider": "google", "endpoint": "token", "status": 500, "times": 1}
    assert http.post("/_emulator/faults", json=fault).status_code == 201
    assert http.get("/_emulator/faults").json()[0]["remaining"] == 1
    failed = exchange(http, code)
    assert failed.status_code == 500
    assert failed.text == "Internal Server Error"
    assert exchange(http, code).status_code == 200  # the fault struck before the code was read
    assert http.get("/_emulator/faults").json() == []


@pytest.mark.parametrize("endpoint", ["jwks", "userinfo"])
def test_faults_on_jwks_and_userinfo(http: httpx.Client, endpoint: str) -> None:
    token = exchange(http, get_code(http)).json()["access_token"]
    path = {"jwks": "/google/oauth2/v3/certs", "userinfo": "/google/v1/userinfo"}[endpoint]
    headers = {"Authorization": f"Bearer {token}"}
    http.post(
        "/_emulator/faults", json={"provider": "google", "endpoint": endpoint, "status": 503, "times": 2}
    )
    assert [http.get(path, headers=headers).status_code for _ in range(3)] == [503, 503, 200]
    http.post(
        "/_emulator/faults", json={"provider": "google", "endpoint": endpoint, "status": 500, "times": 5}
    )
    assert http.delete("/_emulator/faults").status_code == 204
    assert http.get(path, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("bad_signature", jwt.InvalidSignatureError),
        ("wrong_audience", jwt.InvalidAudienceError),
        ("wrong_issuer", jwt.InvalidIssuerError),
        ("expired", jwt.ExpiredSignatureError),
        ("wrong_nonce", None),
    ],
)
def test_id_token_faults_fail_verification(
    http: httpx.Client, base: str, kind: str, error: type[Exception] | None
) -> None:
    fault = {"provider": "google", "endpoint": "id_token", "kind": kind}
    assert http.post("/_emulator/faults", json=fault).status_code == 201
    id_token = exchange(http, get_code(http)).json()["id_token"]
    if error is None:
        assert verify_id_token(base, id_token)["nonce"] != "nonce-456"
    else:
        with pytest.raises(error):
            verify_id_token(base, id_token)
    assert verify_id_token(base, exchange(http, get_code(http)).json()["id_token"])["nonce"] == "nonce-456"


@pytest.mark.parametrize(
    "fault",
    [
        {"provider": "google", "endpoint": "emails"},
        {"provider": "github", "endpoint": "id_token", "kind": "expired"},
        {"provider": "google", "endpoint": "id_token", "status": 500},
        {"provider": "google", "endpoint": "token", "status": 200},
    ],
)
def test_nonsense_faults_are_refused(http: httpx.Client, fault: dict[str, Any]) -> None:
    assert http.post("/_emulator/faults", json=fault).status_code == 422


def test_configured_base_url_and_redirect_allow_list() -> None:
    config = OAuthEmulatorConfig(
        base_url="https://oauth.example.test",
        google_clients=(OAuthClient(client_id="c", client_secret="s", redirect_uris=(REDIRECT_URI,)),),
    )
    with serve_in_thread(create_app(config)) as url, httpx.Client(base_url=url) as http:
        doc = http.get("/google/.well-known/openid-configuration").json()
        assert doc["issuer"] == "https://oauth.example.test/google"
        assert doc["token_endpoint"] == "https://oauth.example.test/google/token"
        params = {"client_id": "c", "response_type": "code", "scope": "openid", "state": "s"}
        refused = http.get(
            "/google/o/oauth2/v2/auth", params={**params, "redirect_uri": "http://evil.test/cb"}
        )
        assert refused.status_code == 400
        allowed = http.get("/google/o/oauth2/v2/auth", params={**params, "redirect_uri": REDIRECT_URI})
        assert allowed.status_code == 200


def test_a_browser_url_moves_only_the_consent_page() -> None:
    """As Google's own split (accounts.google.com for the browser, googleapis.com for servers): in
    a container network the browser and the relying party reach the emulator by different names."""
    env = {
        "OAUTH_EMULATOR_BASE_URL": "http://oauth-emulator:8090",
        "OAUTH_EMULATOR_BROWSER_URL": "http://localhost:8090/",
    }
    config = OAuthEmulatorConfig.from_env(env)
    with serve_in_thread(create_app(config)) as url, httpx.Client(base_url=url) as http:
        doc = http.get("/google/.well-known/openid-configuration").json()
    assert doc["authorization_endpoint"] == "http://localhost:8090/google/o/oauth2/v2/auth"
    assert doc["issuer"] == "http://oauth-emulator:8090/google"
    assert doc["token_endpoint"] == "http://oauth-emulator:8090/google/token"
    assert doc["jwks_uri"].startswith("http://oauth-emulator:8090/google/")


def test_command_line_reads_env_and_users_file(tmp_path: Path) -> None:
    users = {
        "google": [{"key": "erin", "email": "erin@example.com"}],
        "github": [{"key": "frank", "email": "frank@example.com"}],
    }
    (tmp_path / "users.json").write_text(json.dumps(users))
    port = free_port()
    env = {
        **os.environ,
        "OAUTH_EMULATOR_BASE_URL": "http://oauth.local:9999",
        "OAUTH_EMULATOR_GOOGLE_CLIENT_ID": "env-client",
        "OAUTH_EMULATOR_GOOGLE_CLIENT_SECRET": "env-secret",
    }
    command = [sys.executable, "-m", "gatehouse_emulators.oauth", "--port", str(port)]
    process = subprocess.Popen([*command, "--users", str(tmp_path / "users.json")], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(base, "/healthz", within=15))
        issuer = httpx.get(f"{base}/google/.well-known/openid-configuration").json()["issuer"]
        assert issuer == "http://oauth.local:9999/google"
        listed = httpx.get(f"{base}/_emulator/users").json()
        assert {u["key"] for u in listed["google"]} == {"alice", "bob", "erin"}
        assert {u["key"] for u in listed["github"]} == {
            "octocat",
            "private-carol",
            "unverified-dave",
            "frank",
        }
        params = {"client_id": "env-client", "redirect_uri": REDIRECT_URI, "response_type": "code"}
        params |= {"scope": "openid", "state": "s", "emulator_user": "erin"}
        code = httpx.URL(
            httpx.get(f"{base}/google/o/oauth2/v2/auth", params=params).headers["location"]
        ).params["code"]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
        token = httpx.post(f"{base}/google/token", data=form, auth=("env-client", "env-secret"))
        assert token.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_concurrent_exchanges_of_one_code_succeed_once(http: httpx.Client, base: str) -> None:
    code = get_code(http)

    def attempt(_: int) -> int:
        with httpx.Client(base_url=base) as client:
            return exchange(client, code).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attempt, range(8)))
    assert sorted(statuses) == [200] + [400] * 7


def test_config_from_env_and_users_file(tmp_path: Path) -> None:
    document = {
        "google": [{"key": "alice", "email": "alice@corp.example", "email_verified": False}],
        "clients": {"github": [{"client_id": "gh", "client_secret": "sh", "redirect_uris": [REDIRECT_URI]}]},
    }
    (tmp_path / "users.json").write_text(json.dumps(document))
    env = {"OAUTH_EMULATOR_GOOGLE_REDIRECT_URIS": f"{REDIRECT_URI}, http://app.test/second"}
    config = OAuthEmulatorConfig.from_env(env, users_file=tmp_path / "users.json")
    assert config.base_url is None
    assert config.google_clients[0].client_id == CLIENT_ID
    assert config.google_clients[0].redirect_uris == (REDIRECT_URI, "http://app.test/second")
    assert config.github_clients == (
        OAuthClient(client_id="gh", client_secret="sh", redirect_uris=(REDIRECT_URI,)),
    )
    alice = next(user for user in config.google_users if user.key == "alice")
    assert (alice.email, alice.email_verified) == ("alice@corp.example", False)
    assert [user.key for user in config.google_users] == ["alice", "bob"]
