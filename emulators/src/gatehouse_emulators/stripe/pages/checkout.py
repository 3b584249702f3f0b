"""The hosted Checkout page (a session's `url`): the order, and Pay / Decline / 3-D Secure buttons that
complete the session and redirect to its `success_url`."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gatehouse_emulators.stripe.domain import checkout
from gatehouse_emulators.stripe.domain.state import RequestContext
from gatehouse_emulators.stripe.domain.store import Obj
from gatehouse_emulators.stripe.http.edge import Runtime
from gatehouse_emulators.stripe.pages.templating import money, not_found, templates
from gatehouse_emulators.stripe.wire.errors import StripeError


def success_url(session: Obj) -> str | None:
    url = session.get("success_url")
    return url.replace("{CHECKOUT_SESSION_ID}", session["id"]) if url else None


def build_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    emu = runtime.emu

    def page(
        session: Obj, *, error: str | None = None, authenticating: bool = False, status: int = 200
    ) -> Response:
        lines = []
        for line in session["_line_items"]:
            price = emu.store.get(line["price"], "price") or {}
            recurring = price.get("recurring") or {}
            lines.append(
                {
                    "quantity": line["quantity"],
                    "description": line["description"],
                    "amount": money(line["amount_total"], line["currency"]),
                    "interval": recurring.get("interval", ""),
                }
            )
        data = session["_subscription_data"]
        customer = emu.store.get(session["customer"] or "", "customer") or {}
        html = templates.get_template("checkout.html").render(
            session=session,
            lines=lines,
            total=money(session["amount_total"] or 0, session["currency"]),
            trial_days=data["trial_period_days"],
            error=error,
            authenticating=authenticating or bool(session["_pending_subscription"]),
            action=f"/checkout/{session['id']}",
            email=session["customer_email"] or customer.get("email") or checkout.DEFAULT_EMAIL,
            email_locked=bool(session["customer"]),
            success_url=success_url(session),
        )
        return HTMLResponse(html, status_code=status)

    @router.get("/checkout/{session_id}")
    async def show(session_id: str) -> Response:
        session = emu.store.get(session_id, "checkout.session")
        return page(session) if session else not_found("Checkout Session")

    @router.post("/checkout/{session_id}")
    async def submit(session_id: str, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        outcome = form.get("outcome", "paid")

        def work() -> tuple[Obj | None, dict[str, Any] | StripeError]:
            session = emu.store.get(session_id, "checkout.session")
            if session is None:
                return None, StripeError(404, "No such Checkout Session")
            try:
                return session, checkout.complete(
                    emu, session, outcome, form.get("email") or None, form.get("promotion_code") or None
                )
            except StripeError as exc:
                return session, exc

        session, result = await runtime.run(work, RequestContext(base_url=runtime.base_url(request)))
        if session is None:
            return not_found("Checkout Session")
        if isinstance(result, StripeError):
            return page(session, error=result.message, status=400)
        if result["outcome"] == "paid":
            target = success_url(session)
            return RedirectResponse(target, status_code=303) if target else page(session)
        if result["outcome"] == "requires_action":
            return page(session, authenticating=True)
        return page(session, error="Your card was declined. Try another card.", status=402)

    return router
