"""Passkeys in the pages over plain HTTP in this process, auth's passkey endpoints stood in for
(the ceremonies themselves run in Chromium: test_browser_passkeys.py): the list on the security
page, adding, renaming and removing one (with "confirm it's you" by a passkey), signing in with
one, and what a page says when the script did not run or the API refuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.cookies import SimpleCookie

import httpx
from test_security_page import REAUTH, FakeAuth, signed_in

from conftest import csrf_of

LAPTOP = "7d0f5a52-3c4b-4f7a-9f00-5a1f1f0e6b01"
PHONE = "1c9e4b0a-8a77-4e8e-b0f3-2f7d9d1b6c02"
GOOD = {"id": "good", "rawId": "good", "type": "public-key", "response": {"clientDataJSON": "e30"}}
BAD = {**GOOD, "id": "bad", "rawId": "bad"}
REJECTED = {"type": "https://gatehouse.dev/problems/passkey-rejected", "title": "Rejected", "status": 401}
TOKENS = {"access_token": "acc-pk", "refresh_token": "ref-pk", "expires_in": 900}
CREATION = {"challenge": "Y2hhbGxlbmdl", "rp": {"id": "localhost", "name": "Gatehouse"}, "user": {"id": "dQ"}}
REQUEST = {"challenge": "cmVxdWVzdA", "rpId": "localhost", "userVerification": "required"}


class FakePasskeys(FakeAuth):
    """FakeAuth with auth's passkey endpoints: a credential with id "good" verifies."""

    def __init__(self, *, recent: bool = True, throttled: bool = False) -> None:
        super().__init__(recent=recent)
        self.throttled = throttled
        self.passkeys = [
            {
                "id": LAPTOP,
                "name": "Laptop",
                "created_at": "2026-03-01T10:00:00+00:00",
                "last_used_at": None,
                "backed_up": False,
            },
            {
                "id": PHONE,
                "name": "Phone",
                "created_at": "2026-03-02T10:00:00+00:00",
                "last_used_at": "2026-03-05T08:30:00+00:00",
                "backed_up": True,
            },
        ]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        path, method = request.url.path, request.method
        ok = body.get("credential") == GOOD or body.get("passkey") == GOOD
        if path == "/auth/mfa":
            status = {"totp": False, "recovery_codes_left": 0, "passkeys": len(self.passkeys), "methods": []}
            return httpx.Response(200, json=status)
        if path == "/auth/passkeys" and method == "GET":
            return httpx.Response(200, json={"items": self.passkeys, "next_cursor": None})
        if path == "/auth/reauthenticate" and "passkey" in body:
            self.calls.append((method, path, body, request.headers.get("authorization", "")))
            if not ok:
                return httpx.Response(401, json=REJECTED)
            self.recent = True
            return httpx.Response(200, json={**TOKENS, "access_token": "acc-fresh"})
        if not path.startswith("/auth/passkeys"):
            return super().__call__(request)
        self.calls.append((method, path, body, request.headers.get("authorization", "")))
        if path == "/auth/passkeys/register/options":
            return httpx.Response(200, json=CREATION)
        if path == "/auth/passkeys/login/options":
            if self.throttled:
                problem = {"title": "Too many requests", "status": 429}
                return httpx.Response(429, json=problem, headers={"Retry-After": "42"})
            return httpx.Response(200, json=REQUEST)
        if path == "/auth/passkeys/register/verify":
            if not ok:
                return httpx.Response(401, json=REJECTED)
            added = {"id": "0d2c", "name": body["name"], "created_at": "2026-03-06T10:00:00+00:00"}
            self.passkeys.append({**added, "last_used_at": None, "backed_up": False})
            return httpx.Response(201, json=added)
        if path == "/auth/passkeys/login/verify":
            return httpx.Response(200, json=TOKENS) if ok else httpx.Response(401, json=REJECTED)
        key = path.rsplit("/", 1)[-1]
        found = [p for p in self.passkeys if p["id"] == key]
        if not found:
            problem = {
                "type": "https://gatehouse.dev/problems/passkey-not-found",
                "title": "x",
                "status": 404,
            }
            return httpx.Response(404, json=problem)
        if method == "PATCH":
            found[0]["name"] = body["name"]
            return httpx.Response(200, json=found[0])
        if method == "DELETE":
            if not self.recent:
                return httpx.Response(401, json=REAUTH)
            self.passkeys.remove(found[0])
            return httpx.Response(204)
        return httpx.Response(404, json={"title": "Not found", "status": 404})


def cookie_names(response: httpx.Response) -> set[str]:
    names: set[str] = set()
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        names.update(name for name, morsel in cookie.items() if morsel.value)
    return names


