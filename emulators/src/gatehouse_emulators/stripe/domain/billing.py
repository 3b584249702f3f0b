"""Subscription billing: start, change plan, cancel, renew, end a trial, and the dunning retries.

Each operation bills what it changes (the first invoice, a renewal, a proration invoice) and collects
it through collection.py, which also moves the subscription's status with the payment. After the
last dunning retry fails, the subscription is canceled (or `unpaid`, or left `past_due`:
`dunning_final_action`). Every change to a subscription is announced once, after the whole
operation, as `customer.subscription.updated` (or `.deleted` when it ended) with
`previous_attributes` (subscriptions.py's `publish`)."""

from __future__ import annotations

from gatehouse_emulators.stripe.domain import discounts, invoices, schedules
from gatehouse_emulators.stripe.domain.clock import DAY, add_interval, next_period_end
from gatehouse_emulators.stripe.domain.collection import collect
from gatehouse_emulators.stripe.domain.customers import customer_of
from gatehouse_emulators.stripe.domain.state import Emulator
from gatehouse_emulators.stripe.domain.store import Obj
from gatehouse_emulators.stripe.domain.subscriptions import (
    ENDED,
    NO_CANCELLATION_DETAILS,
    Change,
    ItemSpec,
    check_compatible,
    cycle,
    items_of,
    new_subscription,
    period,
    period_charges,
    plan_change,
    prorate,
    publish,
    recurring_price,
    set_items,
    set_period,
    snapshot,
)
from gatehouse_emulators.stripe.wire.errors import card_declined, invalid
from gatehouse_emulators.stripe.wire.forms import Params, read_metadata_update

PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")
PAYMENT_BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")


def start_subscription(
    emu: Emulator,
    customer: Obj,
    specs: list[ItemSpec],
    *,
    metadata: dict[str, str],
    trial_end: int | None,
    description: str | None = None,
    default_payment_method: str | None = None,
    redemptions: list[discounts.Redemption] | None = None,
    checkout_session: str | None = None,
) -> tuple[Obj, Obj, str]:
    """Create the subscription (with the discounts `redemptions` make) and its first invoice, and
    try to collect it."""
    sub = new_subscription(
        emu,
        customer,
        specs,
        metadata=metadata,
        trial_end=trial_end,
        description=description,
        default_payment_method=default_payment_method,
    )
    emu.store.add(sub)
    if customer.get("currency") is None:
        customer["currency"] = sub["currency"]
    for redemption in redemptions or []:
        discounts.redeem(emu, redemption, customer, sub, checkout_session=checkout_session)
    emu.emit("customer.subscription.created", sub)
    discounts.announce(emu, sub)
    before = snapshot(emu, sub)
    start, end = period(sub)
    charges = period_charges(emu, sub, items_of(sub), start, end)
    now = emu.now()
    invoice = invoices.create_invoice(
        emu, customer, sub, "subscription_create", charges, (now, now), sub["currency"]
    )
    sub["latest_invoice"] = invoice["id"]
    invoices.finalize(emu, invoice, customer)
    outcome = collect(emu, invoice)
    publish(emu, sub, before)
    return sub, invoice, outcome


def retry_invoice(emu: Emulator, invoice: Obj) -> None:
    """A dunning retry that fell due; after the last failed retry, the final action applies."""
    sub = emu.store.get(invoices.subscription_of(invoice) or "", "subscription")
    before = snapshot(emu, sub) if sub else None
    invoice["_retries"] = invoice.get("_retries", 0) + 1
    invoice["next_payment_attempt"] = None
    outcome = collect(emu, invoice)
    if sub is None or before is None:
        return
    if outcome != "paid" and invoice["next_payment_attempt"] is None and sub["status"] not in ENDED:
        action = emu.config.dunning_final_action
        if action == "cancel":
            cancel_now(emu, sub, reason="payment_failed")
        elif action == "unpaid":
            sub["status"] = "unpaid"
    publish(emu, sub, before)


