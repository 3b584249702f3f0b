"""The GitHub side of the OAuth emulator, over real HTTP: httpx and Authlib as clients."""

import re
import secrets
import uuid
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from oauth_support import REDIRECT_URI, pkce_pair, redirect_params

from gatehouse_emulators.oauth import OAuthClient, OAuthEmulatorConfig, create_app
from gatehouse_platform.testing import serve_in_thread

pytest_plugins = ["oauth_fixtures"]

CLIENT_ID = "gatehouse-github-client"
CLIENT_SECRET = "gatehouse-github-secret"
JSON = {"Accept": "application/json"}


def authorize(http: httpx.Client, **overrides: str | None) -> httpx.Response:
    params: dict[str, str | None] = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "read:user user:email",
        "state": "state-gh",
        "emulator_user": "octocat",
        **overrides,
    }
    return http.get(
        "/github/login/oauth/authorize", params={k: v for k, v in params.items() if v is not None}
    )


def get_code(http: httpx.Client, **overrides: str | None) -> str:
    params = redirect_params(authorize(http, **overrides))
    assert params["state"] == "state-gh"
    assert re.fullmatch(r"[0-9a-f]{20}", params["code"])
    return params["code"]


def exchange(
    http: httpx.Client, code: str, *, headers: dict[str, str] | None = None, **overrides: str
) -> httpx.Response:
    form = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": code, **overrides}
    return http.post("/github/login/oauth/access_token", data=form, headers=headers)


def token_for(http: httpx.Client, user: str, scope: str = "read:user user:email") -> str:
    response = exchange(http, get_code(http, emulator_user=user, scope=scope), headers=JSON)
    token: str = response.json()["access_token"]
    return token


def api(http: httpx.Client, path: str, token: str, scheme: str = "Bearer") -> httpx.Response:
    return http.get(f"/github/api{path}", headers={"Authorization": f"{scheme} {token}"})


def test_authlib_client_signs_in_with_pkce(http: httpx.Client, base: str) -> None:
    verifier = secrets.token_urlsafe(48)
    with OAuth2Client(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope="read:user user:email",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    ) as client:
        url, state = client.create_authorization_url(
            f"{base}/github/login/oauth/authorize", code_verifier=verifier
        )
        assert "code_challenge_method=S256" in url
        callback = http.get(url + "&emulator_user=octocat")
        assert callback.status_code == 302
        token = client.fetch_token(
            f"{base}/github/login/oauth/access_token",
            authorization_response=callback.headers["location"],
            code_verifier=verifier,
            state=state,
        )
        assert token["token_type"] == "bearer"
        assert token["access_token"].startswith("gho_")
        assert token["scope"] == "read:user,user:email"

        user = client.get(f"{base}/github/api/user")
        assert user.status_code == 200
        assert user.headers["x-oauth-scopes"] == "read:user, user:email"
        body = user.json()
        assert (body["id"], body["login"], body["name"]) == (583231, "octocat", "The Octocat")
        assert body["email"] == "octocat@example.com"
        assert body["avatar_url"].startswith(base)
        emails = client.get(f"{base}/github/api/user/emails").json()
        assert emails == [
            {"email": "octocat@example.com", "primary": True, "verified": True, "visibility": "public"}
        ]


def test_token_answer_is_form_encoded_unless_json_is_asked_for(http: httpx.Client) -> None:
    form_answer = exchange(http, get_code(http))
    assert form_answer.status_code == 200
    assert form_answer.headers["content-type"].startswith("application/x-www-form-urlencoded")
    fields = dict(httpx.QueryParams(form_answer.text))
    assert set(fields) == {"access_token", "token_type", "scope"}
    assert (fields["token_type"], fields["scope"]) == ("bearer", "read:user,user:email")

    json_answer = exchange(http, get_code(http), headers=JSON)
    assert json_answer.headers["content-type"].startswith("application/json")
    assert json_answer.json()["token_type"] == "bearer"
    assert api(http, "/user", fields["access_token"]).status_code == 200


@pytest.mark.parametrize("accept_json", [True, False])
def test_bad_code_answers_200_with_bad_verification_code(http: httpx.Client, accept_json: bool) -> None:
    response = exchange(http, "0123456789abcdef0123", headers=JSON if accept_json else None)
    assert response.status_code == 200  # GitHub's way
    body = response.json() if accept_json else dict(httpx.QueryParams(response.text))
    assert body["error"] == "bad_verification_code"
    assert body["error_uri"].endswith("#bad-verification-code")
    assert "access_token" not in body


