"""Bot checks: a CAPTCHA (Cloudflare Turnstile or hCaptcha) before register, login and password
reset, verified server-side with the provider's `siteverify` (form-encoded `secret`, `response`,
`remoteip`; both providers speak it).

`AUTH_CAPTCHA_MODE`: `off` (default); `always`; `adaptive`, where only an address or an account
whose failed sign-ins reached `AUTH_CAPTCHA_FAILURE_THRESHOLD` is asked (counted by `Throttle`, for
any identifier alike, so the answer tells no one who has an account).

The check fails closed: when a token is required and siteverify is slow, down or answers nonsense,
the attempt is refused with 503 `captcha-unavailable` (logged). Letting it through would switch the
check off for exactly the attacker who can make the provider look down, and the check only runs for
traffic that already looks like a bot (adaptive) or where the operator asked for it (always). The
breached-password check fails open for the opposite reason: it guards a choice, not a door.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from prometheus_client import Counter

from auth_service.errors import CaptchaFailed, CaptchaRequired, CaptchaUnavailable
from auth_service.settings import Settings
from auth_service.throttle import Throttle

logger = logging.getLogger(__name__)

CAPTCHA_CHECKS = Counter(
    "auth_captcha_checks_total",
    "Bot checks by action (register, login, reset) and outcome (required: no token sent; passed; "
    "failed: siteverify refused the token; unavailable: siteverify did not answer).",
    ["action", "outcome"],
)
ACTIONS = ("register", "login", "reset")
UNAVAILABLE_RETRY_SECONDS = "30"


class Captcha:
    """Asks siteverify about a widget's token. Built once per process."""

    def __init__(self, settings: Settings, throttle: Throttle, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._throttle = throttle
        self._http = http or httpx.AsyncClient(
            timeout=settings.captcha_timeout_seconds,
            headers={"User-Agent": "gatehouse-auth-service"},
            follow_redirects=False,
        )

    @property
    def mode(self) -> str:
        return self._settings.captcha_mode

    def widget(self) -> dict[str, Any]:
        """What a client needs to render the widget (also `GET /auth/captcha`)."""
        on = self.mode != "off"
        return {
            "mode": self.mode,
            "provider": self._settings.captcha_provider if on else None,
            "site_key": self._settings.captcha_site_key if on else None,
        }

    async def aclose(self) -> None:
        await self._http.aclose()

    async def check(self, action: str, ip: str | None, identifier: str, token: str | None) -> None:
        """Before the password (or the email) is looked at: nothing when no check is due; else a
        valid single-use `token`, or 428 `captcha-required` / `captcha-failed`, or 503."""
        assert action in ACTIONS
        if self.mode == "off":
            return
        if self.mode == "adaptive" and not await self._throttle.past_failure_threshold(ip, identifier):
            return
        provider, site_key = self._settings.captcha_provider, self._settings.captcha_site_key
        if not token:
            CAPTCHA_CHECKS.labels(action, "required").inc()
            raise CaptchaRequired(
                "Confirm you are not a robot, then try again.",
                action=action,
                provider=provider,
                site_key=site_key,
            )
        refused = await self._siteverify(action, ip, token)
        if refused is not None:
            CAPTCHA_CHECKS.labels(action, "failed").inc()
            logger.info("bot check failed", extra={"action": action, "error_codes": refused})
            raise CaptchaFailed(
                "The check that you are not a robot did not pass; do it again.",
                action=action,
                error_codes=refused,
                provider=provider,
                site_key=site_key,
            )
        CAPTCHA_CHECKS.labels(action, "passed").inc()

    async def _siteverify(self, action: str, ip: str | None, token: str) -> list[str] | None:
        """None when the provider vouches for the token; else why not (its error codes, or ours)."""
        form = {"secret": self._settings.captcha_secret_key or "", "response": token}
        if ip:
            form["remoteip"] = ip
        try:
            response = await self._http.post(self._settings.captcha_verify_url, data=form)
            response.raise_for_status()
            answer = response.json()
            if not isinstance(answer, dict) or not isinstance(answer.get("success"), bool):
                raise ValueError("no success field")
        except (httpx.HTTPError, ValueError) as exc:
            CAPTCHA_CHECKS.labels(action, "unavailable").inc()
            logger.warning(
                "bot check unavailable, attempt refused: %s", _reason(exc), extra={"action": action}
            )
            raise CaptchaUnavailable(
                "We cannot check that you are not a robot right now; try again in a minute.",
                headers={"Retry-After": UNAVAILABLE_RETRY_SECONDS},
            ) from exc
        if not answer["success"]:
            codes = answer.get("error-codes")
            return (
                [str(c) for c in codes][:5]
                if isinstance(codes, list) and codes
                else ["invalid-input-response"]
            )
        hostnames = self._settings.captcha_hostnames
        if hostnames and answer.get("hostname") not in hostnames:
            return ["hostname-mismatch"]
        # Turnstile echoes the widget's `data-action`: a token solved for another form is refused
        answered_action = answer.get("action")
        if answered_action and answered_action != action:
            return ["action-mismatch"]
        return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"answered {exc.response.status_code}"
    if isinstance(exc, ValueError):
        return "answered something that is not a siteverify answer"
    return type(exc).__name__
