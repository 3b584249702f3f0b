"""The security page and the "confirm it's you" step over plain HTTP in this process, the API stood
in for by a small fake that keeps an authenticator app's state and asks for a recent sign-in like
auth-service does; and the QR code's sanitiser against hostile SVG."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import segno

from conftest import SIGNED_IN, USER, csrf_of, problem
from gatehouse_web.qrcode import safe_qr_svg

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CODES = [f"c0d{i}-abcd-efgh" for i in range(10)]
REAUTH = {
    "type": "https://gatehouse.dev/problems/reauthentication-required",
    "title": "Sign in again",
    "status": 401,
}


def qr_of(text: str) -> str:
    import io

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgclass=None, lineclass=None)
    return out.getvalue().decode()


SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"'  # the opening of a hostile one
QR = qr_of(f"otpauth://totp/Gatehouse:ada%40example.com?secret={SECRET}&issuer=Gatehouse")


class FakeAuth:
    """auth-service's second-factor endpoints as far as these pages use them."""

    def __init__(self, *, totp: bool = False, recent: bool = True) -> None:
        self.totp, self.recent, self.pending = totp, recent, False
        self.calls: list[tuple[str, str, dict[str, object], str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        token = request.headers.get("authorization", "")
        self.calls.append((request.method, request.url.path, body, token))
        path = request.url.path
        if path == "/auth/login":
            return httpx.Response(200, json=SIGNED_IN)
        if path == "/auth/me":
            return httpx.Response(200, json=USER)
        if path == "/auth/identities":  # the account page lists them
            return httpx.Response(200, json={"items": [], "has_password": True})
        if path == "/auth/mfa":
            return httpx.Response(
                200,
                json={
                    "totp": self.totp,
                    "recovery_codes_left": 10 if self.totp else 0,
                    "passkeys": 0,
                    "methods": [],
                },
            )
        if path == "/auth/passkeys" and request.method == "GET":
            return httpx.Response(200, json={"items": [], "next_cursor": None})
        if path == "/auth/audit-events/me":
            return audit_page(request.url.params.get("cursor"))
        if path == "/auth/mfa/totp/setup":
            self.pending = True
            return httpx.Response(
                200, json={"secret": SECRET, "otpauth_uri": "otpauth://totp/x", "qr_svg": QR}
            )
        if path == "/auth/mfa/totp/confirm":
            if body.get("code") != "123456":
                return httpx.Response(
                    422,
                    json={"title": "Invalid", "status": 422, "errors": {"code": "The code does not match."}},
                )
            self.totp = True
            return httpx.Response(200, json={"recovery_codes": CODES})
        if (
            path in ("/auth/mfa/recovery-codes", "/auth/mfa/totp", "/auth/change-password")
            and not self.recent
        ):
            return httpx.Response(401, json=REAUTH)
        if path == "/auth/mfa/recovery-codes":
            return httpx.Response(200, json={"recovery_codes": list(reversed(CODES))})
        if path == "/auth/mfa/totp":
            self.totp = False
            return httpx.Response(204)
        if path == "/auth/change-password":
            return httpx.Response(204)
        if path == "/auth/reauthenticate":
            if body not in ({"password": "right"}, {"code": "654321"}):
                return httpx.Response(
                    401,
                    json={
                        "type": "https://gatehouse.dev/problems/invalid-credentials",
                        "title": "Invalid",
                        "status": 401,
                    },
                )
            self.recent = True
            return httpx.Response(
                200, json={"access_token": "acc-2", "refresh_token": "ref-2", "expires_in": 900}
            )
        return httpx.Response(404, json={"title": "Not found", "status": 404})


CHROME_ON_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36"
)


def audit_event(kind: str, method: str | None, **fields: object) -> dict[str, object]:
    return {
        "id": "0b7c1b9e-3a52-4d8e-9f1a-2c3d4e5f6a7b",
        "user_id": USER["id"],
        "type": kind,
        "occurred_at": "2026-01-02T03:04:05+00:00",
        "actor_id": None,
        "method": method,
        "ip": None,
        "place": None,
        "user_agent": None,
        "details": {},
        **fields,
    }


def audit_page(cursor: str | None) -> httpx.Response:
    """Two pages of the trail as auth-service gives them; a cursor it never gave is a 400."""
    if cursor is None:
        items = [
            audit_event(
                "sign_in.succeeded",
                "password",
                ip="198.51.100.7",
                place="Lyon, France",
                user_agent=CHROME_ON_LINUX,
            ),
            audit_event("sign_in.failed", "password", ip="203.0.113.9"),
        ]
        return httpx.Response(200, json={"items": items, "next_cursor": "MjAyNi0wMS0wMQ=="})
    if cursor == "MjAyNi0wMS0wMQ==":
        items = [audit_event("admin.mfa_reset", None, actor_id="9a0e4c1a-5f3d-4e2a-8c6b-1d7f2a9e3b54")]
        return httpx.Response(200, json={"items": items, "next_cursor": None})
    return problem(400, "invalid-cursor")


async def signed_in(make_web: Callable[..., object], auth: FakeAuth) -> httpx.AsyncClient:
    web = await make_web(api=httpx.MockTransport(auth))  # type: ignore[misc]
    assert isinstance(web, httpx.AsyncClient)
    page = await web.get("/login")
    answer = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    return web


async def test_the_account_page_links_to_the_security_page(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeAuth())
    account = await web.get("/account")
    assert 'href="/account/security"' in account.text


async def test_setting_up_the_app_shows_the_qr_code_inline_and_the_key_then_the_recovery_codes_once(
    make_web: Callable[..., object],
) -> None:
    auth = FakeAuth()
    web = await signed_in(make_web, auth)
    page = await web.get("/account/security")
    assert page.status_code == 200 and "Set up an authenticator app" in page.text
    setup = await web.post("/account/security/totp/setup", data={"csrf_token": csrf_of(page.text)})
    assert setup.status_code == 200
    html = setup.text
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and 'role="img"' in html
    assert 'aria-label="QR code for your authenticator app"' in html
    assert f'<p class="key" id="manual-key">{SECRET}</p>' in html
    csp = setup.headers["content-security-policy"]
    assert "data:" not in csp  # the QR code needs no data: images: it is inline markup
    assert "<script>" not in html and "style=" not in html

    wrong = await web.post(
        "/account/security/totp/confirm",
        data={"csrf_token": csrf_of(html), "code": "000000", "secret": SECRET, "qr_svg": QR},
    )
    assert wrong.status_code == 400
    field = wrong.text.split('<label for="f-code">')[1].split("</div>")[0]
    assert "That code does not match. Check the app&#39;s clock and try again." in field
    assert 'role="img"' in wrong.text and SECRET in wrong.text  # still there to scan or type
    short = await web.post(
        "/account/security/totp/confirm",
        data={"csrf_token": csrf_of(html), "code": "12", "secret": SECRET, "qr_svg": QR},
    )
    assert "six digits" in short.text

    done = await web.post(
        "/account/security/totp/confirm",
        data={"csrf_token": csrf_of(html), "code": "123 456", "secret": SECRET, "qr_svg": QR},
    )
    assert done.status_code == 200 and "Your authenticator app is on" in done.text
    assert all(f"<code>{code}</code>" in done.text for code in CODES)
    assert ("POST", "/auth/mfa/totp/confirm", {"code": "123456"}, "Bearer acc-1") in auth.calls
    download = await web.post(
        "/account/security/recovery-codes.txt",
        data={"csrf_token": csrf_of(done.text), "code": CODES},
    )
    assert download.headers["content-disposition"] == 'attachment; filename="recovery-codes.txt"'
    assert download.headers["content-type"].startswith("text/plain")
    assert download.text.splitlines()[3:13] == CODES and "ada@example.com" in download.text

    after = await web.get("/account/security")
    assert "Turn the authenticator app off" in after.text and "<dd>10</dd>" in after.text
    assert all(code not in after.text for code in CODES)  # shown once


async def test_a_forged_qr_code_is_never_put_into_the_page(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeAuth())
    page = await web.get("/account/security")
    hostile = f'{SVG} onload="alert(1)"><path d="M0 0h1"/></svg>'
    answer = await web.post(
        "/account/security/totp/confirm",
        data={"csrf_token": csrf_of(page.text), "code": "000000", "secret": SECRET, "qr_svg": hostile},
    )
    assert "<svg" not in answer.text and "onload=" not in answer.text.replace("onload=&#34;", "")
    assert "Type this key into your authenticator app:" in answer.text


def test_the_qr_sanitiser_keeps_segnos_code_and_rebuilds_it() -> None:
    safe = safe_qr_svg(QR, 'a "label"')
    assert safe is not None
    assert safe.startswith('<svg xmlns="http://www.w3.org/2000/svg" height="196" viewBox="0 0 196 196"')
    assert 'width="196" role="img"' in safe
    assert 'aria-label="a &#34;label&#34;"' in safe and safe.count("<path ") == 1 and 'stroke="#000"' in safe


@pytest.mark.parametrize(
    "markup",
    [
        f"{SVG}><script>alert(1)</script></svg>",
        f'{SVG} onload="alert(1)"><path d="M0 0h1"/></svg>',
        f'{SVG}><path d="M0 0h1" onclick="x()"/></svg>',
        f'{SVG}><path d="M0 0h1" style="fill:red"/></svg>',
        f'{SVG}><path d="url(javascript:x)"/></svg>',
        f"{SVG}><foreignObject><p>x</p></foreignObject></svg>",
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink" width="9" height="9">'
        '<a x:href="javascript:alert(1)"><path d="M0 0h1"/></a></svg>',
        f'{SVG}><path d="M0 0h1">text</path></svg>',
        f'<!DOCTYPE svg [<!ENTITY a "aaaa">]>{SVG}><path d="M0 0h1"/></svg>',
        f"{SVG}></svg>",
        '<svg xmlns="http://www.w3.org/1999/xhtml" width="9" height="9"><path d="M0 0h1"/></svg>',
        f'{SVG}><path d="M0 0h1"/>',
        "<html><body><svg/></body></html>",
        "",
    ],
)
def test_the_qr_sanitiser_refuses_anything_but_plain_drawing(markup: str) -> None:
    assert safe_qr_svg(markup, "QR") is None


async def test_new_recovery_codes_when_the_sign_in_is_recent(make_web: Callable[..., object]) -> None:
    auth = FakeAuth(totp=True)
    web = await signed_in(make_web, auth)
    page = await web.get("/account/security")
    answer = await web.post("/account/security/recovery-codes", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 200 and "Your new recovery codes" in answer.text
    assert f"<code>{CODES[-1]}</code>" in answer.text


@pytest.mark.parametrize(
    ("action", "then", "shows"),
    [
        ("/account/security/recovery-codes", "recovery-codes", "Your new recovery codes"),
        ("/account/security/totp/off", "totp-off", "Your authenticator app is off."),
    ],
)
async def test_a_stale_sign_in_confirms_its_you_then_finishes_what_was_asked(
    make_web: Callable[..., object], action: str, then: str, shows: str
) -> None:
    auth = FakeAuth(totp=True, recent=False)
    web = await signed_in(make_web, auth)
    page = await web.get("/account/security")
    asked = await web.post(action, data={"csrf_token": csrf_of(page.text)})
    assert asked.status_code == 200 and "Confirm it&#39;s you" in asked.text
    assert (
        f'name="then" value="{then}"' in asked.text
        and 'name="return_to" value="/account/security"' in asked.text
    )
    assert '<label for="f-code">Code from the app</label>' in asked.text  # the app is on: a code will do
    csrf = csrf_of(asked.text)

    wrong = await web.post(
        "/account/reauthenticate",
        data={
            "csrf_token": csrf,
            "proof": "password",
            "password": "wrong",
            "then": then,
            "return_to": "/account/security",
        },
    )
    assert wrong.status_code == 400
    field = wrong.text.split('<label for="f-password">')[1].split("</div>")[0]
    assert "That password is not right." in field and 'aria-invalid="true"' in field
    wrong_code = await web.post(
        "/account/reauthenticate",
        data={
            "csrf_token": csrf,
            "proof": "code",
            "code": "111111",
            "then": then,
            "return_to": "/account/security",
        },
    )
    assert "That code is not right. Check the app and try again." in wrong_code.text

    done = await web.post(
        "/account/reauthenticate",
        data={
            "csrf_token": csrf,
            "proof": "code",
            "code": "654 321",
            "then": then,
            "return_to": "/account/security",
        },
    )
    assert done.status_code == 200 and shows in done.text
    assert ("POST", "/auth/reauthenticate", {"code": "654321"}, "Bearer acc-1") in auth.calls
    method, path = (
        ("POST", "/auth/mfa/recovery-codes") if then == "recovery-codes" else ("DELETE", "/auth/mfa/totp")
    )
    assert [(c[0], c[1], c[3]) for c in auth.calls if c[1] == path] == [
        (method, path, "Bearer acc-1"),  # refused: not recent
        (method, path, "Bearer acc-2"),  # done, with the fresh token
    ]
    cookies = done.headers.get_list("set-cookie")
    assert any(c.startswith("gh_refresh=ref-2;") for c in cookies) and any(
        c.startswith("gh_session=") for c in cookies
    )
    assert any(c.startswith(f"gh_csrf={web.cookies['gh_csrf']};") for c in cookies)  # open forms stay valid


async def test_a_stale_password_change_confirms_its_you_then_returns_to_the_account(
    make_web: Callable[..., object],
) -> None:
    auth = FakeAuth(recent=False)
    web = await signed_in(make_web, auth)
    page = await web.get("/account")
    asked = await web.post(
        "/account/password",
        data={
            "csrf_token": csrf_of(page.text),
            "old_password": "pw",
            "new_password": "a new passphrase 1",
            "confirm_password": "a new passphrase 1",
        },
    )
    assert "Confirm it&#39;s you" in asked.text and 'name="then" value=""' in asked.text
    assert 'for="f-code"' not in asked.text  # no app: the password only
    done = await web.post(
        "/account/reauthenticate",
        data={
            "csrf_token": csrf_of(asked.text),
            "proof": "password",
            "password": "right",
            "return_to": "/account",
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/account?confirmed"
    back = await web.get(done.headers["location"])
    assert "Thank you. Now you can do it." in back.text
    changed = await web.post(
        "/account/password",
        data={
            "csrf_token": csrf_of(back.text),
            "old_password": "pw",
            "new_password": "a new passphrase 1",
            "confirm_password": "a new passphrase 1",
        },
    )
    assert "Your password is changed." in changed.text


async def test_the_confirmation_never_returns_off_the_site(make_web: Callable[..., object]) -> None:
    auth = FakeAuth(recent=False)
    web = await signed_in(make_web, auth)
    page = await web.get("/account")
    done = await web.post(
        "/account/reauthenticate",
        data={
            "csrf_token": csrf_of(page.text),
            "proof": "password",
            "password": "right",
            "return_to": "//evil.example",
        },
    )
    assert done.headers["location"] == "/account?confirmed"


async def test_the_security_page_speaks_french(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeAuth())
    page = await web.get("/account/security", headers={"Accept-Language": "fr"})
    assert '<html lang="fr">' in page.text and "Sécurité" in page.text


async def test_the_security_page_leads_to_the_security_activity(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeAuth())
    page = await web.get("/account/security")
    assert "Security activity" in page.text and 'href="/account/security/activity"' in page.text


async def test_the_security_activity_lists_what_happened_in_words_a_page_at_a_time(
    make_web: Callable[..., object],
) -> None:
    auth = FakeAuth()
    web = await signed_in(make_web, auth)
    first = await web.get("/account/security/activity")
    assert first.status_code == 200, first.text
    text = first.text
    assert "<strong>Signed in</strong>" in text and "<strong>Failed sign-in</strong>" in text
    assert "Chrome on Linux" in text and "Mozilla/5.0" not in text
    assert "198.51.100.7 (Lyon, France)" in text and "203.0.113.9</dd>" in text and "Password" in text
    assert 'href="/forgot-password"' in text
    assert 'href="/account/security/activity?cursor=MjAyNi0wMS0wMQ%3D%3D"' in text
    asked = [c for c in auth.calls if c[1] == "/auth/audit-events/me"]
    assert asked and asked[-1][3] == "Bearer " + SIGNED_IN["access_token"]

    second = await web.get("/account/security/activity", params={"cursor": "MjAyNi0wMS0wMQ=="})
    assert "Two-step sign-in removed by an administrator" in second.text
    assert "an administrator" in second.text and "?cursor=" not in second.text


async def test_a_cursor_the_api_never_gave_starts_from_the_newest(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeAuth())
    answer = await web.get("/account/security/activity", params={"cursor": "forged"})
    assert answer.status_code == 303 and answer.headers["location"] == "/account/security/activity"


async def test_the_security_activity_speaks_french(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeAuth())
    page = await web.get("/account/security/activity", headers={"Accept-Language": "fr"})
    assert '<html lang="fr">' in page.text
    assert "Activité de sécurité" in page.text and "<strong>Connexion</strong>" in page.text
    assert "Chrome sous Linux" in page.text