def cancel_now(
    emu: Emulator, sub: Obj, *, reason: str, comment: str | None = None, feedback: str | None = None
) -> None:
    now = emu.now()
    sub["status"] = "canceled"
    sub["canceled_at"] = sub["canceled_at"] or now
    sub["ended_at"] = now
    sub["cancellation_details"] = {
        **sub["cancellation_details"],
        "comment": comment or sub["cancellation_details"].get("comment"),
        "feedback": feedback or sub["cancellation_details"].get("feedback"),
        "reason": reason,
    }
    for invoice in invoices.open_invoices(emu, sub["id"]):
        invoice["next_payment_attempt"] = None  # no more automatic retries for an ended subscription
    schedules.end_with(emu, sub)


def cancel_subscription(emu: Emulator, sub: Obj, params: Params) -> Obj:
    params.allow("cancellation_details", "expand", "invoice_now", "prorate")
    if sub["status"] in ENDED:
        raise invalid(f"No active subscription with id {sub['id']}; it has already been canceled.")
    details = params.hash("cancellation_details")
    before = snapshot(emu, sub)
    cancel_now(
        emu,
        sub,
        reason="cancellation_requested",
        comment=details.text("comment") if details else None,
        feedback=details.text("feedback") if details else None,
    )
    publish(emu, sub, before)
    return sub


def update_subscription(emu: Emulator, sub: Obj, params: Params) -> Obj:
    params.allow(
        "billing_cycle_anchor",
        "cancel_at",
        "cancel_at_period_end",
        "cancellation_details",
        "default_payment_method",
        "description",
        "discounts",
        "expand",
        "items",
        "metadata",
        "off_session",
        "payment_behavior",
        "proration_behavior",
        "proration_date",
        "trial_end",
    )
    if sub["status"] in ENDED and set(params.keys()) - {"cancellation_details", "metadata", "expand"}:
        raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
    behavior = params.enum("proration_behavior", PRORATION_BEHAVIORS) or "create_prorations"
    payment_behavior = params.enum("payment_behavior", PAYMENT_BEHAVIORS) or "allow_incomplete"
    if payment_behavior == "pending_if_incomplete":
        raise invalid(
            "payment_behavior=pending_if_incomplete is not supported by the emulator.", "payment_behavior"
        )
    start, end = period(sub)
    moment = params.integer("proration_date") or emu.now()
    if "proration_date" in params and not start <= moment <= end:
        raise invalid("proration_date must be within the current billing period.", param="proration_date")
    if params.raw("trial_end") not in (None, "now"):
        requested = params.integer("trial_end")
        if requested is None or requested <= emu.now():
            raise invalid("trial_end must be 'now' or a time in the future.", param="trial_end")
    anchor_now = params.enum("billing_cycle_anchor", ("now", "unchanged")) == "now"
    updates = params.hashes("items")
    change = plan_change(emu, sub, updates, behavior, moment, apply_ids=True) if updates else None
    customer = customer_of(emu, sub)
    trialing = sub["status"] == "trialing"
    reset = (bool(change and change.cycle_reset) or anchor_now) and not trialing  # a trial keeps its end
    if anchor_now and not trialing:  # a new cycle now: credit the unused time, bill a whole period
        items = change.items if change else [dict(i) for i in items_of(sub)]
        credits = prorate(emu, sub, items_of(sub), items, moment, True) if behavior != "none" else []
        change = Change(items, credits, True, True, moment)
    invoice_now = not trialing and (bool(change and change.changed and behavior == "always_invoice") or reset)
    if invoice_now and payment_behavior == "error_if_incomplete" and customer["_payment_outcome"] != "paid":
        due = sum(c.amount for c in (change.prorations if change else []))
        if reset:
            items = change.items if change else items_of(sub)
            due += sum(
                (emu.store.get(i["price"], "price") or {})["unit_amount"] * i["quantity"] for i in items
            )
        if due + customer.get("balance", 0) > 0:
            raise card_declined()
    redemptions = None
    if "discounts" in params:
        prices = [emu.store.get(i["price"], "price") or {} for i in items_of(sub)]
        redemptions = discounts.read_discounts(emu, params, "discounts", customer, sub["currency"], prices)
    before = snapshot(emu, sub)
    if redemptions is not None:  # `discounts` replaces the subscription's discounts (`""` clears them)
        discounts.remove_all(emu, sub)
        for redemption in redemptions:
            discounts.redeem(emu, redemption, customer, sub)
        discounts.announce(emu, sub)
    _apply_simple_fields(emu, sub, params)
    _apply_trial_end(emu, sub, params, moment)
    if change is not None and change.changed:
        _apply_items(emu, sub, customer, change, moment, reset, invoice_now)
    publish(emu, sub, before)
    return sub


