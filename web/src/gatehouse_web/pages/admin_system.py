"""The console's System page: each service's readiness, outbox backlog and the age of its oldest
event, its consumers' queues and dead-letter queues (messages waiting, consumers attached), and
billing's Stripe events waiting and receive-to-apply lag, read now from each service's
`GET /<service>/admin/system` (gatehouse_platform.system). A service that does not answer is shown
as such; the page never fails because one is down: it is read when things go wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gatehouse_web.api import ApiError, ApiUnavailable
from gatehouse_web.i18n import elapsed
from gatehouse_web.pages.admin import Admin, AdminRefused, admin_call
from gatehouse_web.web import Viewer, Web, WebDep

router = APIRouter(include_in_schema=False)

SYSTEM = "/admin/system"
SERVICES = (
    ("auth-service", "/auth/admin/system"),
    ("billing-service", "/billing/admin/system"),
    ("notification-service", "/notifications/admin/system"),
)


def duration(seconds: float | None, locale: str, _: Callable[..., str]) -> str | None:
    """`2 minutes`, `350 ms` (Babel would round a lag under a second up to `1 second`)."""
    if seconds is None:
        return None
    if seconds < 1:
        return _("%(count)s ms", count=round(seconds * 1000))
    return elapsed(seconds, locale)


def _check_label(result: str, _: Callable[..., str]) -> tuple[str, str]:
    return (_("ok"), "ok") if result == "ok" else (result.removeprefix("fail: "), "warn")


async def _state(request: Request, web: Web, viewer: Viewer, name: str, path: str) -> dict[str, Any]:
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    try:
        state: dict[str, Any] = await admin_call(request, web, viewer, "GET", path)
    except AdminRefused:
        raise
    except (ApiError, ApiUnavailable):
        return {"service": name, "unreachable": True}
    outbox = state.get("outbox")
    extra = state.get("extra") or {}
    return {
        **state,
        "unreachable": False,
        "checks_shown": [(check, _check_label(result, _)) for check, result in state["checks"].items()],
        "reported_shown": [(check, _check_label(result, _)) for check, result in state["reported"].items()],
        "outbox_age": duration(outbox.get("oldest_age_seconds"), locale, _) if outbox else None,
        "stripe": {
            **extra,
            "oldest": duration(extra.get("stripe_oldest_waiting_seconds"), locale, _),
            "median": duration(extra.get("stripe_apply_lag_median_seconds"), locale, _),
            "worst": duration(extra.get("stripe_apply_lag_max_seconds"), locale, _),
        }
        if "stripe_events_pending" in extra
        else None,
    }


@router.get(SYSTEM)
async def system(request: Request, web: WebDep, viewer: Admin) -> Response:
    states = await asyncio.gather(*(_state(request, web, viewer, name, path) for name, path in SERVICES))
    return web.renderer.page(request, "admin_system.html", user=viewer.user, services=states)