async def test_the_security_page_lists_the_passkeys_and_hides_their_buttons_until_the_script_runs(
    make_web: Callable[..., object],
) -> None:
    web = await signed_in(make_web, FakePasskeys())
    page = await web.get("/account/security")
    html = page.text
    assert page.status_code == 200
    laptop, phone = html.split('<p class="device">')[1:3]
    assert "<strong>Laptop</strong>" in laptop and "this device only" in laptop and "Not yet" in laptop
    assert "Mar 1, 2026" in laptop
    assert "<strong>Phone</strong>" in phone and "synced" in phone and "Mar 5, 2026" in phone
    assert f'action="/account/security/passkeys/{PHONE}/remove"' in html
    assert 'aria-label="Remove the passkey “Phone”"' in html
    assert 'data-passkey="create" data-options="/account/security/passkeys/options"' in html
    form = html.split('<form method="post" action="/account/security/passkeys" ')[1].split("</form>")[0]
    assert form.lstrip().startswith('class="passkey" novalidate hidden')
    assert "Passkeys need JavaScript, which is off in this browser." in html
    assert '<script src="/static/passkeys.js?v=' in html and "<script>" not in html
    script = await web.get("/static/passkeys.js")
    assert script.status_code == 200 and "navigator.credentials.create" in script.text


