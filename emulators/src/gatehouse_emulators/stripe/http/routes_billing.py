"""/v1 routes for Checkout Sessions, subscriptions and their items, subscription schedules, invoices,
invoice items, invoice payments, payment intents and test clocks."""

from __future__ import annotations

import copy

from gatehouse_emulators.stripe.domain import billing, checkout, collection, invoices, previews, schedules
from gatehouse_emulators.stripe.domain.lifecycle import advance_to
from gatehouse_emulators.stripe.domain.render import apply_expand
from gatehouse_emulators.stripe.domain.store import Obj, list_params, match_created, new_id, paginate
from gatehouse_emulators.stripe.domain.subscriptions import ENDED, publish, snapshot
from gatehouse_emulators.stripe.http.edge import Call, Routes
from gatehouse_emulators.stripe.wire.errors import invalid, resource_missing
from gatehouse_emulators.stripe.wire.forms import Params, read_metadata_update

routes = Routes()


# -- checkout sessions -----------------------------------------------------------------------------


@routes.post("/v1/checkout/sessions")
def create_session(call: Call) -> Obj:
    return call.render(checkout.create_session(call.emu, call.params))


routes.listing(
    "/v1/checkout/sessions",
    "checkout.session",
    by=("customer", "status", "subscription"),
    accepted=("customer_details", "payment_intent"),
)


def _session(call: Call) -> Obj:
    return call.require("session", "checkout.session", param="session")


routes.retrieve("/v1/checkout/sessions/{session}", "checkout.session", param="session")


@routes.post("/v1/checkout/sessions/{session}")
def update_session(call: Call) -> Obj:
    return call.render(checkout.update_session(call.emu, _session(call), call.params))


@routes.post("/v1/checkout/sessions/{session}/expire")
def expire_session(call: Call) -> Obj:
    call.params.allow("expand")
    return call.render(checkout.expire(call.emu, _session(call)))


@routes.get("/v1/checkout/sessions/{session}/line_items")
def session_line_items(call: Call) -> Obj:
    list_params(call.params)
    session = _session(call)
    lines = call.emu.render(session, ["line_items"])["line_items"]
    return {**lines, "data": lines["data"][: call.params.integer("limit") or 10]}


# -- subscriptions ---------------------------------------------------------------------------------


def _subscription(call: Call) -> Obj:
    return call.require("subscription", "subscription")


@routes.post("/v1/subscriptions")
def create_subscription(call: Call) -> Obj:
    return call.render(billing.create_subscription(call.emu, call.params))


@routes.get("/v1/subscriptions")
def list_subscriptions(call: Call) -> Obj:
    list_params(
        call.params, "created", "current_period_end", "current_period_start", "customer", "price", "status"
    )
    customer, price = call.params.text("customer"), call.params.text("price")
    status = call.params.text("status")
    created = call.params.timestamp_filter("created")

    def keep(sub: Obj) -> bool:
        if status is None and sub["status"] == "canceled":
            return False  # Stripe lists canceled subscriptions only when asked for them
        if status not in (None, "all"):
            wanted = ENDED if status == "ended" else (status,)
            if sub["status"] not in wanted:
                return False
        return (
            (customer is None or sub["customer"] == customer)
            and (price is None or any(i["price"] == price for i in sub["items"]["data"]))
            and match_created(sub, created)
        )

    return call.page(call.emu.store.all("subscription", keep), "/v1/subscriptions", "subscription")


routes.retrieve("/v1/subscriptions/{subscription}", "subscription")


@routes.post("/v1/subscriptions/{subscription}")
def update_subscription(call: Call) -> Obj:
    return call.render(billing.update_subscription(call.emu, _subscription(call), call.params))


@routes.delete("/v1/subscriptions/{subscription}")
def cancel_subscription(call: Call) -> Obj:
    return call.render(billing.cancel_subscription(call.emu, _subscription(call), call.params))


@routes.delete("/v1/subscriptions/{subscription}/discount")
def delete_subscription_discount(call: Call) -> Obj:
    call.params.allow()
    return billing.delete_discount(call.emu, _subscription(call))


@routes.post("/v1/subscriptions/{subscription}/resume")
def resume_subscription(call: Call) -> Obj:
    raise invalid("Only paused subscriptions can be resumed; the emulator does not pause subscriptions.")


# -- subscription items ----------------------------------------------------------------------------


def _item(call: Call) -> tuple[Obj, Obj]:
    item_id = call.path["item"]
    for sub in call.emu.store.all("subscription"):
        for item in sub["items"]["data"]:
            if item["id"] == item_id:
                return sub, item
    raise resource_missing("subscription item", item_id)


@routes.get("/v1/subscription_items")
def list_subscription_items(call: Call) -> Obj:
    list_params(call.params, "subscription")
    sub = call.emu.store.require(
        call.params.req_text("subscription"), "subscription", "subscription", "subscription"
    )
    rendered = call.emu.render(sub)
    url = f"/v1/subscription_items?subscription={sub['id']}"
    page, more = paginate(call.emu.store, sub["items"]["data"], call.params, "subscription item")
    ids = [i["id"] for i in page]
    data = [i for i in rendered["items"]["data"] if i["id"] in ids]
    return {"object": "list", "data": data, "has_more": more, "url": url}


