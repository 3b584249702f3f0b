"""/v1 routes for charges, refunds and disputes (money taken, given back, contested)."""

from __future__ import annotations

from gatehouse_emulators.stripe.domain import charges
from gatehouse_emulators.stripe.domain.store import Obj, list_params, match_created
from gatehouse_emulators.stripe.http.edge import Call, Routes

routes = Routes()


@routes.get("/v1/charges")
def list_charges(call: Call) -> Obj:
    list_params(call.params, "created", "customer", "payment_intent", "transfer_group")
    customer, intent = call.params.text("customer"), call.params.text("payment_intent")
    created = call.params.timestamp_filter("created")
    items = call.emu.store.all(
        "charge",
        lambda c: (
            (customer is None or c["customer"] == customer)
            and (intent is None or c["payment_intent"] == intent)
            and match_created(c, created)
        ),
    )
    return call.page(items, "/v1/charges", "charge")


routes.retrieve("/v1/charges/{charge}", "charge", param="charge")


@routes.post("/v1/refunds")
def create_refund(call: Call) -> Obj:
    return call.render(charges.create_refund(call.emu, call.params))


@routes.get("/v1/refunds")
def list_refunds(call: Call) -> Obj:
    list_params(call.params, "charge", "created", "payment_intent")
    charge, intent = call.params.text("charge"), call.params.text("payment_intent")
    created = call.params.timestamp_filter("created")
    items = call.emu.store.all(
        "refund",
        lambda r: (
            (charge is None or r["charge"] == charge)
            and (intent is None or r["payment_intent"] == intent)
            and match_created(r, created)
        ),
    )
    return call.page(items, "/v1/refunds", "refund")


routes.retrieve("/v1/refunds/{refund}", "refund", param="refund")


@routes.post("/v1/refunds/{refund}")
def update_refund(call: Call) -> Obj:
    refund = call.require("refund", "refund", param="refund")
    return call.render(charges.update_refund(call.emu, refund, call.params))


@routes.get("/v1/disputes")
def list_disputes(call: Call) -> Obj:
    list_params(call.params, "charge", "created", "payment_intent")
    charge, intent = call.params.text("charge"), call.params.text("payment_intent")
    created = call.params.timestamp_filter("created")
    items = call.emu.store.all(
        "dispute",
        lambda d: (
            (charge is None or d["charge"] == charge)
            and (intent is None or d["payment_intent"] == intent)
            and match_created(d, created)
        ),
    )
    return call.page(items, "/v1/disputes", "dispute")


routes.retrieve("/v1/disputes/{dispute}", "dispute", param="dispute")
