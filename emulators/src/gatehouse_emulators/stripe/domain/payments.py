"""PaymentIntents and InvoicePayments, as far as collecting an invoice needs them.

An invoice has one PaymentIntent, reused for every attempt (Stripe confirms the same intent on each
retry). Whether an attempt succeeds is the customer's payment outcome: "paid" (card 4242),
"declined" (0002) or "requires_action" (3155, needs 3-D Secure), set at checkout or through
POST /_emulator/customers/{id}/payment_behavior."""

from __future__ import annotations

from gatehouse_emulators.stripe.domain.charges import create_charge
from gatehouse_emulators.stripe.domain.state import Emulator
from gatehouse_emulators.stripe.domain.store import Obj, new_id, random_token
from gatehouse_emulators.stripe.wire.errors import card_declined

# A failed attempt's `last_payment_error`: the body of the card error the API answers.
DECLINE: Obj = card_declined().body()["error"]


def ensure_intent(emu: Emulator, invoice: Obj, payment_method: str | None) -> Obj:
    intent = emu.store.get(invoice.get("_payment_intent") or "", "payment_intent")
    if intent is not None:
        intent["amount"] = invoice["amount_remaining"]
        return intent
    intent_id = new_id("pi_")
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "allowed_payment_method_types": None,
        "amount": invoice["amount_remaining"],
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_{random_token(25)}",
        "confirmation_method": "automatic",
        "created": emu.now(),
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "customer_account": None,
        "description": _description(invoice),
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "payment_record": None,
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": "off_session",
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }
    emu.store.add(intent)
    invoice["_payment_intent"] = intent_id
    emu.store.add(
        {
            "id": new_id("inpay_"),
            "object": "invoice_payment",
            "amount_paid": None,
            "amount_requested": invoice["amount_remaining"],
            "created": emu.now(),
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": intent_id},
            "status": "open",
            "status_transitions": {"canceled_at": None, "paid_at": None},
        }
    )
    emu.emit("payment_intent.created", intent)
    return intent


def _description(invoice: Obj) -> str:
    return {
        "subscription_create": "Subscription creation",
        "subscription_cycle": "Subscription cycle",
        "subscription_update": "Subscription update",
    }.get(invoice.get("billing_reason") or "", "Payment for Invoice")


def attempt(emu: Emulator, intent: Obj, outcome: str) -> str:
    """Confirm the intent with the customer's card; returns the outcome and emits the intent's event."""
    if outcome == "paid":
        intent.update(
            status="succeeded", amount_received=intent["amount"], last_payment_error=None, next_action=None
        )
        create_charge(emu, intent)
        for payment in emu.store.all(
            "invoice_payment", lambda p: p["payment"]["payment_intent"] == intent["id"]
        ):
            payment.update(status="paid", amount_paid=intent["amount"])
            payment["status_transitions"]["paid_at"] = emu.now()
        emu.emit("payment_intent.succeeded", intent)
    elif outcome == "requires_action":
        intent.update(
            status="requires_action",
            last_payment_error=None,
            next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}},
        )
        emu.emit("payment_intent.requires_action", intent)
    else:
        # Stripe puts the card that failed into the error whole, as it was then.
        card = emu.store.get(intent["payment_method"] or "", "payment_method")
        error = dict(DECLINE, payment_method=emu.render(card)) if card is not None else dict(DECLINE)
        intent.update(status="requires_payment_method", last_payment_error=error, next_action=None)
        emu.emit("payment_intent.payment_failed", intent)
    return outcome


def cancel_intent(emu: Emulator, invoice: Obj) -> None:
    intent = emu.store.get(invoice.get("_payment_intent") or "", "payment_intent")
    if intent is None or intent["status"] in ("succeeded", "canceled"):
        return
    intent.update(status="canceled", canceled_at=emu.now(), cancellation_reason="void_invoice")
    for payment in emu.store.all("invoice_payment", lambda p: p["payment"]["payment_intent"] == intent["id"]):
        payment["status"] = "canceled"
        payment["status_transitions"]["canceled_at"] = emu.now()
    emu.emit("payment_intent.canceled", intent)