def _apply_trial_end(emu: Emulator, sub: Obj, params: Params, moment: int) -> None:
    if "trial_end" not in params or sub["status"] != "trialing":
        return
    start, _ = period(sub)
    if params.raw("trial_end") == "now":
        set_period(sub, start, moment)
        sub["trial_end"] = moment
        end_trial(emu, sub)
        return
    new_end = params.integer("trial_end")
    assert new_end is not None  # validated before any change
    sub.update(trial_end=new_end, billing_cycle_anchor=new_end)
    set_period(sub, start, new_end)
    sub["_trial_will_end_sent"] = False


def _apply_simple_fields(emu: Emulator, sub: Obj, params: Params) -> None:
    sub["metadata"] = read_metadata_update(params, sub["metadata"])
    if "description" in params:
        sub["description"] = params.text("description")
    if "default_payment_method" in params:
        pm_id = params.text("default_payment_method")
        if pm_id is not None:
            emu.store.require(pm_id, "payment_method", "PaymentMethod", "default_payment_method")
        sub["default_payment_method"] = pm_id
    details = params.hash("cancellation_details")
    if details is not None:
        details.allow("comment", "feedback")
        sub["cancellation_details"] = {
            **sub["cancellation_details"],
            "comment": details.text("comment"),
            "feedback": details.text("feedback"),
        }
    _, end = period(sub)
    if "cancel_at_period_end" in params:
        if params.flag("cancel_at_period_end"):
            sub.update(cancel_at_period_end=True, cancel_at=end, canceled_at=emu.now())
        else:
            sub.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
            sub["cancellation_details"] = dict(NO_CANCELLATION_DETAILS)
    if "cancel_at" in params:
        cancel_at = params.integer("cancel_at")
        if cancel_at is not None and cancel_at <= emu.now():
            raise invalid("cancel_at must be in the future.", param="cancel_at")
        sub.update(
            cancel_at=cancel_at,
            cancel_at_period_end=cancel_at == end if cancel_at else False,
            canceled_at=emu.now() if cancel_at else None,
        )


def _apply_items(
    emu: Emulator, sub: Obj, customer: Obj, change: Change, moment: int, reset: bool, invoice_now: bool
) -> None:
    for charge in change.prorations:
        invoices.create_invoice_item(emu, customer, charge)
    set_items(sub, change.items)
    if reset:
        interval, count = cycle(emu, sub)
        sub["billing_cycle_anchor"] = moment
        set_period(sub, moment, add_interval(moment, interval, count))
    if not invoice_now:
        return
    start, end = period(sub)
    charges = period_charges(emu, sub, items_of(sub), start, end) if reset else []
    invoice = invoices.create_invoice(
        emu, customer, sub, "subscription_update", charges, (moment, moment), sub["currency"]
    )
    invoice["parent"]["subscription_details"]["subscription_proration_date"] = moment
    sub["latest_invoice"] = invoice["id"]
    invoices.finalize(emu, invoice, customer)
    collect(emu, invoice)


def end_trial(emu: Emulator, sub: Obj) -> None:
    """The trial is over: a new period starts at `trial_end` and its first real invoice is collected."""
    trial_start, trial_end = sub["trial_start"] or period(sub)[0], sub["trial_end"]
    sub["status"] = "active"
    sub["billing_cycle_anchor"] = trial_end
    interval, count = cycle(emu, sub)
    set_period(sub, trial_end, add_interval(trial_end, interval, count))
    _bill_period(emu, sub, (trial_start, trial_end))


def renew(emu: Emulator, sub: Obj) -> None:
    """The period ended: cancel if so scheduled, else start the next period (with the items its
    subscription schedule's next phase gives it, if any) and collect its invoice."""
    start, end = period(sub)
    if sub["cancel_at"] is not None and sub["cancel_at"] <= end:
        cancel_now(emu, sub, reason="cancellation_requested")
        return
    if schedules.at_period_end(emu, sub, end):  # its schedule may change the items, or end it
        cancel_now(emu, sub, reason="cancellation_requested")
        return
    interval, count = cycle(emu, sub)
    set_period(sub, end, next_period_end(sub["billing_cycle_anchor"], interval, count, after=end))
    _bill_period(emu, sub, (start, end))


