"""The hosted invoice page (an invoice's `hosted_invoice_url`): its lines and the amount due; and its
PDF (`invoice_pdf`), made with fpdf2."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fpdf import FPDF
from starlette.responses import HTMLResponse, Response

from gatehouse_emulators.stripe.domain.store import Obj
from gatehouse_emulators.stripe.http.edge import Runtime
from gatehouse_emulators.stripe.pages.templating import money, not_found, templates


def _latin1(text: str) -> str:
    """The PDF's built-in font knows Latin-1 only; anything else shows as '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def _plain_money(amount: int, currency: str) -> str:
    return f"{amount / 100:,.2f} {currency.upper()}"


def invoice_pdf(invoice: Obj) -> bytes:
    currency = invoice["currency"]
    pdf = FPDF(format="A4")
    pdf.set_title(f"Invoice {invoice['number'] or invoice['id']}")
    pdf.set_creator("Stripe emulator")
    pdf.set_compression(False)  # readable bytes: tests (and people) can grep the PDF
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 12, _latin1(f"Invoice {invoice['number'] or invoice['id']}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    created = datetime.fromtimestamp(invoice["created"], UTC).date().isoformat()
    for text in (
        f"{invoice['account_name']}",
        f"Billed to: {invoice['customer_email'] or invoice['customer']}",
        f"Date: {created}    Status: {invoice['status']}",
    ):
        pdf.cell(0, 7, _latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for line in invoice["lines"]["data"]:
        pdf.cell(140, 7, _latin1(line["description"] or ""))
        pdf.cell(0, 7, _plain_money(line["amount"], currency), align="R", new_x="LMARGIN", new_y="NEXT")
    discount = sum(d["amount"] for d in invoice["total_discount_amounts"])
    tax = sum(t["amount"] for t in invoice["total_taxes"])
    totals = [("Subtotal", invoice["subtotal"]), ("Discount", -discount), ("Tax", tax)]
    totals += [("Total", invoice["total"]), ("Amount paid", invoice["amount_paid"])]
    totals += [("Amount due", invoice["amount_remaining"])]
    pdf.ln(2)
    for label, amount in totals:
        pdf.cell(140, 7, label)
        pdf.cell(0, 7, _plain_money(amount, currency), align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


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
            invoice=invoice,
            lines=lines,
            amount_due=money(invoice["amount_due"], currency),
            pdf_url=invoice.get("invoice_pdf"),
        )
        return HTMLResponse(html)

    @router.get("/invoices/{invoice_id}/pdf")
    async def invoice_pdf_file(invoice_id: str) -> Response:
        invoice = emu.store.get(invoice_id, "invoice")
        if invoice is None or invoice["status"] == "draft":
            return not_found("invoice")
        filename = f"Invoice-{invoice['number'] or invoice['id']}.pdf"
        return Response(
            invoice_pdf(invoice),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )

    return router