async def test_the_options_are_auths_passed_through_for_a_form_with_its_csrf_token(
    make_web: Callable[..., object],
) -> None:
    auth = FakePasskeys()
    web = await signed_in(make_web, auth)
    page = await web.get("/account/security")
    refused = await web.post("/account/security/passkeys/options", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    creation = await web.post("/account/security/passkeys/options", data={"csrf_token": csrf_of(page.text)})
    assert creation.status_code == 200 and creation.json() == CREATION
    assert creation.headers["cache-control"] == "no-store"
    assert ("POST", "/auth/passkeys/register/options", {}, "Bearer acc-1") in auth.calls
    request = await web.post("/login/passkey/options", data={"csrf_token": csrf_of(page.text)})
    assert request.status_code == 200 and request.json() == REQUEST


async def test_too_many_sign_in_options_is_a_message_the_script_shows(
    make_web: Callable[..., object],
) -> None:
    web = await make_web(api=httpx.MockTransport(FakePasskeys(throttled=True)))  # type: ignore[misc]
    page = await web.get("/login")
    answer = await web.post("/login/passkey/options", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 429
    assert answer.json() == {"message": "Too many attempts. Please wait 42 seconds, then try again."}


async def test_adding_a_passkey_needs_a_name_and_the_browsers_answer(make_web: Callable[..., object]) -> None:
    auth = FakePasskeys()
    web = await signed_in(make_web, auth)
    token = csrf_of((await web.get("/account/security")).text)

    async def add(name: str, credential: str) -> httpx.Response:
        data = {"csrf_token": token, "passkey_name": name, "credential": credential}
        return await web.post("/account/security/passkeys", data=data)

    unnamed = await add("", json.dumps(GOOD))
    assert unnamed.status_code == 400
    assert (
        'id="f-passkey_name-error">Name your passkey, so you can tell it from others later.' in unnamed.text
    )
    for missing in ("", "not json", "[1, 2]"):
        without = await add("Desk", missing)
        assert (
            without.status_code == 400
            and "Passkeys need JavaScript. Turn it on for this site" in without.text
        )
        assert 'value="Desk"' in without.text  # the name stays typed
    rejected = await add("Desk", json.dumps(BAD))
    assert (
        rejected.status_code == 400 and "This passkey could not be added. Please try again." in rejected.text
    )
    added = await add("Desk", json.dumps(GOOD))
    assert added.status_code == 200 and "Your passkey “Desk” is added." in added.text
    assert "<strong>Desk</strong>" in added.text
    assert (
        "POST",
        "/auth/passkeys/register/verify",
        {"credential": GOOD, "name": "Desk"},
        "Bearer acc-1",
    ) in auth.calls


async def test_renaming_a_passkey(make_web: Callable[..., object]) -> None:
    auth = FakePasskeys()
    web = await signed_in(make_web, auth)
    token = csrf_of((await web.get("/account/security")).text)
    empty = await web.post(
        f"/account/security/passkeys/{LAPTOP}/rename", data={"csrf_token": token, "name": " "}
    )
    assert empty.status_code == 400
    assert f'id="f-name-{LAPTOP}-error">Enter a name for the passkey.' in empty.text
    assert f'href="#f-name-{LAPTOP}"' in empty.text  # the summary links to the field
    renamed = await web.post(
        f"/account/security/passkeys/{LAPTOP}/rename", data={"csrf_token": token, "name": "Work laptop"}
    )
    assert renamed.status_code == 200 and "The passkey is renamed “Work laptop”." in renamed.text
    assert ("PATCH", f"/auth/passkeys/{LAPTOP}", {"name": "Work laptop"}, "Bearer acc-1") in auth.calls
    calls = len(auth.calls)
    for key in ("../mfa", "not-an-id", "2b1d6c3e-0000-4000-8000-000000000000"):
        gone = await web.post(
            f"/account/security/passkeys/{key}/rename", data={"csrf_token": token, "name": "x"}
        )
        assert gone.status_code in (400, 404)
        if gone.status_code == 400:
            assert "That passkey is no longer on your account." in gone.text
    assert [c[1] for c in auth.calls[calls:] if c[0] == "PATCH"] == [
        "/auth/passkeys/2b1d6c3e-0000-4000-8000-000000000000"
    ]  # only an id reaches the API's path


async def test_removing_a_passkey_after_a_stale_sign_in_is_confirmed_with_a_passkey(
    make_web: Callable[..., object],
) -> None:
    auth = FakePasskeys(recent=False)
    web = await signed_in(make_web, auth)
    token = csrf_of((await web.get("/account/security")).text)
    ask = await web.post(f"/account/security/passkeys/{PHONE}/remove", data={"csrf_token": token})
    assert ask.status_code == 200 and "Confirm it&#39;s you" in ask.text
    assert "Confirm with a passkey" in ask.text
    assert f'name="then" value="remove-passkey:{PHONE}"' in ask.text
    assert 'data-options="/login/passkey/options"' in ask.text

    def confirm(credential: object) -> dict[str, str]:
        return {
            "csrf_token": token,
            "proof": "passkey",
            "return_to": "/account/security",
            "then": f"remove-passkey:{PHONE}",
            "credential": json.dumps(credential),
        }

    wrong = await web.post("/account/reauthenticate", data=confirm(BAD))
    assert wrong.status_code == 400 and "That passkey did not work here." in wrong.text
    assert len(auth.passkeys) == 2
    done = await web.post("/account/reauthenticate", data=confirm(GOOD))
    assert done.status_code == 200 and "The passkey is removed." in done.text
    assert [p["name"] for p in auth.passkeys] == ["Laptop"]
    assert ("DELETE", f"/auth/passkeys/{PHONE}", {}, "Bearer acc-fresh") in auth.calls
    assert {"gh_session", "gh_refresh"} <= cookie_names(done)  # the fresh sign-in is kept

    tampered = await web.post(
        "/account/reauthenticate", data={**confirm(GOOD), "then": "remove-passkey:../x"}
    )
    assert tampered.status_code == 303
    assert tampered.headers["location"] == "/account/security?confirmed"


async def test_signing_in_with_a_passkey_sets_the_session_like_a_password(
    make_web: Callable[..., object],
) -> None:
    web = await make_web(api=httpx.MockTransport(FakePasskeys()))  # type: ignore[misc]
    page = await web.get("/login")
    assert "Sign in with a passkey" in page.text and 'name="return_to" value="/account"' in page.text
    token = csrf_of(page.text)
    signed = await web.post(
        "/login/passkey",
        data={"csrf_token": token, "credential": json.dumps(GOOD), "return_to": "/account/security"},
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/account/security"
    assert {"gh_session", "gh_refresh", "gh_csrf"} <= cookie_names(signed)
    token = csrf_of((await web.get("/login")).text)  # a sign-in renews the CSRF value
    offsite = await web.post(
        "/login/passkey",
        data={"csrf_token": token, "credential": json.dumps(GOOD), "return_to": "https://evil.example/"},
    )
    assert offsite.headers["location"] == "/account"
    token = csrf_of((await web.get("/login")).text)
    rejected = await web.post("/login/passkey", data={"csrf_token": token, "credential": json.dumps(BAD)})
    assert rejected.status_code == 400 and "That passkey did not work here." in rejected.text
    assert "gh_session" not in cookie_names(rejected)
    without = await web.post("/login/passkey", data={"csrf_token": token})
    assert without.status_code == 400
    assert "Passkeys need JavaScript. Turn it on for this site, or sign in another way." in without.text


async def test_the_passkey_pages_speak_french(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakePasskeys())
    page = await web.get("/account/security", headers={"Accept-Language": "fr"})
    assert (
        "Clés d’accès" in page.text and "synchronisée" in page.text and "Ajouter une clé d’accès" in page.text
    )
    login = await make_web(api=httpx.MockTransport(FakePasskeys()))  # type: ignore[misc]
    french = await login.get("/login", headers={"Accept-Language": "fr"})
    assert "Se connecter avec une clé d’accès" in french.text
