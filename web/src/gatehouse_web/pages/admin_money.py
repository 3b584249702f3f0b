"""The console's money pages, from billing-service's admin API: a user's billing (their
subscriptions, their payments with each invoice, and refunding a payment, all that is left or part
of it) and the Stripe event log (received, applied, ignored or failed with its error; filtered by
status, type and object; one event with its payload; retry a failed one now). Refunds and retries
are confirmed first like every console action; billing audits refunds with the admin's id.

A refund's confirmation carries a fresh Idempotency-Key: sending the same confirmation twice (a
double click, a reload) gives the one refund, never a second."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatehouse_web.api import ApiError
from gatehouse_web.i18n import moment, money, profile_zone
from gatehouse_web.pages.admin import USERS, Admin, admin_call, confirm_action
from gatehouse_web.pages.admin_catalogue import major_units, minor_units, stripe_alert
from gatehouse_web.pages.billing import describe_payment_label, describe_status
from gatehouse_web.web import Form, Viewer, Web, WebDep, field

router = APIRouter(include_in_schema=False)

EVENTS = "/admin/billing/stripe-events"
PAGE_SIZE = 25
EVENT_STATUSES = ("pending", "processed", "ignored", "failed")
REASONS = ("requested_by_customer", "duplicate", "fraudulent")
REFUNDABLE = ("paid", "partially_refunded")
EventId = Annotated[str, Path(max_length=255, pattern=r"^evt_[A-Za-z0-9_]+$")]


def _not_found() -> StarletteHTTPException:
    return StarletteHTTPException(status.HTTP_404_NOT_FOUND)


# ---- a user's billing ----


async def _user(request: Request, web: Web, viewer: Viewer, user_id: uuid.UUID) -> dict[str, Any]:
    try:
        user: dict[str, Any] = await admin_call(request, web, viewer, "GET", f"/auth/admin/users/{user_id}")
    except ApiError as exc:
        if exc.status == status.HTTP_404_NOT_FOUND:
            raise _not_found() from exc
        raise
    return user


def _shown_payment(
    payment: dict[str, Any], locale: str, viewer: Viewer, _: Callable[..., str]
) -> dict[str, Any]:
    zone = profile_zone(viewer.user)
    left = int(payment["amount_paid"]) - int(payment["amount_refunded"])
    refundable = payment["status"] in REFUNDABLE and left > 0 and payment.get("dispute_status") != "open"
    return {
        **payment,
        "label": describe_payment_label(payment, _),
        "paid": money(int(payment["amount_paid"]), str(payment["currency"]), locale),
        "refunded": money(int(payment["amount_refunded"]), str(payment["currency"]), locale)
        if payment["amount_refunded"]
        else None,
        "left": money(left, str(payment["currency"]), locale),
        "left_units": major_units(left, str(payment["currency"])),
        "refundable": refundable,
        "created": moment(payment["created_at"], locale, zone),
    }


async def _payments(request: Request, web: Web, viewer: Viewer, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every payment of the user, newest first (a person's payments are a few per year)."""
    found: list[dict[str, Any]] = []
    cursor = ""
    for _page in range(10):
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = await admin_call(
            request, web, viewer, "GET", f"/billing/admin/users/{user_id}/payments", params=params
        )
        found.extend(page["items"])
        cursor = page["next_cursor"] or ""
        if not cursor:
            break
    return found


async def _billing_page(
    request: Request,
    web: Web,
    viewer: Viewer,
    user_id: uuid.UUID,
    status_code: int = status.HTTP_200_OK,
    **context: Any,
) -> Response:
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    zone = profile_zone(viewer.user)
    subject = await _user(request, web, viewer, user_id)
    subscriptions = await admin_call(
        request, web, viewer, "GET", f"/billing/admin/users/{user_id}/subscriptions", params={"limit": "100"}
    )

    def when(value: Any) -> str | None:
        return moment(value, locale, zone) if value else None

    shown = [
        {
            **item,
            "label": describe_status(str(item["status"]), _),
            "price": money(int(item["amount"]), str(item["currency"]), locale),
            "period_end": when(item.get("current_period_end")),
            "ended": when(item.get("ended_at")),
        }
        for item in subscriptions["items"]
    ]
    payments = [_shown_payment(p, locale, viewer, _) for p in await _payments(request, web, viewer, user_id)]
    return web.renderer.page(
        request,
        "admin_user_billing.html",
        status_code,
        user=viewer.user,
        subject=subject,
        subscriptions=shown,
        payments=payments,
        reasons=_reasons(_),
        **context,
    )


