"""What every response carries (security headers) and where a browser may be sent (`return_to`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_RETURN = "/account"
_LOCAL_PATH = re.compile(r"/(?:[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)(?:\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?")


def safe_return_to(value: str | None, allowed_origins: Iterable[str], default: str = DEFAULT_RETURN) -> str:
    """`value` when it is a path on this site or a URL on an allowlisted origin, else `default`.

    Refused: other origins, scheme-relative (`//evil`), backslashes (`/\\evil`, which browsers read
    as `//evil`), control characters and whitespace, user-info (`https://ok@evil`), and any of those
    hidden behind percent-encoding (checked again on the decoded text, twice)."""
    if not value or len(value) > 2048:
        return default
    decoded = [value, unquote(value), unquote(unquote(value))]
    if any("\\" in text or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in text) for text in decoded):
        return default
    if value.startswith("/"):
        if any(text.startswith(("//", "/\\")) or "://" in text.split("?")[0] for text in decoded):
            return default
        return value if _LOCAL_PATH.fullmatch(value) else default
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return default
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    return value if origin in set(allowed_origins) else default


def content_security_policy(
    form_targets: Iterable[str], image_sources: Iterable[str], captcha_sources: Iterable[str] = ()
) -> str:
    """No inline script or style anywhere; forms post here (or, after a sign-in, redirect to the
    allowlisted app, which form-action must allow since browsers apply it to redirects too). The
    bot-check widget (WEB_CAPTCHA_SCRIPT_URL), when there is one, runs its script, frame and calls
    from its own origin, as Cloudflare and hCaptcha document."""
    forms = " ".join(["'self'", *sorted(set(form_targets))])
    images = " ".join(["'self'", *sorted(set(image_sources))])
    widget = "".join(f" {source}" for source in sorted(set(captcha_sources)))
    frames = f"frame-src{widget}; " if widget else ""
    return (
        f"default-src 'none'; script-src 'self'{widget}; style-src 'self'; "
        f"img-src {images}; font-src 'self'; connect-src 'self'{widget}; {frames}form-action {forms}; "
        "frame-ancestors 'none'; base-uri 'none'; manifest-src 'self'"
    )


class SecurityHeaders:
    """Pure ASGI middleware (no per-request object): the same headers on every response, pages,
    static files, errors and health answers alike. Pages are never cached: they carry a CSRF token
    and a person's data."""

    def __init__(self, app: ASGIApp, *, csp: str, hsts_max_age: int | None) -> None:
        self.app = app
        headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),  # links carry one-time tokens: never pass them on
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if hsts_max_age:
            headers.append(
                (b"strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains".encode())
            )
        self._headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in self._headers if h[0] not in names)
                if not static and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