def test_a_code_works_once(http: httpx.Client) -> None:
    code = get_code(http)
    token = exchange(http, code, headers=JSON).json()["access_token"]
    assert exchange(http, code, headers=JSON).json()["error"] == "bad_verification_code"
    assert api(http, "/user", token).status_code == 401  # the replay revoked the first token


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"client_secret": "nope"}, "incorrect_client_credentials"),
        ({"client_id": "unknown-app"}, "incorrect_client_credentials"),
        ({"redirect_uri": "http://app.test/elsewhere"}, "redirect_uri_mismatch"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
    ],
)
def test_token_errors_are_named_like_githubs(
    http: httpx.Client, overrides: dict[str, str], error: str
) -> None:
    response = exchange(http, get_code(http), headers=JSON, **overrides)
    assert response.status_code == 200
    assert response.json()["error"] == error


def test_basic_client_authentication_and_same_redirect_uri_work(http: httpx.Client) -> None:
    code = get_code(http)
    form = {"code": code, "redirect_uri": REDIRECT_URI}
    response = http.post(
        "/github/login/oauth/access_token", data=form, auth=(CLIENT_ID, CLIENT_SECRET), headers=JSON
    )
    assert response.json()["access_token"].startswith("gho_")


def test_pkce_is_checked_when_a_challenge_was_sent(http: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    wrong = exchange(http, get_code(http, **pkce), headers=JSON, code_verifier=pkce_pair()[0])
    assert wrong.json()["error"] == "bad_verification_code"
    assert "code_verifier" in wrong.json()["error_description"]
    right = exchange(http, get_code(http, **pkce), headers=JSON, code_verifier=verifier)
    assert "access_token" in right.json()


def test_private_email_user_shows_null_and_lists_the_verified_primary(http: httpx.Client) -> None:
    token = token_for(http, "private-carol")
    user = api(http, "/user", token).json()
    assert user["login"] == "private-carol"
    assert user["email"] is None
    emails = api(http, "/user/emails", token).json()
    assert len(emails) == 2
    assert emails[0] == {
        "email": "carol.old@example.org",
        "primary": False,
        "verified": False,
        "visibility": None,
    }
    primary = next(e for e in emails if e["primary"])
    assert primary == {
        "email": "carol@example.com",
        "primary": True,
        "verified": True,
        "visibility": "private",
    }


def test_unverified_user_has_only_an_unverified_primary(http: httpx.Client) -> None:
    token = token_for(http, "unverified-dave")
    assert api(http, "/user", token).json()["email"] is None
    emails = api(http, "/user/emails", token).json()
    assert emails == [
        {"email": "dave@example.com", "primary": True, "verified": False, "visibility": "private"}
    ]


def test_user_ids_are_integers_and_distinct(http: httpx.Client) -> None:
    ids = {api(http, "/user", token_for(http, key)).json()["id"] for key in ("octocat", "private-carol")}
    assert len(ids) == 2 and all(isinstance(i, int) for i in ids)


def test_emails_need_the_user_email_scope(http: httpx.Client) -> None:
    token = token_for(http, "octocat", scope="read:user")
    assert api(http, "/user", token).status_code == 200
    response = api(http, "/user/emails", token)
    assert response.status_code == 404
    assert response.headers["x-accepted-oauth-scopes"] == "user, user:email"


def test_bad_or_missing_token_is_401(http: httpx.Client) -> None:
    for path in ("/user", "/user/emails"):
        response = api(http, path, "gho_not-a-real-token")
        assert response.status_code == 401
        assert response.json()["message"] == "Bad credentials"
    assert http.get("/github/api/user").json()["message"] == "Requires authentication"
    assert api(http, "/user", token_for(http, "octocat"), scheme="token").status_code == 200


def test_tokens_expire(http: httpx.Client) -> None:
    token = token_for(http, "octocat")
    http.post("/_emulator/clock/advance", json={"seconds": 3601}).raise_for_status()
    assert api(http, "/user", token).status_code == 401


def test_app_can_revoke_a_token(http: httpx.Client) -> None:
    token = token_for(http, "octocat")
    path = f"/github/api/applications/{CLIENT_ID}/token"
    denied = http.request("DELETE", path, json={"access_token": token}, auth=(CLIENT_ID, "wrong"))
    assert denied.status_code == 401
    revoked = http.request("DELETE", path, json={"access_token": token}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert revoked.status_code == 204
    assert api(http, "/user", token).status_code == 401


def test_emulator_error_access_denied_is_githubs_redirect(http: httpx.Client) -> None:
    params = redirect_params(authorize(http, emulator_user=None, emulator_error="access_denied"))
    assert params["error"] == "access_denied"
    assert params["state"] == "state-gh"
    assert params["error_description"] == "The user has denied your application access."
    assert "code" not in params


def test_authorization_errors(http: httpx.Client) -> None:
    assert authorize(http, client_id="unknown-app").status_code == 400
    assert authorize(http, redirect_uri="ftp://app.test/cb").status_code == 400
    assert redirect_params(authorize(http, state=None))["error"] == "invalid_request"
    pkce = {"code_challenge": "short", "code_challenge_method": "S256"}
    assert redirect_params(authorize(http, **pkce))["error"] == "invalid_request"


def test_redirect_uri_defaults_to_the_registered_callback() -> None:
    client = OAuthClient(client_id="app", client_secret="s", redirect_uris=(REDIRECT_URI,))
    with (
        serve_in_thread(create_app(OAuthEmulatorConfig(github_clients=(client,)))) as url,
        httpx.Client() as http,
    ):
        params = {"client_id": "app", "state": "state-gh", "emulator_user": "octocat"}
        response = http.get(f"{url}/github/login/oauth/authorize", params=params)
        assert redirect_params(response)["state"] == "state-gh"
        other = http.get(
            f"{url}/github/login/oauth/authorize", params={**params, "redirect_uri": "http://x.test/"}
        )
        assert other.status_code == 400


def test_consent_page_lists_users_and_approves(http: httpx.Client) -> None:
    page = authorize(http, emulator_user=None)
    assert page.status_code == 200
    for login in ("octocat", "private-carol", "unverified-dave"):
        assert f"Approve as {login}" in page.text
    assert "carol@example.com" in page.text
    match = re.search(r'name="consent" value="([^"]+)"', page.text)
    assert match
    response = http.post(
        "/github/login/oauth/authorize", data={"consent": match.group(1), "user": "private-carol"}
    )
    code = redirect_params(response)["code"]
    token = exchange(http, code, headers=JSON).json()["access_token"]
    assert api(http, "/user", token).json()["login"] == "private-carol"


def test_users_added_at_runtime_sign_in_by_email(http: httpx.Client) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    user: dict[str, Any] = {"key": f"u-{uuid.uuid4().hex[:8]}", "name": "Fresh", "email": email}
    added = http.post("/_emulator/users", json={"provider": "github", "user": user})
    assert added.status_code == 201
    assert added.json()["login"] == user["key"]
    assert added.json()["emails"] == [
        {"email": email, "primary": True, "verified": True, "visibility": "public"}
    ]

    token = token_for(http, email)
    assert api(http, "/user", token).json()["id"] == added.json()["id"]
    assert api(http, "/user/emails", token).json()[0]["email"] == email

    inconsistent = {"key": "zed", "email": "zed@example.com", "emails": [{"email": "other@example.com"}]}
    assert http.post("/_emulator/users", json={"provider": "github", "user": inconsistent}).status_code == 422
    assert http.delete(f"/_emulator/users/github/{user['key']}").status_code == 204
    assert api(http, "/user", token).status_code == 401


def test_faults_on_token_user_and_emails(http: httpx.Client) -> None:
    token = token_for(http, "octocat")
    faults = [
        {"provider": "github", "endpoint": "token", "status": 500},
        {"provider": "github", "endpoint": "user", "status": 502},
        {"provider": "github", "endpoint": "emails", "status": 500, "times": 2},
    ]
    for fault in faults:
        assert http.post("/_emulator/faults", json=fault).status_code == 201
    code = get_code(http)
    assert exchange(http, code, headers=JSON).status_code == 500
    assert "access_token" in exchange(http, code, headers=JSON).json()
    assert [api(http, "/user", token).status_code for _ in range(2)] == [502, 200]
    assert [api(http, "/user/emails", token).status_code for _ in range(3)] == [500, 500, 200]
