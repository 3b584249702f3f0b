"""The Customer Portal page (a portal session's `url`): the customer's plan, card and invoices, with
the actions the session's configuration allows (update the card, cancel or renew, switch plan) and
a link back to the session's `return_url`. Each action goes through domain/portal.py, so it fires
the webhooks Stripe's portal fires; the page then redirects to itself (post/redirect/get)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gatehouse_emulators.stripe.domain import portal
from gatehouse_emulators.stripe.domain.state import Emulator, RequestContext
from gatehouse_emulators.stripe.domain.store import Obj
from gatehouse_emulators.stripe.domain.subscriptions import items_of, period, product_name
from gatehouse_emulators.stripe.http.edge import Runtime
from gatehouse_emulators.stripe.pages.templating import money, not_found, templates
from gatehouse_emulators.stripe.wire.errors import StripeError, invalid

DONE = {
    "card": "Your payment method was updated.",
    "cancel": "Your plan was canceled.",
    "renew": "Your plan was renewed.",
    "switch": "Your plan was changed.",
}


def _date(moment: int | None) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%B %-d, %Y") if moment else ""


def _price_view(emu: Emulator, price: Obj) -> dict[str, Any]:
    recurring = price.get("recurring") or {}
    return {
        "id": price["id"],
        "name": product_name(emu, price),
        "amount": money(price["unit_amount"] or 0, price["currency"]),
        "interval": recurring.get("interval", ""),
    }


def _subscription_view(emu: Emulator, sub: Obj) -> dict[str, Any]:
    item = items_of(sub)[0]
    price = emu.store.get(item["price"], "price") or {}
    _, end = period(sub)
    return {
        "id": sub["id"],
        "status": sub["status"],
        "price": _price_view(emu, price),
        "price_id": item["price"],
        "period_end": _date(end),
        "canceling": bool(sub["cancel_at_period_end"] or sub.get("cancel_at")),
        "cancel_at": _date(sub.get("cancel_at") or end),
        "trial_end": _date(sub["trial_end"]) if sub["status"] == "trialing" else "",
    }


def _card_view(emu: Emulator, customer: Obj, subs: list[Obj]) -> dict[str, Any] | None:
    pm_id = customer["invoice_settings"]["default_payment_method"] or next(
        (s["default_payment_method"] for s in subs if s.get("default_payment_method")), None
    )
    pm = emu.store.get(pm_id or "", "payment_method")
    if pm is None:
        return None
    card = pm["card"]
    return {
        "brand": card["display_brand"] or card["brand"],
        "last4": card["last4"],
        "exp": f"{card['exp_month']:02d}/{card['exp_year']}",
    }


def _invoices(emu: Emulator, customer_id: str) -> list[dict[str, Any]]:
    shown = emu.store.all("invoice", lambda i: i["customer"] == customer_id and i["status"] != "draft")
    return [
        {
            "number": i["number"] or i["id"],
            "date": _date(i["created"]),
            "total": money(i["total"], i["currency"]),
            "status": i["status"],
            "url": i["hosted_invoice_url"],
        }
        for i in shown
    ]


def build_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    emu = runtime.emu

    def found(session_id: str) -> tuple[Obj, Obj, Obj] | None:
        session = emu.store.get(session_id, "billing_portal.session")
        if session is None:
            return None
        config = emu.store.get(session["configuration"], "billing_portal.configuration")
        customer = emu.store.get(session["customer"], "customer")
        if config is None or customer is None:
            return None
        return session, config, customer

    def page(
        session_id: str, *, done: str | None = None, error: str | None = None, status: int = 200
    ) -> Response:
        parts = found(session_id)
        if parts is None:
            return not_found("portal session")
        session, config, customer = parts
        subs = portal.live_subscriptions(emu, customer["id"])
        features = config["features"]
        views = [_subscription_view(emu, s) for s in subs]
        current = {v["price_id"] for v in views}
        offered = [
            _price_view(emu, price)
            for price_id in portal.switchable_prices(config)
            if (price := emu.store.get(price_id, "price")) is not None and price["active"]
        ]
        html = templates.get_template("portal.html").render(
            session=session,
            customer=customer,
            features=features,
            subscriptions=views,
            offered=[p for p in offered if p["id"] not in current],
            card=_card_view(emu, customer, subs),
            invoices=_invoices(emu, customer["id"]) if features["invoice_history"]["enabled"] else [],
            headline=config["business_profile"]["headline"],
            return_host=urlsplit(session["return_url"]).netloc,
            action=f"/billing_portal/{session['id']}",
            done=DONE.get(done or ""),
            error=error,
            this_year=datetime.fromtimestamp(emu.now(), UTC).year,
        )
        return HTMLResponse(html, status_code=status)

    @router.get("/billing_portal/{session_id}")
    async def show(session_id: str, request: Request) -> Response:
        return page(session_id, done=request.query_params.get("done"))

    @router.post("/billing_portal/{session_id}")
    async def act(session_id: str, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        action = form.get("action", "")

        def work() -> StripeError | None:
            parts = found(session_id)
            if parts is None:
                return StripeError(404, "No such portal session")
            _, config, customer = parts
            try:
                _perform(emu, config, customer, action, form)
            except StripeError as exc:
                return exc
            return None

        error = await runtime.run(work, RequestContext(base_url=runtime.base_url(request)))
        if error is not None:
            if error.status == 404:
                return not_found("portal session")
            return page(session_id, error=error.message, status=error.status)
        return RedirectResponse(f"/billing_portal/{session_id}?done={action}", status_code=303)

    return router


def _perform(emu: Emulator, config: Obj, customer: Obj, action: str, form: dict[str, str]) -> None:
    features = config["features"]
    if action == "card":
        if not features["payment_method_update"]["enabled"]:
            raise invalid("This portal does not update payment methods.")
        try:
            exp_month, exp_year = int(form.get("exp_month", "")), int(form.get("exp_year", ""))
        except ValueError:
            raise invalid("Your card's expiration date is incomplete.", param="exp_month") from None
        portal.update_card(emu, customer, form.get("card_number", ""), exp_month, exp_year)
        return
    if action not in ("cancel", "renew", "switch"):
        raise invalid(f"Unknown action: {action}", param="action")
    sub = next(
        (s for s in portal.live_subscriptions(emu, customer["id"]) if s["id"] == form.get("subscription")),
        None,
    )
    if sub is None:
        raise invalid("That subscription is not yours or has ended.", param="subscription")
    if action == "cancel":
        portal.cancel(emu, config, sub, form.get("reason") or None)
    elif action == "renew":
        portal.renew(emu, sub)
    else:
        portal.switch_price(emu, config, sub, form.get("price", ""))