def _reasons(_: Callable[..., str]) -> list[tuple[str, str]]:
    return [
        ("requested_by_customer", _("Asked for by the customer")),
        ("duplicate", _("Charged twice")),
        ("fraudulent", _("Fraudulent")),
    ]


@router.get(USERS + "/{user_id}/billing")
async def user_billing(
    user_id: uuid.UUID,
    request: Request,
    web: WebDep,
    viewer: Admin,
    refunded: Annotated[int | None, Query(ge=1, le=99_999_999)] = None,
    currency: Annotated[str, Query(pattern=r"^[a-z]{3}$")] = "usd",
) -> Response:
    """`?refunded=` (minor units) and `currency` say which refund was just made."""
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    notice = None
    if refunded is not None:
        notice = _("The refund is made: %(amount)s.", amount=money(refunded, currency, locale))
    return await _billing_page(request, web, viewer, user_id, notice=notice)


@router.post(USERS + "/{user_id}/billing/payments/{payment_id}/refund")
async def refund(
    user_id: uuid.UUID, payment_id: uuid.UUID, request: Request, web: WebDep, form: Form, viewer: Admin
) -> Response:
    """The form's post checks the amount and asks to confirm (with a new Idempotency-Key); the
    confirmation's post refunds, once per key."""
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    payment = next(
        (p for p in await _payments(request, web, viewer, user_id) if p["id"] == str(payment_id)), None
    )
    if payment is None:
        raise _not_found()
    shown = _shown_payment(payment, locale, viewer, _)
    currency = str(payment["currency"])
    left = int(payment["amount_paid"]) - int(payment["amount_refunded"])
    typed = field(form, "amount", 30)
    reason = field(form, "reason", 40)
    amount = minor_units(typed, currency) if typed else left
    alert = None
    if not shown["refundable"]:
        alert = _(
            "This payment cannot be refunded: only a paid payment with something left, not disputed, can."
        )
    elif amount is None or amount <= 0:
        alert = _(
            "Give the amount to refund in %(currency)s, such as 12.50, or leave it empty for all "
            "that is left.",
            currency=currency.upper(),
        )
    elif amount > left:
        alert = _("At most %(left)s is left to refund on this payment.", left=shown["left"])
    elif reason and reason not in REASONS:
        alert = _("Choose a reason from the list.")
    if alert is not None:
        return await _billing_page(request, web, viewer, user_id, 422, alert=alert)
    assert amount is not None
    what = money(amount, currency, locale)
    key = field(form, "idempotency_key", 100)
    if field(form, "confirmed", 10) != "yes" or not key:
        return confirm_action(
            request,
            web,
            viewer,
            action_url=f"{USERS}/{user_id}/billing/payments/{payment_id}/refund",
            back_url=f"{USERS}/{user_id}/billing",
            hidden={"amount": typed, "reason": reason, "idempotency_key": str(uuid.uuid4())},
            question=_(
                "Refund %(amount)s of the payment of %(paid)s made %(when)s? The money goes back to the "
                "customer's card; it cannot be undone.",
                amount=what,
                paid=shown["paid"],
                when=shown["created"],
            ),
            danger=True,
        )
    body = {"amount": amount, **({"reason": reason} if reason else {})}
    try:
        await admin_call(
            request,
            web,
            viewer,
            "POST",
            f"/billing/admin/payments/{payment_id}/refund",
            json=body,
            headers={"Idempotency-Key": key},
        )
    except ApiError as exc:
        alerts = {
            "payment-not-refundable": _(
                "This payment cannot be refunded (it is not paid, or it is disputed)."
            ),
            "refund-exceeds-payment": _("That is more than is left of the payment. Nothing was refunded."),
            "idempotency-key-reused": _(
                "This confirmation was already used for another refund. Start again."
            ),
        }
        alert = alerts.get(exc.slug) or stripe_alert(exc, _)
        if alert is None:
            raise
        return await _billing_page(request, web, viewer, user_id, exc.status, alert=alert)
    done = urlencode({"refunded": amount, "currency": currency})
    return RedirectResponse(f"{USERS}/{user_id}/billing?{done}#payments", status.HTTP_303_SEE_OTHER)


# ---- the Stripe event log ----


def _event_label(value: str, _: Callable[..., str]) -> tuple[str, str]:
    labels = {
        "pending": (_("waiting"), ""),
        "processed": (_("applied"), "ok"),
        "ignored": (_("ignored"), ""),
        "failed": (_("failed"), "warn"),
    }
    return labels.get(value, (value, ""))


