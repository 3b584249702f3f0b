"""The console's email: deliveries (found by address, status and template, newest first), one
delivery's details and resend, and the dead letters (how many, replay them), from
notification-service's admin API. Resend and replay are confirmed first, like every console action."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatehouse_web.api import ApiError
from gatehouse_web.i18n import moment, profile_zone
from gatehouse_web.pages.admin import Admin, admin_call, confirm_action
from gatehouse_web.web import Form, Viewer, Web, WebDep, field

router = APIRouter(include_in_schema=False)

EMAIL = "/admin/email"
PAGE_SIZE = 25
STATUSES = ("sending", "sent", "deferred", "failed", "suppressed")
REPLAY_LIMIT = 1000  # the most one replay moves (the API's own bound)


def status_label(value: str, _: Callable[..., str]) -> tuple[str, str]:
    """A delivery's status in words, and the badge's style."""
    labels = {
        "sending": (_("sending"), ""),
        "sent": (_("sent"), "ok"),
        "deferred": (_("deferred, to be tried again"), "warn"),
        "failed": (_("failed"), "warn"),
        "suppressed": (_("not sent: unsubscribed"), ""),
    }
    return labels.get(value, (value, ""))


def _shown(request: Request, web: Web, viewer: Viewer, delivery: dict[str, Any]) -> dict[str, Any]:
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    zone = profile_zone(viewer.user)

    def when(name: str) -> str | None:
        return moment(delivery[name], locale, zone) if delivery.get(name) else None

    return {
        **delivery,
        "label": status_label(str(delivery["status"]), _),
        "created": when("created_at"),
        "last_attempt": when("last_attempt_at"),
        "sent": when("sent_at"),
    }


async def _dead_letters(request: Request, web: Web, viewer: Viewer) -> int | None:
    """How many events wait in the dead-letter queue; None while the broker cannot say."""
    try:
        answer = await admin_call(request, web, viewer, "GET", "/notifications/dead-letters")
    except ApiError as exc:
        if exc.status == status.HTTP_503_SERVICE_UNAVAILABLE:
            return None
        raise
    return int(answer["count"])


async def _email_page(
    request: Request,
    web: Web,
    viewer: Viewer,
    values: dict[str, str],
    cursor: str = "",
    status_code: int = status.HTTP_200_OK,
    **context: Any,
) -> Response:
    _ = web.renderer.gettext_for(request)
    params = {"limit": str(PAGE_SIZE), **{k: v for k, v in values.items() if v}}
    if cursor:
        params["cursor"] = cursor
    try:
        page = await admin_call(request, web, viewer, "GET", "/notifications/deliveries", params=params)
    except ApiError as exc:
        if exc.status in (status.HTTP_400_BAD_REQUEST, 422):  # a stale cursor, a filter it refuses
            return RedirectResponse(EMAIL, status.HTTP_303_SEE_OTHER)
        raise
    try:  # the list is there outside production only: else the template is typed
        names = [t["name"] for t in await admin_call(request, web, viewer, "GET", "/notifications/templates")]
    except ApiError as exc:
        if exc.status != status.HTTP_404_NOT_FOUND:
            raise
        names = None
    return web.renderer.page(
        request,
        "admin_email.html",
        status_code,
        user=viewer.user,
        values=values,
        deliveries=[_shown(request, web, viewer, item) for item in page["items"]],
        next_cursor=page["next_cursor"],
        statuses=[("", _("Any status")), *((s, status_label(s, _)[0]) for s in STATUSES)],
        templates=None if names is None else [("", _("Any email")), *((name, name) for name in names)],
        dead_letters=await _dead_letters(request, web, viewer),
        **context,
    )


@router.get(EMAIL)
async def email(
    request: Request,
    web: WebDep,
    viewer: Admin,
    recipient: Annotated[str, Query(max_length=320)] = "",
    delivery_status: Annotated[str, Query(alias="status", max_length=20)] = "",
    template: Annotated[str, Query(max_length=100)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
    replayed: Annotated[int | None, Query(ge=0, le=REPLAY_LIMIT)] = None,
) -> Response:
    _ = web.renderer.gettext_for(request)
    values = {
        "recipient": recipient.strip(),
        "status": delivery_status if delivery_status in STATUSES else "",
        "template": template.strip(),
    }
    notice = None
    if replayed is not None:
        notice = _("%(count)s dead letters were put back in the queue.", count=replayed)
    return await _email_page(request, web, viewer, values, cursor, notice=notice)


async def _delivery(request: Request, web: Web, viewer: Viewer, delivery_id: uuid.UUID) -> dict[str, Any]:
    try:
        found = await admin_call(request, web, viewer, "GET", f"/notifications/deliveries/{delivery_id}")
    except ApiError as exc:
        if exc.status == status.HTTP_404_NOT_FOUND:
            raise StarletteHTTPException(status.HTTP_404_NOT_FOUND) from exc
        raise
    return _shown(request, web, viewer, found)


async def _delivery_page(
    request: Request,
    web: Web,
    viewer: Viewer,
    delivery_id: uuid.UUID,
    status_code: int = status.HTTP_200_OK,
    **context: Any,
) -> Response:
    delivery = await _delivery(request, web, viewer, delivery_id)
    return web.renderer.page(
        request, "admin_delivery.html", status_code, user=viewer.user, delivery=delivery, **context
    )


@router.get(EMAIL + "/deliveries/{delivery_id}")
async def delivery_page(
    delivery_id: uuid.UUID,
    request: Request,
    web: WebDep,
    viewer: Admin,
    resent: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    _ = web.renderer.gettext_for(request)
    notice = _("The email was sent again: this is the new delivery.") if resent else None
    return await _delivery_page(request, web, viewer, delivery_id, notice=notice)


@router.post(EMAIL + "/deliveries/{delivery_id}/resend")
async def resend(
    delivery_id: uuid.UUID, request: Request, web: WebDep, form: Form, viewer: Admin
) -> Response:
    """The first post shows the confirmation; the confirmation's post (`confirmed`) resends."""
    _ = web.renderer.gettext_for(request)
    delivery = await _delivery(request, web, viewer, delivery_id)
    if field(form, "confirmed", 10) != "yes":
        return confirm_action(
            request,
            web,
            viewer,
            action_url=f"{EMAIL}/deliveries/{delivery_id}/resend",
            back_url=f"{EMAIL}/deliveries/{delivery_id}",
            question=_(
                "Send “%(subject)s” to %(recipient)s again?",
                subject=delivery["subject"],
                recipient=delivery["recipient"],
            ),
            danger=False,
        )
    try:
        again = await admin_call(
            request, web, viewer, "POST", f"/notifications/deliveries/{delivery_id}/resend"
        )
    except ApiError as exc:
        alerts = {
            "resend-needs-new-secret": _(
                "This email carried a one-time link or code, which is never stored: the person asks "
                "for a new one instead."
            ),
            "not-resendable": _("This email cannot be sent again."),
            "recipient-rejected": _("The mail server refused the address. Nothing was sent."),
            "smtp-unavailable": _("The mail server cannot be reached. Please try again in a minute."),
        }
        if exc.slug not in alerts:
            raise
        return await _delivery_page(
            request, web, viewer, delivery_id, status.HTTP_409_CONFLICT, alert=alerts[exc.slug]
        )
    return RedirectResponse(f"{EMAIL}/deliveries/{again['id']}?resent=1", status.HTTP_303_SEE_OTHER)