@routes.get("/v1/subscription_items/{item}")
def retrieve_subscription_item(call: Call) -> Obj:
    call.params.allow("expand")
    sub, item = _item(call)
    rendered = next(i for i in call.emu.render(sub)["items"]["data"] if i["id"] == item["id"])
    return apply_expand(call.emu.store, rendered, call.expand)


@routes.post("/v1/subscription_items/{item}")
def update_subscription_item(call: Call) -> Obj:
    sub, item = _item(call)
    params = call.params
    params.allow(
        "expand", "metadata", "payment_behavior", "price", "proration_behavior", "proration_date", "quantity"
    )
    update: dict[str, object] = {"id": item["id"]}
    for key in ("price", "quantity", "metadata"):
        if key in params:
            update[key] = params.raw(key)
    forwarded = {
        k: params.raw(k) for k in ("proration_behavior", "proration_date", "payment_behavior") if k in params
    }
    billing.update_subscription(call.emu, sub, Params({"items": [update], **forwarded}))
    expand = {"expand": params.raw("expand")} if "expand" in params else {}
    return retrieve_subscription_item(Call(call.emu, Params(expand), call.path))


# -- subscription schedules ------------------------------------------------------------------------


def _schedule(call: Call) -> Obj:
    return call.require("schedule", "subscription_schedule", "subscription schedule", param="schedule")


@routes.post("/v1/subscription_schedules")
def create_schedule(call: Call) -> Obj:
    return call.render(schedules.create_schedule(call.emu, call.params))


routes.listing(
    "/v1/subscription_schedules",
    "subscription_schedule",
    by=("customer",),
    accepted=("canceled_at", "completed_at", "released_at", "scheduled"),
)
routes.retrieve(
    "/v1/subscription_schedules/{schedule}",
    "subscription_schedule",
    "subscription schedule",
    param="schedule",
)


@routes.post("/v1/subscription_schedules/{schedule}")
def update_schedule(call: Call) -> Obj:
    return call.render(schedules.update_schedule(call.emu, _schedule(call), call.params))


@routes.post("/v1/subscription_schedules/{schedule}/release")
def release_schedule(call: Call) -> Obj:
    return call.render(schedules.release_schedule(call.emu, _schedule(call), call.params))


@routes.post("/v1/subscription_schedules/{schedule}/cancel")
def cancel_schedule(call: Call) -> Obj:
    schedule = _schedule(call)
    sub = schedules.cancel_schedule(call.emu, schedule, call.params)
    if sub is not None:  # canceling a schedule cancels its subscription too
        before = snapshot(call.emu, sub)
        billing.cancel_now(call.emu, sub, reason="cancellation_requested")
        publish(call.emu, sub, before)
    return call.render(schedule)


# -- invoices --------------------------------------------------------------------------------------


def _invoice(call: Call) -> Obj:
    return call.require("invoice", "invoice", param="invoice")


@routes.post("/v1/invoices/create_preview")
def create_preview(call: Call) -> Obj:
    return call.render(previews.preview_invoice(call.emu, call.params))


@routes.get("/v1/invoices")
def list_invoices(call: Call) -> Obj:
    list_params(call.params, "collection_method", "created", "customer", "due_date", "status", "subscription")
    customer, subscription = call.params.text("customer"), call.params.text("subscription")
    status = call.params.enum("status", ("draft", "open", "paid", "uncollectible", "void"))
    created = call.params.timestamp_filter("created")
    items = call.emu.store.all(
        "invoice",
        lambda i: (
            (customer is None or i["customer"] == customer)
            and (subscription is None or invoices.subscription_of(i) == subscription)
            and (status is None or i["status"] == status)
            and match_created(i, created)
        ),
    )
    return call.page(items, "/v1/invoices", "invoice")


routes.retrieve("/v1/invoices/{invoice}", "invoice", param="invoice")


@routes.get("/v1/invoices/{invoice}/lines")
def invoice_lines(call: Call) -> Obj:
    list_params(call.params)
    invoice = _invoice(call)
    lines = invoice["lines"]["data"]
    url = f"/v1/invoices/{invoice['id']}/lines"
    limit = call.params.integer("limit") or 10
    after = call.params.text("starting_after")
    start = next((n + 1 for n, line in enumerate(lines) if line["id"] == after), 0) if after else 0
    page = lines[start : start + limit]
    return {"object": "list", "data": copy.deepcopy(page), "has_more": len(lines) > start + limit, "url": url}


@routes.post("/v1/invoices/{invoice}/pay")
def pay_invoice(call: Call) -> Obj:
    return call.render(collection.pay_invoice(call.emu, _invoice(call), call.params))


@routes.post("/v1/invoices/{invoice}/void")
def void_invoice(call: Call) -> Obj:
    call.params.allow("expand")
    return call.render(collection.void_invoice(call.emu, _invoice(call)))


