"""Breached passwords: Have I Been Pwned's Pwned Passwords range API, by k-anonymity.

Only the first five hex characters of the password's SHA-1 leave the service; the API answers every
suffix it knows under that prefix (`SUFFIX:COUNT` lines), and the match is made here. The request
asks for padding (`Add-Padding: true`), so the answer's size does not betray the prefix either; the
padding lines have a count of 0 and never match. The check fails open: a slow, failing or
unreachable API lets the password through and logs a warning, because a third party's outage must
not stop people signing up or resetting a password.
"""

from __future__ import annotations

import hashlib
import logging

import httpx

from auth_service.errors import InvalidField
from auth_service.settings import Settings

logger = logging.getLogger(__name__)

BREACHED = "This password has appeared in a data breach, so attackers try it first; choose another."


class BreachedPasswords:
    """Asks the range API whether a password was seen in breaches. Built once per process."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self.enabled = settings.checks_pwned_passwords
        self._threshold = settings.pwned_passwords_threshold
        self._http = http or httpx.AsyncClient(
            base_url=settings.pwned_passwords_url.rstrip("/"),
            timeout=settings.pwned_passwords_timeout_seconds,
            headers={"Add-Padding": "true", "User-Agent": "gatehouse-auth-service"},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def times_seen(self, password: str) -> int | None:
        """How often `password` appears in breaches (0: never), or None when the API did not answer
        in time or sensibly (logged; the caller lets the password through)."""
        digest = hashlib.sha1(password.encode("utf-8")).hexdigest().upper()  # noqa: S324 (the API's hash)
        prefix, suffix = digest[:5], digest[5:]
        try:
            response = await self._http.get(f"/range/{prefix}")
            response.raise_for_status()
        except httpx.HTTPError as exc:
            logger.warning("breached-password check skipped, password accepted: %s", _reason(exc))
            return None
        for line in response.text.splitlines():
            candidate, _, count = line.strip().partition(":")
            if candidate.upper() == suffix:
                return int(count) if count.strip().isdigit() else 0
        return 0

    async def check(self, password: str) -> None:
        """A 422 on the `password` field when `password` (already normalized) was seen in breaches
        at least the threshold's number of times; nothing when the check is off or skipped."""
        if not self.enabled:
            return
        seen = await self.times_seen(password)
        if seen is not None and seen >= self._threshold:
            raise InvalidField("password", BREACHED)


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"answered {exc.response.status_code}"
    return type(exc).__name__
