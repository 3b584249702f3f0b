"""Bot checks on the sign-in, registration and forgotten-password forms.

auth-service decides when a check is due (AUTH_CAPTCHA_MODE): in `always` mode every form shows
the widget from the start (`GET /auth/captcha`, remembered for a minute); in `adaptive` mode a form
shows it once the API answered 428 `captcha-required` (the problem names the provider and site key).
The widget (Cloudflare Turnstile or hCaptcha, or emulators/captcha locally) is loaded from
`WEB_CAPTCHA_SCRIPT_URL`, whose origin the CSP allows; it puts its token in a form field
(`cf-turnstile-response` or `h-captcha-response`), which the page passes on as `captcha_token`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from gatehouse_web.api import Api, ApiError, ApiUnavailable
from gatehouse_web.settings import Settings

logger = logging.getLogger(__name__)

CHALLENGE_SLUGS = ("captcha-required", "captcha-failed")
UNAVAILABLE_SLUG = "captcha-unavailable"
TOKEN_FIELDS = ("cf-turnstile-response", "h-captcha-response")
TOKEN_MAX_LENGTH = 4096
MODE_CACHE_SECONDS = 60.0
MODE_RETRY_SECONDS = 5.0  # after the API could not say: `off` meanwhile, asked again after this


@dataclass(frozen=True)
class Widget:
    """What a form renders: the provider's widget with this site key, for this action."""

    provider: str
    site_key: str
    action: str
    script_url: str

    @property
    def css_class(self) -> str:
        return "h-captcha" if self.provider == "hcaptcha" else "cf-turnstile"


class BotCheck:
    def __init__(self, settings: Settings) -> None:
        self._script_url = settings.captcha_script_url
        self._mode: tuple[float, dict[str, Any]] | None = None  # (valid until, answer)

    async def _settings(self, api: Api) -> dict[str, Any]:
        """auth-service's `GET /auth/captcha`, remembered a minute (`off` when it cannot answer)."""
        now = time.monotonic()
        if self._mode is not None and now < self._mode[0]:
            return self._mode[1]
        try:
            answer = dict(await api.call("GET", "/auth/captcha"))
        except (ApiError, ApiUnavailable):
            # a required check still shows up: the API's 428 brings its own widget
            self._mode = (now + MODE_RETRY_SECONDS, {"mode": "off"})
            return self._mode[1]
        self._mode = (now + MODE_CACHE_SECONDS, answer)
        return answer

    def _widget(self, provider: Any, site_key: Any, action: str) -> Widget | None:
        if not isinstance(provider, str) or not isinstance(site_key, str) or not site_key:
            return None
        if not self._script_url:
            logger.warning("a bot check is asked for but WEB_CAPTCHA_SCRIPT_URL is not set: no widget shown")
            return None
        return Widget(provider, site_key, action, self._script_url)

    async def upfront(self, api: Api, action: str) -> Widget | None:
        """The widget a form shows before anything was sent: only in `always` mode (and only
        asked for when there is a widget to show: without a script URL nothing is)."""
        if not self._script_url:
            return None
        answer = await self._settings(api)
        if answer.get("mode") != "always":
            return None
        return self._widget(answer.get("provider"), answer.get("site_key"), action)

    def asked_by(self, error: ApiError, action: str) -> Widget | None:
        """The widget an answer asks for (428 `captcha-required` or `captcha-failed`), else None."""
        if error.slug not in CHALLENGE_SLUGS:
            return None
        return self._widget(error.extra.get("provider"), error.extra.get("site_key"), action)


def with_token(body: dict[str, Any], form: FormData) -> dict[str, Any]:
    """`body` with the widget's token as `captcha_token`, when the form carried one."""
    token = token_of(form)
    return {**body, "captcha_token": token} if token else body


def token_of(form: FormData) -> str | None:
    """The widget's token, from whichever provider's field it came in."""
    for name in TOKEN_FIELDS:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()[:TOKEN_MAX_LENGTH]
    return None


def message(error: ApiError, gettext: Callable[..., str]) -> str | None:
    """What to tell a person whose form a bot check stopped, else None."""
    if error.slug == "captcha-required":
        return gettext("Please confirm you are not a robot with the check below, then send the form again.")
    if error.slug == "captcha-failed":
        return gettext(
            "The check that you are not a robot did not pass. Please do it again, then send the form."
        )
    if error.slug == UNAVAILABLE_SLUG:
        return gettext("We cannot check that you are not a robot right now. Please try again in a minute.")
    return None