@routes.post("/v1/invoices/{invoice}/mark_uncollectible")
def mark_uncollectible(call: Call) -> Obj:
    call.params.allow("expand")
    return call.render(collection.mark_uncollectible(call.emu, _invoice(call)))


@routes.post("/v1/invoices/{invoice}")
def update_invoice(call: Call) -> Obj:
    call.params.allow("description", "expand", "footer", "metadata")
    invoice = _invoice(call)
    for key in ("description", "footer"):
        if key in call.params:
            invoice[key] = call.params.text(key)
    invoice["metadata"] = read_metadata_update(call.params, invoice["metadata"] or {})
    call.emu.emit("invoice.updated", invoice)
    return call.render(invoice)


# -- invoice items, invoice payments, payment intents ----------------------------------------------


@routes.get("/v1/invoiceitems")
def list_invoice_items(call: Call) -> Obj:
    list_params(call.params, "created", "customer", "invoice", "pending")
    customer, invoice = call.params.text("customer"), call.params.text("invoice")
    pending = call.params.flag("pending")
    items = call.emu.store.all(
        "invoiceitem",
        lambda i: (
            (customer is None or i["customer"] == customer)
            and (invoice is None or i["invoice"] == invoice)
            and (pending is None or (i["invoice"] is None) == pending)
        ),
    )
    return call.page(items, "/v1/invoiceitems", "invoiceitem")


routes.retrieve("/v1/invoiceitems/{item}", "invoiceitem")


@routes.get("/v1/invoice_payments")
def list_invoice_payments(call: Call) -> Obj:
    list_params(call.params, "invoice", "payment", "status")
    invoice = call.params.text("invoice")
    payment = call.params.hash("payment")
    intent = payment.text("payment_intent") if payment else None
    items = call.emu.store.all(
        "invoice_payment",
        lambda p: (
            (invoice is None or p["invoice"] == invoice)
            and (intent is None or p["payment"]["payment_intent"] == intent)
        ),
    )
    return call.page(items, "/v1/invoice_payments", "invoice_payment")


routes.retrieve("/v1/invoice_payments/{payment}", "invoice_payment")


@routes.get("/v1/payment_intents")
def list_payment_intents(call: Call) -> Obj:
    list_params(call.params, "created", "customer")
    customer = call.params.text("customer")
    items = call.emu.store.all("payment_intent", lambda p: customer is None or p["customer"] == customer)
    return call.page(items, "/v1/payment_intents", "payment_intent")


routes.retrieve("/v1/payment_intents/{intent}", "payment_intent", allow=("expand", "client_secret"))


# -- test clocks: one shared emulator clock behind Stripe's test clock shape ------------------------


def _test_clock(call: Call) -> Obj:
    return call.require("clock", "test_helpers.test_clock", "test_clock")


@routes.post("/v1/test_helpers/test_clocks")
def create_test_clock(call: Call) -> Obj:
    call.params.allow("frozen_time", "name", "expand")
    frozen = call.params.integer("frozen_time", required=True)
    assert frozen is not None
    if frozen < call.emu.now():
        raise invalid("frozen_time cannot be before the emulator's current time.", param="frozen_time")
    now = call.emu.now()
    clock: Obj = {
        "id": new_id("clock_"),
        "object": "test_helpers.test_clock",
        "created": now,
        "deletes_after": now + 30 * 86400,
        "frozen_time": frozen,
        "livemode": False,
        "name": call.params.text("name"),
        "status": "ready",
        "status_details": {},
    }
    call.emu.store.add(clock)
    return call.render(clock)


@routes.get("/v1/test_helpers/test_clocks")
def list_test_clocks(call: Call) -> Obj:
    list_params(call.params)
    return call.page(
        call.emu.store.all("test_helpers.test_clock"), "/v1/test_helpers/test_clocks", "test clock"
    )


@routes.get("/v1/test_helpers/test_clocks/{clock}")
def retrieve_test_clock(call: Call) -> Obj:
    call.params.allow("expand")
    clock = _test_clock(call)
    clock["frozen_time"] = max(clock["frozen_time"], call.emu.now())
    return call.render(clock)


@routes.delete("/v1/test_helpers/test_clocks/{clock}")
def delete_test_clock(call: Call) -> Obj:
    clock = _test_clock(call)
    call.emu.store.remove(clock["id"])
    return {"id": clock["id"], "object": "test_helpers.test_clock", "deleted": True}


@routes.post("/v1/test_helpers/test_clocks/{clock}/advance")
def advance_test_clock(call: Call) -> Obj:
    call.params.allow("frozen_time", "expand")
    clock = _test_clock(call)
    target = call.params.integer("frozen_time", required=True)
    assert target is not None
    if target <= clock["frozen_time"]:
        raise invalid("The test clock can only be advanced forward.", param="frozen_time")
    if target > call.emu.now():
        advance_to(call.emu, target)
    clock["frozen_time"] = target
    call.emu.emit("test_helpers.test_clock.ready", clock)
    return call.render(clock)