@router.post(EMAIL + "/dead-letters/replay")
async def replay(request: Request, web: WebDep, form: Form, viewer: Admin) -> Response:
    """The first post shows the confirmation (with the count); the confirmation's post replays."""
    _ = web.renderer.gettext_for(request)
    if field(form, "confirmed", 10) != "yes":
        count = await _dead_letters(request, web, viewer)
        return confirm_action(
            request,
            web,
            viewer,
            action_url=f"{EMAIL}/dead-letters/replay",
            back_url=EMAIL,
            question=_(
                "Put the %(count)s dead letters back in the queue? Each is handled again: emails "
                "already sent are not sent twice.",
                count=count if count is not None else "?",
            ),
            danger=False,
        )
    try:
        answer = await admin_call(
            request,
            web,
            viewer,
            "POST",
            "/notifications/dead-letters/replay",
            params={"limit": str(REPLAY_LIMIT)},
        )
    except ApiError as exc:
        if exc.status != status.HTTP_503_SERVICE_UNAVAILABLE:
            raise
        alert = _("The message broker cannot be reached. Please try again in a minute.")
        values = {"recipient": "", "status": "", "template": ""}
        return await _email_page(request, web, viewer, values, status_code=exc.status, alert=alert)
    return RedirectResponse(f"{EMAIL}?replayed={int(answer['replayed'])}", status.HTTP_303_SEE_OTHER)
