"""The hosted invoice page (an invoice's `hosted_invoice_url`): its lines and the amount due."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import HTMLResponse, Response

from gatehouse_emulators.stripe.http.edge import Runtime
from gatehouse_emulators.stripe.pages.templating import money, not_found, templates


def build_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    emu = runtime.emu

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
        html = templates.get_template("invoice.html").render(
            invoice=invoice, lines=lines, amount_due=money(invoice["amount_due"], currency)
        )
        return HTMLResponse(html)

    return router