def _bill_period(emu: Emulator, sub: Obj, ended: tuple[int, int]) -> None:
    customer = customer_of(emu, sub)
    start, end = period(sub)
    charges = period_charges(emu, sub, items_of(sub), start, end)
    invoice = invoices.create_invoice(
        emu, customer, sub, "subscription_cycle", charges, ended, sub["currency"]
    )
    sub["latest_invoice"] = invoice["id"]
    invoices.finalize(emu, invoice, customer)
    collect(emu, invoice)


def create_subscription(emu: Emulator, params: Params) -> Obj:
    """POST /v1/subscriptions: charges the customer's card at once (Checkout is the usual way in)."""
    params.allow(
        "customer",
        "default_payment_method",
        "description",
        "discounts",
        "expand",
        "items",
        "metadata",
        "off_session",
        "payment_behavior",
        "proration_behavior",
        "trial_end",
        "trial_period_days",
    )
    customer = emu.store.require(params.text("customer", required=True), "customer", "customer", "customer")
    payment_behavior = params.enum("payment_behavior", PAYMENT_BEHAVIORS) or "allow_incomplete"
    specs = item_specs(emu, params, "items")
    redemptions = discounts.read_discounts(
        emu, params, "discounts", customer, specs[0].price["currency"], [s.price for s in specs]
    )
    trial_end = trial_end_from(emu, params)
    if (
        payment_behavior == "error_if_incomplete"
        and not trial_end
        and customer["_payment_outcome"] != "paid"
        and sum(s.price["unit_amount"] * s.quantity for s in specs) + customer.get("balance", 0) > 0
    ):
        raise card_declined()
    sub, _, _ = start_subscription(
        emu,
        customer,
        specs,
        metadata=read_metadata_update(params, {}),
        trial_end=trial_end,
        description=params.text("description"),
        default_payment_method=params.text("default_payment_method"),
        redemptions=redemptions,
    )
    return sub


def delete_discount(emu: Emulator, sub: Obj) -> Obj:
    """DELETE /v1/subscriptions/{id}/discount: the removed discount, as Stripe answers it."""
    live = discounts.live_discounts(emu, sub)
    if not live:
        raise invalid(f"The subscription {sub['id']} has no discount to delete.")
    before = snapshot(emu, sub)
    discounts.remove_all(emu, sub)
    publish(emu, sub, before)
    removed = {k: v for k, v in emu.render(live[0]).items() if k != "end"}
    return {**removed, "deleted": True}


def item_specs(emu: Emulator, params: Params, key: str) -> list[ItemSpec]:
    specs = []
    for item in params.hashes(key):
        item.allow("price", "quantity", "metadata", "tax_rates", "discounts", "adjustable_quantity")
        price = recurring_price(emu, item.text("price", required=True), item.name("price"))
        specs.append(
            ItemSpec(price, item.integer("quantity", minimum=1) or 1, read_metadata_update(item, {}))
        )
    check_compatible([s.price for s in specs], key)
    return specs


def trial_end_from(emu: Emulator, params: Params) -> int | None:
    days = params.integer("trial_period_days", minimum=0)
    if days:
        if days > 730:
            raise invalid(
                "trial_period_days can be at most 730 days.", param=params.name("trial_period_days")
            )
        return emu.now() + days * DAY
    end = params.integer("trial_end")
    if end is not None:
        if end <= emu.now():
            raise invalid("trial_end must be in the future.", param=params.name("trial_end"))
        return end
    return None


def delete_customer(emu: Emulator, customer: Obj) -> Obj:
    for sub in emu.store.all(
        "subscription", lambda s: s["customer"] == customer["id"] and s["status"] not in ENDED
    ):
        before = snapshot(emu, sub)
        cancel_now(emu, sub, reason="cancellation_requested")
        publish(emu, sub, before)
    emu.emit("customer.deleted", customer)
    stub = {"id": customer["id"], "object": "customer", "deleted": True}
    customer.clear()
    customer.update(stub)
    return dict(stub)
