"""The hosted pages: Checkout (`session.url`, Pay / Decline / 3-D Secure buttons) and the invoice page
(`invoice.hosted_invoice_url`). Jinja2 with autoescape: every value shown comes from API input."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gatehouse_emulators.stripe import checkout
from gatehouse_emulators.stripe.errors import StripeError
from gatehouse_emulators.stripe.http import Runtime
from gatehouse_emulators.stripe.state import RequestContext
from gatehouse_emulators.stripe.store import Obj

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def money(amount: int, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency.lower())
    value = f"{amount / 100:,.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


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
        html = _templates.get_template("checkout.html").render(
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

    def not_found(what: str) -> Response:
        return HTMLResponse(f"<h1>No such {what}</h1>", status_code=404)

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
                return session, checkout.complete(emu, session, outcome, form.get("email") or None)
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

    @router.get("/invoices/{invoice_id}")
    async def invoice_page(invoice_id: str) -> Response:
        invoice = emu.store.get(invoice_id, "invoice")
        if invoice is None:
            return not_found("invoice")
        currency = invoice["currency"]
        lines = [
            {"description": line["description"], "amount": money(line["amount"], currency)}
            for line in invoice["lines"]["data"]
        ]
        html = _templates.get_template("invoice.html").render(
            invoice=invoice, lines=lines, amount_due=money(invoice["amount_due"], currency)
        )
        return HTMLResponse(html)

    return router
