"""/v1 routes for charges, refunds and disputes (money taken, given back, contested)."""

from __future__ import annotations

from gatehouse_emulators.stripe.domain import charges
from gatehouse_emulators.stripe.domain.store import Obj
from gatehouse_emulators.stripe.http.edge import Call, Routes

routes = Routes()


routes.listing("/v1/charges", "charge", by=("customer", "payment_intent"), accepted=("transfer_group",))
routes.retrieve("/v1/charges/{charge}", "charge", param="charge")


@routes.post("/v1/refunds")
def create_refund(call: Call) -> Obj:
    return call.render(charges.create_refund(call.emu, call.params))


routes.listing("/v1/refunds", "refund", by=("charge", "payment_intent"))
routes.retrieve("/v1/refunds/{refund}", "refund", param="refund")


@routes.post("/v1/refunds/{refund}")
def update_refund(call: Call) -> Obj:
    refund = call.require("refund", "refund", param="refund")
    return call.render(charges.update_refund(call.emu, refund, call.params))


routes.listing("/v1/disputes", "dispute", by=("charge", "payment_intent"))
routes.retrieve("/v1/disputes/{dispute}", "dispute", param="dispute")