def _shown_event(request: Request, web: Web, viewer: Viewer, event: dict[str, Any]) -> dict[str, Any]:
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    zone = profile_zone(viewer.user)

    def when(name: str) -> str | None:
        return moment(event[name], locale, zone) if event.get(name) else None

    return {
        **event,
        "label": _event_label(str(event["status"]), _),
        "received": when("received_at"),
        "created": when("stripe_created_at"),
        "processed": when("processed_at"),
        "next_attempt": when("next_attempt_at"),
    }


@router.get(EVENTS)
async def stripe_events(
    request: Request,
    web: WebDep,
    viewer: Admin,
    event_status: Annotated[str, Query(alias="status", max_length=20)] = "",
    type: Annotated[str, Query(max_length=100)] = "",
    object_id: Annotated[str, Query(max_length=255)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    _ = web.renderer.gettext_for(request)
    values = {
        "status": event_status if event_status in EVENT_STATUSES else "",
        "type": type.strip(),
        "object_id": object_id.strip(),
    }
    params = {"limit": str(PAGE_SIZE), **{k: v for k, v in values.items() if v}}
    if cursor:
        params["cursor"] = cursor
    try:
        page = await admin_call(request, web, viewer, "GET", "/billing/admin/stripe-events", params=params)
    except ApiError as exc:
        if exc.status in (status.HTTP_400_BAD_REQUEST, 422):  # a stale cursor, a filter it refuses
            return RedirectResponse(EVENTS, status.HTTP_303_SEE_OTHER)
        raise
    return web.renderer.page(
        request,
        "admin_stripe_events.html",
        user=viewer.user,
        values=values,
        events=[_shown_event(request, web, viewer, item) for item in page["items"]],
        next_cursor=page["next_cursor"],
        statuses=[("", _("Any status")), *((s, _event_label(s, _)[0]) for s in EVENT_STATUSES)],
    )


async def _event(request: Request, web: Web, viewer: Viewer, event_id: str) -> dict[str, Any]:
    try:
        found = await admin_call(request, web, viewer, "GET", f"/billing/admin/stripe-events/{event_id}")
    except ApiError as exc:
        if exc.status == status.HTTP_404_NOT_FOUND:
            raise _not_found() from exc
        raise
    return _shown_event(request, web, viewer, found)


async def _event_page(
    request: Request, web: Web, viewer: Viewer, event_id: str, status_code: int = 200, **context: Any
) -> Response:
    event = await _event(request, web, viewer, event_id)
    payload = json.dumps(event.get("payload") or {}, indent=2, sort_keys=True)
    return web.renderer.page(
        request,
        "admin_stripe_event.html",
        status_code,
        user=viewer.user,
        event=event,
        payload=payload,
        **context,
    )


@router.get(EVENTS + "/{event_id}")
async def stripe_event(
    event_id: EventId,
    request: Request,
    web: WebDep,
    viewer: Admin,
    retried: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    _ = web.renderer.gettext_for(request)
    notice = (
        _("The event is due again: it is applied in a moment. Reload to see how it went.")
        if retried
        else None
    )
    return await _event_page(request, web, viewer, event_id, notice=notice)


@router.post(EVENTS + "/{event_id}/retry")
async def retry_stripe_event(
    event_id: EventId, request: Request, web: WebDep, form: Form, viewer: Admin
) -> Response:
    _ = web.renderer.gettext_for(request)
    event = await _event(request, web, viewer, event_id)
    if field(form, "confirmed", 10) != "yes":
        return confirm_action(
            request,
            web,
            viewer,
            action_url=f"{EVENTS}/{event_id}/retry",
            back_url=f"{EVENTS}/{event_id}",
            question=_(
                "Apply the Stripe event %(type)s (%(id)s) again now? It failed %(attempts)s times.",
                type=event["type"],
                id=event_id,
                attempts=event["attempts"],
            ),
            danger=False,
        )
    try:
        await admin_call(request, web, viewer, "POST", f"/billing/admin/stripe-events/{event_id}/retry")
    except ApiError as exc:
        if exc.slug != "stripe-event-not-failed":
            raise
        alert = _("Only a failed event can be retried: this one is %(status)s.", status=event["label"][0])
        return await _event_page(request, web, viewer, event_id, exc.status, alert=alert)
    return RedirectResponse(f"{EVENTS}/{event_id}?retried=1", status.HTTP_303_SEE_OTHER)
