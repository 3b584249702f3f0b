"""The second step of a sign-in over plain HTTP in this process, the API stood in for: every way
in (password, emailed code, Google/GitHub), each answer of `POST /auth/login/mfa`, and where the
mfa_token lives (a sealed cookie on /login/mfa; never a URL or a page)."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.cookies import SimpleCookie

import httpx

from conftest import csrf_of

MFA_TOKEN = "mfa-t0k3n-" + "x" * 40
CHALLENGE = {
    "mfa_required": True,
    "mfa_token": MFA_TOKEN,
    "methods": ["totp", "recovery_code"],
    "expires_in": 300,
}
TOKENS = {"access_token": "acc-123", "refresh_token": "ref-456", "token_type": "bearer", "expires_in": 900}


class FakeApi:
    """Answers the sign-in calls: `mfa_answer` is what POST /auth/login/mfa says."""

    def __init__(self, mfa_answer: httpx.Response | None = None) -> None:
        self.mfa_answer = mfa_answer or httpx.Response(200, json=TOKENS)
        self.calls: list[tuple[str, dict[str, object]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        self.calls.append((request.url.path, body))
        if request.url.path in ("/auth/login", "/auth/login/code"):
            return httpx.Response(200, json=CHALLENGE)
        if request.url.path == "/auth/login/mfa":
            return self.mfa_answer
        return httpx.Response(404, json={"title": "Not found", "status": 404})


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    cookies = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        cookies.update({name: cookie for name in cookie})
    return cookies


async def signed_in_halfway(
    make_web: Callable[..., object], api: FakeApi, return_to: str = "/account"
) -> httpx.AsyncClient:
    web = await make_web(api=httpx.MockTransport(api))  # type: ignore[misc]
    assert isinstance(web, httpx.AsyncClient)
    page = await web.get("/login")
    answer = await web.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw", "return_to": return_to},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/login/mfa"
    return web


async def test_a_password_sign_in_with_an_app_goes_to_the_second_step_holding_the_token_sealed(
    make_web: Callable[..., object],
) -> None:
    api = FakeApi()
    web = await make_web(api=httpx.MockTransport(api))  # type: ignore[misc]
    page = await web.get("/login")
    answer = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/login/mfa"
    cookies = set_cookies(answer)
    assert "gh_session" not in cookies and "gh_refresh" not in cookies  # not signed in yet
    pending = cookies["gh_mfa"]["gh_mfa"]
    assert pending["path"] == "/login/mfa" and pending["httponly"] and pending["samesite"] == "lax"
    assert int(pending["max-age"]) == 300
    assert MFA_TOKEN not in pending.value and MFA_TOKEN not in answer.headers["location"]

    step = await web.get("/login/mfa")
    assert step.status_code == 200
    assert '<label for="f-code">Code from the app</label>' in step.text
    assert 'autocomplete="one-time-code"' in step.text and 'inputmode="numeric"' in step.text
    assert MFA_TOKEN not in step.text
    assert 'href="/login/mfa?use=recovery"' in step.text  # the switch is a link: no script needed


async def test_the_right_app_code_signs_in_and_returns_where_the_person_was_going(
    make_web: Callable[..., object],
) -> None:
    api = FakeApi()
    web = await signed_in_halfway(make_web, api, return_to="/account/sessions")
    step = await web.get("/login/mfa")
    done = await web.post(
        "/login/mfa", data={"csrf_token": csrf_of(step.text), "use": "code", "code": "123 456"}
    )
    assert done.status_code == 303 and done.headers["location"] == "/account/sessions"
    assert api.calls[-1] == ("/auth/login/mfa", {"mfa_token": MFA_TOKEN, "code": "123456"})
    cookies = set_cookies(done)
    assert cookies["gh_refresh"]["gh_refresh"].value == "ref-456"
    assert "acc-123" not in cookies["gh_session"]["gh_session"].value  # sealed
    assert cookies["gh_mfa"]["gh_mfa"]["max-age"] == "0"  # the pending sign-in is forgotten
    again = await web.get("/login/mfa")
    assert again.status_code == 303 and again.headers["location"].startswith("/login?mfa_expired=1")


async def test_a_recovery_code_finishes_the_sign_in_too(make_web: Callable[..., object]) -> None:
    api = FakeApi()
    web = await signed_in_halfway(make_web, api)
    step = await web.get("/login/mfa", params={"use": "recovery"})
    assert '<label for="f-recovery_code">Recovery code</label>' in step.text
    assert 'href="/login/mfa">Use the authenticator app instead' in step.text
    done = await web.post(
        "/login/mfa",
        data={"csrf_token": csrf_of(step.text), "use": "recovery", "recovery_code": " ABCD-efgh-2345 "},
    )
    assert done.status_code == 303 and done.headers["location"] == "/account"
    assert api.calls[-1] == ("/auth/login/mfa", {"mfa_token": MFA_TOKEN, "recovery_code": "abcd-efgh-2345"})


async def test_a_wrong_code_is_shown_next_to_its_field_and_the_step_stays(
    make_web: Callable[..., object],
) -> None:
    wrong = {
        "type": "https://gatehouse.dev/problems/invalid-second-factor",
        "title": "Invalid code",
        "status": 401,
    }
    api = FakeApi(httpx.Response(401, json=wrong))
    web = await signed_in_halfway(make_web, api)
    step = await web.get("/login/mfa")
    answer = await web.post(
        "/login/mfa", data={"csrf_token": csrf_of(step.text), "use": "code", "code": "000000"}
    )
    assert answer.status_code == 400
    field = answer.text.split('<label for="f-code">')[1].split("</div>")[0]
    assert "That code is not right. Check the app and try again." in field and 'aria-invalid="true"' in field
    assert 'href="#f-code"' in answer.text  # the summary links to it
    assert "gh_session" not in answer.headers.get("set-cookie", "")

    recovery = await web.post(
        "/login/mfa", data={"csrf_token": csrf_of(step.text), "use": "recovery", "recovery_code": "nope"}
    )
    assert "That recovery code is not right, or it was already used." in recovery.text


async def test_a_code_that_is_not_six_digits_is_refused_here_without_spending_an_attempt(
    make_web: Callable[..., object],
) -> None:
    api = FakeApi()
    web = await signed_in_halfway(make_web, api)
    step = await web.get("/login/mfa")
    calls = len(api.calls)
    for code, message in (("", "Enter the code from your authenticator app."), ("12ab56", "six digits")):
        answer = await web.post(
            "/login/mfa", data={"csrf_token": csrf_of(step.text), "use": "code", "code": code}
        )
        assert answer.status_code == 400 and message in answer.text
    assert len(api.calls) == calls


async def test_throttling_on_the_second_step_says_when_to_try_again(make_web: Callable[..., object]) -> None:
    throttled = {
        "type": "https://gatehouse.dev/problems/too-many-requests",
        "title": "Too many",
        "status": 429,
    }
    api = FakeApi(httpx.Response(429, json=throttled, headers={"Retry-After": "37"}))
    web = await signed_in_halfway(make_web, api)
    step = await web.get("/login/mfa")
    answer = await web.post(
        "/login/mfa", data={"csrf_token": csrf_of(step.text), "use": "code", "code": "123456"}
    )
    assert answer.status_code == 400
    assert "Please wait 37 seconds, then try again." in answer.text


async def test_an_expired_or_spent_token_sends_the_person_back_to_sign_in_with_a_clear_message(
    make_web: Callable[..., object],
) -> None:
    gone = {
        "type": "https://gatehouse.dev/problems/invalid-mfa-token",
        "title": "Sign-in expired",
        "status": 401,
    }
    api = FakeApi(httpx.Response(401, json=gone))
    web = await signed_in_halfway(make_web, api, return_to="/account/sessions")
    step = await web.get("/login/mfa")
    answer = await web.post(
        "/login/mfa", data={"csrf_token": csrf_of(step.text), "use": "code", "code": "123456"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?mfa_expired=1&return_to=%2Faccount%2Fsessions"
    assert set_cookies(answer)["gh_mfa"]["gh_mfa"]["max-age"] == "0"
    login = await web.get(answer.headers["location"])
    assert "That sign-in took too long or was already finished. Please sign in again." in login.text
    assert 'role="alert"' in login.text and 'name="return_to" value="/account/sessions"' in login.text


async def test_the_step_without_a_pending_sign_in_or_with_a_forged_cookie_goes_to_sign_in(
    web: httpx.AsyncClient,
) -> None:
    for cookie in (None, "not-a-sealed-value"):
        if cookie:
            web.cookies.set("gh_mfa", cookie, domain="web.test", path="/login/mfa")
        answer = await web.get("/login/mfa")
        assert answer.status_code == 303 and answer.headers["location"] == "/login?mfa_expired=1"


async def test_an_emailed_code_sign_in_with_an_app_goes_to_the_second_step(
    make_web: Callable[..., object],
) -> None:
    api = FakeApi()
    web = await make_web(api=httpx.MockTransport(api))  # type: ignore[misc]
    page = await web.get("/login/code")
    answer = await web.post(
        "/login/code", data={"csrf_token": csrf_of(page.text), "email": "ada@example.com", "code": "654321"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/login/mfa"
    assert "gh_mfa" in set_cookies(answer) and "gh_session" not in set_cookies(answer)


async def test_back_from_a_provider_the_fragments_token_is_posted_to_the_second_step(
    make_web: Callable[..., object],
) -> None:
    """auth-service sends `?mfa_required=google#mfa_token=…&methods=…`: the landing page (whose
    script reads the fragment no server sees) posts the token, which is then kept sealed."""
    api = FakeApi()
    web = await make_web(api=httpx.MockTransport(api))  # type: ignore[misc]
    landing = await web.get(
        "/session/oauth/google", params={"return_to": "/account/sessions", "mfa_required": "google"}
    )
    assert landing.status_code == 200
    assert 'id="mfa-from-fragment"' in landing.text and 'action="/login/mfa/provider"' in landing.text
    assert 'name="return_to" value="/account/sessions"' in landing.text
    assert api.calls == []  # nothing to exchange: the provider's sign-in is not finished
    answer = await web.post(
        "/login/mfa/provider",
        data={
            "csrf_token": csrf_of(landing.text),
            "mfa_token": MFA_TOKEN,
            "methods": "totp,recovery_code",
            "return_to": "/account/sessions",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/login/mfa"
    step = await web.get("/login/mfa")
    done = await web.post(
        "/login/mfa", data={"csrf_token": csrf_of(step.text), "use": "code", "code": "123456"}
    )
    assert done.headers["location"] == "/account/sessions"
    assert api.calls[-1] == ("/auth/login/mfa", {"mfa_token": MFA_TOKEN, "code": "123456"})

    landing = await web.get("/session/oauth/github", params={"mfa_required": "github"})
    empty = await web.post("/login/mfa/provider", data={"csrf_token": csrf_of(landing.text), "mfa_token": ""})
    assert empty.status_code == 303 and empty.headers["location"].startswith("/login?mfa_expired=1")


async def test_the_second_step_speaks_french(make_web: Callable[..., object]) -> None:
    web = await signed_in_halfway(make_web, FakeApi())
    step = await web.get("/login/mfa", headers={"Accept-Language": "fr"})
    assert '<html lang="fr">' in step.text and "Deuxième étape" in step.text


async def halfway_after_google(
    make_web: Callable[..., object], api: FakeApi, methods: str
) -> httpx.AsyncClient:
    """Back from Google with a second step of these methods to do (the landing page's post)."""
    web = await make_web(api=httpx.MockTransport(api))  # type: ignore[misc]
    assert isinstance(web, httpx.AsyncClient)
    landing = await web.get("/session/oauth/google", params={"mfa_required": "google"})
    await web.post(
        "/login/mfa/provider",
        data={"csrf_token": csrf_of(landing.text), "mfa_token": MFA_TOKEN, "methods": methods},
    )
    return web


async def test_a_passkey_only_second_step_offers_the_passkey_and_finishes_with_it(
    make_web: Callable[..., object],
) -> None:
    api = FakeApi()
    web = await halfway_after_google(make_web, api, "passkey")
    step = await web.get("/login/mfa")
    assert step.status_code == 200 and "Use the passkey on this account to finish signing in." in step.text
    assert 'name="code"' not in step.text and 'name="use" value="passkey"' in step.text
    assert 'data-passkey="get" data-options="/login/passkey/options"' in step.text
    without = await web.post("/login/mfa", data={"csrf_token": csrf_of(step.text), "use": "passkey"})
    assert without.status_code == 400 and "Passkeys need JavaScript" in without.text
    assert all(path != "/auth/login/mfa" for path, _body in api.calls)
    credential = {"id": "cred", "type": "public-key", "response": {}}
    done = await web.post(
        "/login/mfa",
        data={"csrf_token": csrf_of(step.text), "use": "passkey", "credential": json.dumps(credential)},
    )
    assert done.status_code == 303 and done.headers["location"] == "/account"
    assert ("/auth/login/mfa", {"mfa_token": MFA_TOKEN, "passkey": credential}) in api.calls
    cookies = set_cookies(done)
    assert cookies["gh_session"]["gh_session"].value and not cookies["gh_mfa"]["gh_mfa"].value


async def test_a_refused_passkey_in_the_second_step_says_so_beside_the_code(
    make_web: Callable[..., object],
) -> None:
    rejected = {"type": "https://gatehouse.dev/problems/invalid-second-factor", "title": "x", "status": 401}
    web = await halfway_after_google(make_web, FakeApi(httpx.Response(401, json=rejected)), "totp,passkey")
    step = await web.get("/login/mfa")
    assert 'name="code"' in step.text and "Use a passkey" in step.text  # both ways offered
    answer = await web.post(
        "/login/mfa",
        data={"csrf_token": csrf_of(step.text), "use": "passkey", "credential": json.dumps({"id": "x"})},
    )
    assert answer.status_code == 400 and "That passkey did not work here." in answer.text
    assert 'name="code"' in answer.text
