"""An organization's billing page (/orgs/{org_id}/billing): its plan and seats, subscribing it through
Stripe Checkout (billed per member on a per-seat plan) and its Customer Portal, and its payments.

billing-service answers only a token acting in the organization (its `org_id` claim): anyone else,
including the same person signed in personally, is told to switch to the organization first. Only
its owners and admins may subscribe it or open its portal; billing says so (403) and the page tells
them. The organization pages themselves (members, invitations, switching) are auth's."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response

from gatehouse_web.api import ApiError
from gatehouse_web.pages.billing import (
    LIVE,
    PLAN_CODE,
    Dates,
    _refused,
    _stripe_page,
    describe_status,
    listed_payments,
    offered_plans,
    price_of,
    why_not,
)
from gatehouse_web.web import Form, SignedIn, Viewer, WebDep, client_of, field

router = APIRouter(include_in_schema=False)


def _page(org_id: uuid.UUID) -> str:
    return f"/orgs/{org_id}/billing"


def org_why_not(error: ApiError, _: Any) -> str:
    messages = {
        "org-billing-forbidden": _(
            "Only the organization's owners and admins can subscribe it or manage its billing."
        ),
        "org-not-found": _(
            "Act in this organization to see its billing: switch to it from your organizations, "
            "then come back."
        ),
        "seat-limit-exceeded": _(
            "The organization has more members than this plan allows. Choose a bigger plan."
        ),
        "subscription-exists": _("The organization already has a subscription."),
    }
    return messages.get(error.slug or "") or why_not(error, _)


async def _org_call(request: Request, web: WebDep, viewer: Viewer, path: str) -> Any:
    """A read of the org's billing: None when billing has nothing (never subscribed)."""
    try:
        return await web.api.call(
            "GET", path, params={"limit": "24"}, token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        if exc.slug == "subscription-not-found":
            return None
        raise


async def _org_billing(
    request: Request, web: WebDep, viewer: Viewer, org_id: uuid.UUID, status_code: int = 200, **context: Any
) -> Response:
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    base = f"/billing/orgs/{org_id}"
    try:
        subscription, payments = await asyncio.gather(
            _org_call(request, web, viewer, f"{base}/subscription"),
            _org_call(request, web, viewer, f"{base}/payments"),
        )
    except ApiError as exc:
        if exc.slug != "org-not-found":
            raise
        return web.renderer.page(
            request,
            "org_billing.html",
            status.HTTP_404_NOT_FOUND,
            user=viewer.user,
            org_id=org_id,
            outsider=True,
            alert=org_why_not(exc, _),
        )
    plans = await web.api.call("GET", "/billing/plans", params={"limit": "50"}, caller=client_of(request))
    day = Dates(locale, viewer)
    mine = None
    if subscription is not None:
        label, tone = describe_status(str(subscription["status"]), _)
        mine = subscription | {
            "label": label,
            "tone": tone,
            "price": price_of(subscription | {"interval_count": 1}, locale, _),
            "live": subscription["status"] in LIVE,
            "checkout_url": _stripe_page(web, subscription.get("checkout_url")),
            "renews": day(subscription.get("current_period_end")),
        }
    current = mine["plan"]["code"] if mine is not None and mine["live"] else None
    offered = offered_plans(plans, current, locale, _)
    listed = listed_payments(payments or {"items": []}, day, locale, _)
    return web.renderer.page(
        request,
        "org_billing.html",
        status_code,
        user=viewer.user,
        org_id=org_id,
        outsider=False,
        subscription=mine,
        plans=offered,
        payments=listed,
        **context,
    )


@router.get("/orgs/{org_id}/billing")
async def org_billing(request: Request, web: WebDep, viewer: SignedIn, org_id: uuid.UUID) -> Response:
    return await _org_billing(request, web, viewer, org_id)


@router.post("/orgs/{org_id}/billing/subscribe")
async def subscribe_org(
    request: Request, web: WebDep, form: Form, viewer: SignedIn, org_id: uuid.UUID
) -> Response:
    _ = web.renderer.gettext_for(request)
    plan_code = field(form, "plan_code", 64)
    if not PLAN_CODE.fullmatch(plan_code):
        return await _org_billing(
            request, web, viewer, org_id, 400, alert=_("Choose one of the plans below.")
        )
    try:
        answer = await web.api.call(
            "POST",
            "/billing/subscriptions/subscribe",
            json={"plan_code": plan_code, "org_id": str(org_id)},
            token=viewer.token,
            caller=client_of(request),
        )
        target = answer.get("checkout_url")
    except ApiError as exc:
        if exc.slug != "checkout-in-progress":
            return await _org_billing(request, web, viewer, org_id, _refused(exc), alert=org_why_not(exc, _))
        # The org's payment for this plan is open already (a double click): go on with it.
        pending = await _org_call(request, web, viewer, f"/billing/orgs/{org_id}/subscription")
        target = (pending or {}).get("checkout_url")
    url = _stripe_page(web, target)
    if url is None:
        raise ApiError(status=502, title="checkout URL not on an allowed origin")
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)


@router.post("/orgs/{org_id}/billing/manage")
async def manage_org(
    request: Request, web: WebDep, form: Form, viewer: SignedIn, org_id: uuid.UUID
) -> Response:
    _ = web.renderer.gettext_for(request)
    try:
        answer = await web.api.call(
            "POST",
            f"/billing/orgs/{org_id}/portal",
            json={"return_url": web.settings.public_url.rstrip("/") + _page(org_id)},
            token=viewer.token,
            caller=client_of(request),
        )
    except ApiError as exc:
        return await _org_billing(request, web, viewer, org_id, _refused(exc), alert=org_why_not(exc, _))
    url = _stripe_page(web, answer.get("url"))
    if url is None:
        raise ApiError(status=502, title="portal URL not on an allowed origin")
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)
