"""An invoice's hosted page and its PDF, as a customer following `hosted_invoice_url` and
`invoice_pdf` sees them."""

from __future__ import annotations

import httpx
import stripe
from stripe_support import Control, make_price, subscribe

pytest_plugins = ["stripe_fixtures"]


def test_a_finalized_invoice_has_a_hosted_page_and_a_pdf(
    client: stripe.StripeClient, emulator: Control
) -> None:
    sub = subscribe(client, emulator, make_price(client, 3000, name="Pro plan").id)
    invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert invoice.number and invoice.hosted_invoice_url and invoice.invoice_pdf
    assert invoice.invoice_pdf == f"{emulator.base_url}/invoices/{invoice.id}/pdf"

    page = httpx.get(invoice.hosted_invoice_url)
    assert page.status_code == 200 and f"Invoice {invoice.number}" in page.text
    assert f'href="{invoice.invoice_pdf}"' in page.text

    pdf = httpx.get(invoice.invoice_pdf)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert f"Invoice-{invoice.number}.pdf" in pdf.headers["content-disposition"]
    for text in (f"Invoice {invoice.number}", "Pro plan", "30.00 USD", "Amount paid"):
        assert text.encode() in pdf.content


def test_an_unknown_invoice_has_no_pdf(emulator: Control) -> None:
    assert httpx.get(f"{emulator.base_url}/invoices/in_missing/pdf").status_code == 404
