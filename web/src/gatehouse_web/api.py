"""The web front's client of the Gatehouse API, through the gateway (httpx, one pooled client).

Every answer other than 2xx becomes an `ApiError` carrying what a page needs to explain it: the
status, the problem's title and detail, the 422 `errors` map (field → message) and, for 429,
Retry-After. A transport failure is an `ApiUnavailable` (the page says "try again shortly")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.responses import Response

from gatehouse_web.settings import Settings


@dataclass
class ApiError(Exception):
    status: int
    type: str = ""
    title: str = ""
    detail: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    retry_after: int | None = None
    extra: dict[str, Any] = field(
        default_factory=dict
    )  # the problem's other members (a bot check's site key)

    @property
    def slug(self) -> str:
        """The last segment of the problem type (`…/invalid-token` → `invalid-token`)."""
        return self.type.rstrip("/").rsplit("/", 1)[-1] if self.type else ""

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        errors = body.get("errors")
        retry_after = response.headers.get("retry-after", "")
        return cls(
            status=response.status_code,
            type=str(body.get("type") or ""),
            title=str(body.get("title") or ""),
            detail=str(body.get("detail") or ""),
            errors={str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {},
            retry_after=int(retry_after) if retry_after.isdigit() else None,
            extra={k: v for k, v in body.items() if k not in PROBLEM_MEMBERS},
        )


PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "errors", "request_id"})


class ApiUnavailable(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Caller:
    """The browser a call is made for."""

    ip: str | None = None
    request_id: str | None = None
    user_agent: str | None = None  # so a person's list of sessions names their browsers


class Api:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(
            base_url=settings.api_url,
            timeout=settings.api_timeout_seconds,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "gatehouse-web"},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        token: str | None = None,
        caller: Caller | None = None,
        params: dict[str, str] | None = None,
        cookies_to: Response | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The JSON body of a 2xx answer (None when empty); raises ApiError otherwise. `cookies_to`
        receives the answer's Set-Cookie headers, for a cookie the API means for the browser (the
        state of a Google/GitHub link: pages and API share one origin). `headers` go as given (an
        Idempotency-Key)."""
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if caller is not None and caller.ip:
            headers["X-Forwarded-For"] = caller.ip  # counted per person when the gateway trusts us
        if caller is not None and caller.request_id:
            headers["X-Request-ID"] = caller.request_id
        if caller is not None and caller.user_agent:
            headers["User-Agent"] = caller.user_agent
        try:
            response = await self._http.request(method, path, json=json, headers=headers, params=params)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(type(exc).__name__) from exc
        if response.status_code >= 400:
            raise ApiError.of(response)
        if cookies_to is not None:
            for cookie in response.headers.get_list("set-cookie"):
                cookies_to.headers.append("set-cookie", cookie)
        if not response.content:
            return None
        return response.json()
