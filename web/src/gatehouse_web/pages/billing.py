"""The billing pages (/billing): the plans and my subscription, subscribing through Stripe Checkout
(and the page Checkout returns to, which waits for the webhook), changing plan with the proration
preview shown first, cancelling at the period end and resuming, and my payments.

All of it is billing-service's public API through the gateway. The gateway routes these exact paths
to the web front although they lie under billing's `/billing` prefix (gateway settings'
WEB_PAGES_UNDER_API): the emails link to `/billing`, Checkout returns to `/billing/success` and
`/billing/cancel`, and the "Manage billing" button posts to `/billing/manage`, which sends the person
to Stripe's Customer Portal (billing's `POST /billing/portal`) and is where the portal links back to."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response

from gatehouse_web.api import ApiError
from gatehouse_web.i18n import long_date, money, profile_zone
from gatehouse_web.web import Form, SignedIn, Viewer, WebDep, client_of, explain, field

router = APIRouter(include_in_schema=False)

PAGE = "/billing"
PLAN_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,200}")
# Statuses in which a subscription holds access or is about to (billing's HOLDING_STATUSES).
LIVE = ("checkout_pending", "incomplete", "trialing", "active", "past_due", "unpaid")
CHANGEABLE = ("trialing", "active")
CANCELABLE = ("trialing", "active", "past_due")
DONE = ("changed", "cancelled", "resumed", "abandoned")


def price_of(plan: dict[str, Any], locale: str, _: Callable[..., str]) -> str:
    amount = money(int(plan["amount"]), str(plan["currency"]), locale)
    count = int(plan.get("interval_count") or 1)
    interval = str(plan["interval"])
    if count == 1:
        each = {
            "day": _("%(price)s per day", price=amount),
            "week": _("%(price)s per week", price=amount),
            "month": _("%(price)s per month", price=amount),
            "year": _("%(price)s per year", price=amount),
        }
        return each.get(interval, amount)
    every = {
        "day": _("%(price)s every %(count)s days", price=amount, count=count),
        "week": _("%(price)s every %(count)s weeks", price=amount, count=count),
        "month": _("%(price)s every %(count)s months", price=amount, count=count),
        "year": _("%(price)s every %(count)s years", price=amount, count=count),
    }
    return every.get(interval, amount)


def describe_status(status_value: str, _: Callable[..., str]) -> tuple[str, str]:
    """(what the status means to a person, the badge's style)."""
    labels = {
        "checkout_pending": (_("waiting for payment"), "warn"),
        "checkout_expired": (_("not paid"), "warn"),
        "incomplete": (_("payment incomplete"), "warn"),
        "incomplete_expired": (_("not paid"), "warn"),
        "trialing": (_("free trial"), "ok"),
        "active": (_("active"), "ok"),
        "past_due": (_("payment overdue"), "warn"),
        "unpaid": (_("unpaid"), "warn"),
        "canceled": (_("ended"), "warn"),
    }
    return labels.get(status_value, (status_value, "warn"))


# What billing calls a payment that was paid (and perhaps refunded or disputed since).
PAID_STATUSES = ("paid", "partially_refunded", "refunded", "disputed")


def describe_payment_label(payment: dict[str, Any], _: Callable[..., str]) -> tuple[str, str]:
    labels = {
        "paid": (_("paid"), "ok"),
        "open": (_("due"), "warn"),
        "requires_action": (_("needs your action"), "warn"),
        "failed": (_("failed"), "warn"),
        "void": (_("void"), "warn"),
        "uncollectible": (_("not collected"), "warn"),
        "partially_refunded": (_("partly refunded"), "ok"),
        "refunded": (_("refunded"), "ok"),
        "disputed": (_("disputed"), "warn"),
    }
    if payment.get("dispute_status") == "lost":
        return (_("dispute lost"), "warn")
    return labels.get(str(payment["status"]), (str(payment["status"]), "warn"))


def _payment_reason(reason: str | None, _: Callable[..., str]) -> str:
    reasons = {
        "subscription_create": _("First payment"),
        "subscription_cycle": _("Renewal"),
        "subscription_update": _("Plan change"),
    }
    return reasons.get(reason or "", _("Payment"))


class Dates:
    """Days in the person's language and time zone."""

    def __init__(self, locale: str, viewer: Viewer) -> None:
        self.locale, self.zone = locale, profile_zone(viewer.user)

    def __call__(self, value: Any) -> str:
        if not value:
            return ""
        moment = datetime.fromisoformat(str(value))
        return long_date((moment.astimezone(self.zone) if self.zone else moment).date(), self.locale)


def offered_plans(
    plans: dict[str, Any], current: str | None, locale: str, _: Callable[..., str]
) -> list[dict[str, Any]]:
    """The plans on offer, each with its price in words and whether it is `current` (a code)."""
    return [
        plan | {"price": price_of(plan, locale, _), "current": plan["code"] == current}
        for plan in plans["items"]
    ]


def listed_payments(
    payments: dict[str, Any], day: Dates, locale: str, _: Callable[..., str]
) -> list[dict[str, Any]]:
    """Payments as the payment list shows them: when, what for, how much, and how it stands."""
    return [
        payment
        | {
            "date": day(payment["paid_at"] or payment["created_at"]),
            "what": _payment_reason(payment.get("billing_reason"), _),
            "amount": money(
                int(payment["amount_paid"] if payment["status"] in PAID_STATUSES else payment["amount_due"]),
                str(payment["currency"]),
                locale,
            ),
            "label": describe_payment_label(payment, _),
        }
        for payment in payments["items"]
    ]


def describe_subscription(subscription: dict[str, Any], day: Dates, _: Callable[..., str]) -> dict[str, Any]:
    """What the page says of my subscription: its status, price and the one date that matters."""
    state = str(subscription["status"])
    label, tone = describe_status(state, _)
    if state in CANCELABLE and subscription.get("cancel_at_period_end"):
        label, tone = _("cancelled, access until the period end"), "warn"
    price = price_of(subscription | {"interval_count": 1}, day.locale, _)
    end = day(subscription.get("cancel_at") or subscription.get("current_period_end"))
    if state in ("trialing", "active", "past_due") and subscription.get("cancel_at_period_end"):
        when = _("Cancelled: you keep access until %(date)s. Changed your mind? Resume it.", date=end)
    elif state == "trialing":
        when = _(
            "Your free trial ends on %(date)s; the first payment is then.",
            date=day(subscription["trial_end"]),
        )
    elif state == "active":
        when = _("Renews on %(date)s.", date=day(subscription["current_period_end"]))
    elif state == "past_due":
        when = _("Your last payment failed. We will try your card again; your access runs on meanwhile.")
    elif state in ("checkout_pending", "incomplete"):
        when = _("The payment is not finished yet.")
    elif state == "unpaid":
        when = _("Payments failed; the subscription is on hold.")
    else:
        when = _(
            "Ended on %(date)s.", date=day(subscription.get("ended_at") or subscription.get("canceled_at"))
        )
    return {
        **subscription,
        "label": label,
        "tone": tone,
        "price": price,
        "when": when,
        # On a plan (to switch from); with only a Checkout open, any plan may still be chosen.
        "holds_plan": state in LIVE and state != "checkout_pending",
        "changeable": state in CHANGEABLE and not subscription.get("cancel_at_period_end"),
        "cancelable": state in CANCELABLE and not subscription.get("cancel_at_period_end"),
        "resumable": state in CANCELABLE and bool(subscription.get("cancel_at_period_end")),
        "pending_checkout": state == "checkout_pending",
    }


async def _described(request: Request, web: WebDep, viewer: Viewer) -> dict[str, Any] | None:
    subscription = await _my_subscription(request, web, viewer)
    if subscription is None:
        return None
    locale = getattr(request.state, "locale", "en")
    return describe_subscription(subscription, Dates(locale, viewer), web.renderer.gettext_for(request))


async def _my_subscription(request: Request, web: WebDep, viewer: Viewer) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await web.api.call(
            "GET", "/billing/subscriptions/me", token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        if exc.status == 404:  # never subscribed
            return None
        raise
    return found


def _stripe_page(web: WebDep, url: object) -> str | None:
    """A Stripe page billing handed us (Checkout, the Customer Portal), if it is on an origin we send
    people to (never an open redirect)."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if (
        parts.scheme not in ("http", "https")
        or "@" in parts.netloc
        or origin not in web.settings.checkout_origins
    ):
        return None
    return url


async def _billing(
    request: Request, web: WebDep, viewer: Viewer, status_code: int = 200, **context: Any
) -> Response:
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    caller = client_of(request)
    plans, subscription, payments, card = await asyncio.gather(
        web.api.call("GET", "/billing/plans", params={"limit": "50"}, caller=caller),
        _my_subscription(request, web, viewer),
        web.api.call(
            "GET", "/billing/payments/me", params={"limit": "24"}, token=viewer.token, caller=caller
        ),
        _my_card(request, web, viewer),
    )
    day = Dates(locale, viewer)
    mine = describe_subscription(subscription, day, _) if subscription else None
    if mine is not None and mine["pending_checkout"]:
        mine["checkout_url"] = _stripe_page(web, mine.get("checkout_url"))
    current = mine["plan"]["code"] if mine is not None and mine["holds_plan"] else None
    offered = offered_plans(plans, current, locale, _)
    listed = listed_payments(payments, day, locale, _)
    return web.renderer.page(
        request,
        "billing.html",
        status_code,
        user=viewer.user,
        plans=offered,
        subscription=mine,
        payments=listed,
        card=card,
        **context,
    )


async def _my_card(request: Request, web: WebDep, viewer: Viewer) -> dict[str, Any] | None:
    try:
        card: dict[str, Any] = await web.api.call(
            "GET", "/billing/payment-method/me", token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        if exc.status == 404:  # no card on file (never subscribed)
            return None
        raise
    return card


def _done_notice(request: Request, web: WebDep) -> str | None:
    """The message after a change (POST, then a redirect here with `?done=…`)."""
    _ = web.renderer.gettext_for(request)
    done = request.query_params.get("done")
    notices = {
        "changed": _("Your plan is changed."),
        "cancelled": _(
            "Your subscription is cancelled at the end of the period. You can resume it until then."
        ),
        "resumed": _("Your subscription goes on: it renews as before."),
        "abandoned": _("The unfinished payment is abandoned. Nothing was charged."),
    }
    return notices.get(done or "")


def why_not(error: ApiError, _: Callable[..., str]) -> str:
    """A billing call's refusal as a person can act on it."""
    messages = {
        "subscription-exists": _("You already have a subscription. To move to another plan, switch to it."),
        "email-not-verified": _(
            "Confirm your email address first: open the link we emailed you "
            "(your account page can send it again)."
        ),
        "account-inactive": _("This account is deactivated, so it cannot subscribe."),
        "plan-not-found": _("That plan is not offered any more. Choose another one."),
        "plan-not-available": _("That plan is not offered any more. Choose another one."),
        "same-plan": _("You are on that plan already."),
        "incompatible-plan": _(
            "That plan is billed in another currency; it cannot replace yours. "
            "Cancel yours first, then subscribe to it."
        ),
        "subscription-not-changeable": _(
            "Your subscription cannot be changed right now. "
            "Finish or abandon any open payment first, and check its state below."
        ),
        "subscription-not-found": _("You have no subscription to change."),
        "billing-account-not-found": _("There is nothing to manage yet: subscribe to a plan first."),
        "payment-declined": _(
            "Your card was declined, so nothing has changed. Try again, or use another card."
        ),
        "invalid-proration-date": _(
            "The price you saw has changed since. Look at the new one before you confirm."
        ),
    }
    if error.slug in messages:
        return messages[error.slug]
    if error.status in (502, 503):
        seconds = error.retry_after
        if seconds:
            return _(
                "Payments are unavailable for a moment. Please try again in %(seconds)s seconds.",
                seconds=seconds,
            )
        return _("Payments are unavailable for a moment. Please try again in a minute.")
    return explain(error, _)[1] or _("Something went wrong. Please try again.")


async def _no_such_plan(request: Request, web: WebDep, viewer: Viewer) -> Response:
    _ = web.renderer.gettext_for(request)
    return await _billing(
        request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=_("Choose one of the plans below.")
    )


async def _change_then_back(
    request: Request,
    web: WebDep,
    viewer: Viewer,
    path: str,
    done: Callable[[dict[str, Any]], str],
    body: dict[str, Any] | None = None,
) -> Response:
    """A change through billing's API, then back to /billing saying what `done` names (a redirect,
    so reloading the page sends nothing again); a refusal is explained on /billing."""
    try:
        answer = await web.api.call("POST", path, json=body, token=viewer.token, caller=client_of(request))
    except ApiError as exc:
        _ = web.renderer.gettext_for(request)
        return await _billing(request, web, viewer, _refused(exc), alert=why_not(exc, _))
    return RedirectResponse(f"{PAGE}?done={done(answer)}", status.HTTP_303_SEE_OTHER)


def _refused(error: ApiError) -> int:
    """The page's status for a refused call: the API's 4xx, a 503 when payments are down."""
    if error.status >= 500:
        return status.HTTP_503_SERVICE_UNAVAILABLE
    return error.status if error.status in (402, 403, 404, 409, 422, 429) else status.HTTP_400_BAD_REQUEST


@router.get(PAGE)
async def billing(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    return await _billing(request, web, viewer, notice=_done_notice(request, web))


@router.get(f"{PAGE}/cancel")
async def checkout_cancelled(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    """Where Checkout's "back" link returns: nothing was bought."""
    _ = web.renderer.gettext_for(request)
    notice = _("You left the payment page, so nothing was charged. Choose a plan whenever you are ready.")
    return await _billing(request, web, viewer, notice=notice)


@router.post(f"{PAGE}/subscribe")
async def subscribe(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    plan_code = field(form, "plan_code", 64)
    if not PLAN_CODE.fullmatch(plan_code):
        return await _no_such_plan(request, web, viewer)
    try:
        answer = await web.api.call(
            "POST",
            "/billing/subscriptions/subscribe",
            json={"plan_code": plan_code},
            token=viewer.token,
            caller=client_of(request),
        )
        target = answer.get("checkout_url")
    except ApiError as exc:
        if exc.slug != "checkout-in-progress":
            return await _billing(request, web, viewer, _refused(exc), alert=why_not(exc, _))
        # A payment for this plan is open already (a double click, or back from Checkout): go on with it.
        target = ((await _my_subscription(request, web, viewer)) or {}).get("checkout_url")
    url = _stripe_page(web, target)
    if url is None:
        raise ApiError(status=502, title="checkout URL not on an allowed origin")
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)


@router.get(f"{PAGE}/success")
async def checkout_success(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    """Where Checkout returns after paying. The subscription starts when billing has the webhook,
    usually within a second: until then the page says so, with a link to look again (and
    static/billing.js looks again by itself)."""
    session_id = request.query_params.get("session_id", "")
    again = f"{PAGE}/success" + (f"?session_id={session_id}" if SESSION_ID.fullmatch(session_id) else "")
    mine = await _described(request, web, viewer)
    state = mine["status"] if mine else None
    if state in ("trialing", "active", "past_due"):
        outcome = "done"
    elif state in (None, "checkout_pending", "incomplete"):
        outcome = "pending"
    else:
        outcome = "failed"
    return web.renderer.page(
        request, "billing_success.html", user=viewer.user, subscription=mine, outcome=outcome, again=again
    )


async def _preview(request: Request, web: WebDep, viewer: Viewer, plan_code: str) -> dict[str, Any]:
    answer: dict[str, Any] = await web.api.call(
        "GET",
        "/billing/subscriptions/upgrade/preview",
        # This page switches plans now (its wording says so); billing's default for a downgrade is
        # the period end, so ask for the change made now, and preview that.
        params={"plan_code": plan_code, "when": "now"},
        token=viewer.token,
        caller=client_of(request),
    )
    return answer


@router.get(f"{PAGE}/change")
async def change_preview(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    """What moving to another plan costs, shown before anything changes."""
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    plan_code = request.query_params.get("plan", "")
    if not PLAN_CODE.fullmatch(plan_code):
        return await _no_such_plan(request, web, viewer)
    plan_call = web.api.call("GET", "/billing/plans", params={"limit": "50"}, caller=client_of(request))
    try:
        plans, subscription, preview = await asyncio.gather(
            plan_call, _my_subscription(request, web, viewer), _preview(request, web, viewer, plan_code)
        )
    except ApiError as exc:
        return await _billing(request, web, viewer, _refused(exc), alert=why_not(exc, _))
    target = next((plan for plan in plans["items"] if plan["code"] == plan_code), None)
    if target is None or subscription is None:
        return await _billing(
            request,
            web,
            viewer,
            status.HTTP_404_NOT_FOUND,
            alert=_("That plan is not offered any more. Choose another one."),
        )
    currency = str(preview["currency"])
    credit = -sum(
        int(line["amount"]) for line in preview["lines"] if line["proration"] and line["amount"] < 0
    )
    lines = [
        {"description": line.get("description") or "", "amount": money(int(line["amount"]), currency, locale)}
        for line in preview["lines"]
    ]
    return web.renderer.page(
        request,
        "billing_change.html",
        user=viewer.user,
        current=describe_subscription(subscription, Dates(locale, viewer), _),
        target=target | {"price": price_of(target, locale, _)},
        preview=preview,
        amount_due=money(int(preview["amount_due"]), currency, locale),
        credit=money(credit, currency, locale) if credit else None,
        lines=lines,
    )


@router.post(f"{PAGE}/change")
async def change_plan(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    plan_code, proration_date = field(form, "plan_code", 64), field(form, "proration_date", 20)
    if not PLAN_CODE.fullmatch(plan_code):
        return await _no_such_plan(request, web, viewer)
    body: dict[str, Any] = {"plan_code": plan_code, "when": "now"}
    if proration_date.isdigit():
        body["proration_date"] = int(proration_date)  # charged exactly what the preview showed
    return await _change_then_back(
        request, web, viewer, "/billing/subscriptions/upgrade", lambda _answer: "changed", body
    )


@router.get(f"{PAGE}/cancellation")
async def cancellation(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    """Cancel, asked once more: what happens (access until the period end) before it does."""
    mine = await _described(request, web, viewer)
    if mine is None or not (mine["cancelable"] or mine["pending_checkout"]):
        return RedirectResponse(PAGE, status.HTTP_303_SEE_OTHER)
    until = Dates(getattr(request.state, "locale", "en"), viewer)(mine.get("current_period_end"))
    return web.renderer.page(request, "billing_cancel.html", user=viewer.user, subscription=mine, until=until)


@router.post(f"{PAGE}/cancellation")
async def cancel(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    # A live subscription is cancelled at its period end; an open Checkout is abandoned.
    return await _change_then_back(
        request,
        web,
        viewer,
        "/billing/subscriptions/cancel",
        lambda answer: "cancelled" if answer.get("cancel_at_period_end") else "abandoned",
    )


@router.post(f"{PAGE}/manage")
async def manage(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    """To Stripe's Customer Portal (card, invoices, cancel, switch plan), which links back here;
    what the person does there reaches billing as webhooks."""
    _ = web.renderer.gettext_for(request)
    try:
        answer = await web.api.call(
            "POST",
            "/billing/portal",
            json={"return_url": web.settings.public_url.rstrip("/") + PAGE},
            token=viewer.token,
            caller=client_of(request),
        )
    except ApiError as exc:
        return await _billing(request, web, viewer, _refused(exc), alert=why_not(exc, _))
    url = _stripe_page(web, answer.get("url"))
    if url is None:
        raise ApiError(status=502, title="portal URL not on an allowed origin")
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)


@router.post(f"{PAGE}/resume")
async def resume(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    return await _change_then_back(
        request, web, viewer, "/billing/subscriptions/resume", lambda _answer: "resumed"
    )
