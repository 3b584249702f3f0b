"""Charges, refunds and disputes.

A successful attempt on an invoice's PaymentIntent makes one Charge (`latest_charge`). A refund
takes back part or all of what a charge captured, never more (`amount_too_large`, Stripe's error
and message); card refunds succeed at once: `refund.created` and `charge.refunded` are raised, and
`refund.updated` when a refund's metadata changes. A dispute is opened and closed only through the
control endpoints (what a cardholder's bank does): `charge.dispute.created` (status
`needs_response`, the charge `disputed`, no longer refundable) and `charge.dispute.closed` (`won`
or `lost`)."""

from __future__ import annotations

from gatehouse_emulators.stripe.domain.state import Emulator
from gatehouse_emulators.stripe.domain.store import Obj, new_id, random_token
from gatehouse_emulators.stripe.wire.errors import StripeError, invalid
from gatehouse_emulators.stripe.wire.forms import Params

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
DISPUTE_REASONS = (
    "bank_cannot_process",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
DISPUTE_OUTCOMES = ("won", "lost")
OPEN_DISPUTE_STATUSES = ("needs_response", "under_review", "warning_needs_response", "warning_under_review")
EVIDENCE_DAYS = 7


def _money(amount: int, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency, "")
    return f"{symbol}{amount / 100:.2f}" if symbol else f"{amount / 100:.2f} {currency.upper()}"


def create_charge(emu: Emulator, intent: Obj) -> Obj:
    """The charge a succeeded attempt made, with the card it was taken from."""
    card = emu.store.get(intent.get("payment_method") or "", "payment_method")
    details = (card or {}).get("card") or {}
    charge_id = new_id("ch_")
    charge: Obj = {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"],
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": new_id("txn_"),
        "billing_details": {"address": None, "email": None, "name": None, "phone": None, "tax_id": None},
        "calculated_statement_descriptor": "GATEHOUSE",
        "captured": True,
        "created": emu.now(),
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": intent["id"],
        "payment_method": intent.get("payment_method"),
        "payment_method_details": {
            "card": {
                "amount_authorized": intent["amount"],
                "authorization_code": None,
                "brand": details.get("brand", "visa"),
                "checks": None,
                "country": details.get("country", "US"),
                "electronic_commerce_indicator": None,
                "exp_month": details.get("exp_month", 12),
                "exp_year": details.get("exp_year", 2034),
                "funding": details.get("funding", "credit"),
                "installments": None,
                "last4": details.get("last4", "4242"),
                "mandate": None,
                "network": "visa",
                "network_transaction_id": random_token(15),
                "regulated_status": "unregulated",
                "three_d_secure": None,
                "transaction_link_id": None,
                "wallet": None,
            },
            "type": "card",
        },
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": f"{emu.context.base_url}/receipts/{charge_id}",
        "refunded": False,
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }
    emu.store.add(charge)
    intent["latest_charge"] = charge_id
    return charge


def charge_to_refund(emu: Emulator, params: Params) -> Obj:
    """The charge `charge` names, or the latest charge of `payment_intent` (Stripe's rules)."""
    charge_id, intent_id = params.text("charge"), params.text("payment_intent")
    if charge_id and intent_id:
        raise invalid("You cannot specify both `charge` and `payment_intent`.", param="payment_intent")
    if charge_id:
        return emu.store.require(charge_id, "charge", "charge", "charge")
    if not intent_id:
        raise invalid(
            "One of the following params should be provided for this request: payment_intent or charge.",
            code="parameter_missing",
        )
    intent = emu.store.require(intent_id, "payment_intent", "payment_intent", "payment_intent")
    charge = emu.store.get(intent.get("latest_charge") or "", "charge")
    if charge is None:
        raise invalid(
            f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
            param="payment_intent",
            code="charge_not_refundable" if intent["status"] != "succeeded" else None,
        )
    return charge


def create_refund(emu: Emulator, params: Params) -> Obj:
    params.allow(
        "amount", "charge", "payment_intent", "reason", "metadata", "expand", "instructions_email", "origin"
    )
    charge = charge_to_refund(emu, params)
    amount = params.integer("amount")
    reason = params.enum("reason", REFUND_REASONS)
    metadata = params.metadata() or {}
    return refund(emu, charge, amount, reason, metadata)


def refund(
    emu: Emulator, charge: Obj, amount: int | None, reason: str | None, metadata: dict[str, str]
) -> Obj:
    """Refund `amount` (default: what is left) of the charge; capped at what it captured."""
    if charge["disputed"] and _open_dispute(emu, charge) is not None:
        raise StripeError(
            400,
            f"Charge {charge['id']} has been charged back; cannot issue a refund.",
            code="charge_disputed",
            param="charge",
        )
    left = charge["amount_captured"] - charge["amount_refunded"]
    if left <= 0:
        raise StripeError(
            400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    if amount is None:
        amount = left
    if amount <= 0:
        raise invalid("Invalid positive integer", param="amount", code="parameter_invalid_integer")
    if amount > left:
        raise StripeError(
            400,
            f"Refund amount ({_money(amount, charge['currency'])}) is greater than unrefunded amount on "
            f"charge ({_money(left, charge['currency'])})",
            code="amount_too_large",
            param="amount",
        )
    refund_obj: Obj = {
        "id": new_id("re_"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn_"),
        "charge": charge["id"],
        "created": emu.now(),
        "currency": charge["currency"],
        "customer": charge["customer"],
        "customer_account": None,
        "destination_details": {
            "card": {
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    emu.store.add(refund_obj)
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
    emu.emit("refund.created", refund_obj)
    emu.emit("charge.refunded", charge, {k: v for k, v in previous.items() if charge[k] != v})
    return refund_obj


def update_refund(emu: Emulator, refund_obj: Obj, params: Params) -> Obj:
    params.allow("metadata", "expand")
    metadata = params.metadata()
    if metadata is not None:
        before = dict(refund_obj["metadata"] or {})
        merged = {**before, **metadata}
        merged = {k: v for k, v in merged.items() if v != ""}
        if merged != before:
            refund_obj["metadata"] = merged
            emu.emit("refund.updated", refund_obj, {"metadata": before})
    return refund_obj


def _open_dispute(emu: Emulator, charge: Obj) -> Obj | None:
    found = emu.store.all(
        "dispute", lambda d: d["charge"] == charge["id"] and d["status"] in OPEN_DISPUTE_STATUSES
    )
    return found[0] if found else None


def open_dispute(emu: Emulator, charge: Obj, reason: str, amount: int | None) -> Obj:
    """The cardholder disputes the charge: a chargeback of `amount` (default: what was not refunded)."""
    if reason not in DISPUTE_REASONS:
        raise invalid(f"reason must be one of {', '.join(DISPUTE_REASONS)}", param="reason")
    if emu.store.all("dispute", lambda d: d["charge"] == charge["id"]):
        raise invalid(f"Charge {charge['id']} already has a dispute.", param="charge")
    left = charge["amount_captured"] - charge["amount_refunded"]
    amount = left if amount is None else amount
    if not 0 < amount <= left:
        raise invalid(f"amount must be between 1 and {left}", param="amount")
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    dispute: Obj = {
        "id": new_id("dp_"),
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge["id"],
        "created": emu.now(),
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {key: None for key in _EVIDENCE_FIELDS} | {"enhanced_evidence": {}},
        "evidence_details": {
            "due_by": emu.now() + EVIDENCE_DAYS * 86400,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "submission_method": "not_submitted",
        },
        "intended_submission_method": None,
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "network_reason_code": "10.4",
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {
            "card": {
                "brand": card.get("brand") or "visa",
                "case_type": "chargeback",
                "network": card.get("network") or "visa",
                "network_reason_code": "10.4",
            },
            "type": "card",
        },
        "reason": reason,
        "status": "needs_response",
    }
    emu.store.add(dispute)
    charge["disputed"] = True
    emu.emit("charge.dispute.created", dispute)
    return dispute


def close_dispute(emu: Emulator, dispute: Obj, outcome: str) -> Obj:
    if outcome not in DISPUTE_OUTCOMES:
        raise invalid("outcome must be won or lost", param="outcome")
    if dispute["status"] not in OPEN_DISPUTE_STATUSES:
        raise invalid(f"Dispute {dispute['id']} is already closed ({dispute['status']}).", param="dispute")
    previous = {"status": dispute["status"]}
    dispute["status"] = outcome
    dispute["evidence_details"]["due_by"] = None
    emu.emit("charge.dispute.closed", dispute, previous)
    return dispute


_EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)
