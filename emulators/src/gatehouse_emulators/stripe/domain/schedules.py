"""Subscription schedules: a subscription's future as phases, Stripe's way to change a plan at the end
of the period (a downgrade that waits for the renewal).

What the emulator does of Stripe's API:
- create with `from_subscription` only: one phase, the subscription's items from its current period
  start to its end, `end_behavior: release`; the subscription's `schedule` names it;
- update `phases` (each: `items[]` with `price` and `quantity`, `start_date` (the first phase keeps
  its start; a later one starts where the one before ends), `end_date` or `iterations` (in the
  subscription's interval; the last phase needs one), `proration_behavior`, `metadata`) and
  `end_behavior` (`release` or `cancel`);
- `release`: the subscription carries on as it is, detached; `cancel`: the subscription is canceled
  too (reason `cancellation_requested`, by the route); a subscription canceled otherwise cancels its
  schedule (`end_with`, from `billing.cancel_now`);
- time passing (lifecycle.py through `billing.renew`): at a period end, a phase that ends there is
  left; a phase that starts there gives the subscription its items (nothing prorated: the new period
  is billed at the new price) and becomes `current_phase`; when the last phase ends, `release` frees
  the subscription (status `released`) and `cancel` cancels it (status `completed`).
Simplification: a phase takes effect at the subscription's first period end at or after its
`start_date` (Stripe can start one mid-period and prorate).

Events, as Stripe sends them: `subscription_schedule.created`, `.updated` (phases changed, or a phase
began), `.released`, `.canceled`, `.completed`; the subscription's `customer.subscription.updated`
follows its own changes (`schedule`, `items`)."""

from __future__ import annotations

import copy

from gatehouse_emulators.stripe.domain.clock import add_interval
from gatehouse_emulators.stripe.domain.state import Emulator
from gatehouse_emulators.stripe.domain.store import Obj, new_id
from gatehouse_emulators.stripe.domain.subscriptions import (
    ENDED,
    ItemSpec,
    check_compatible,
    cycle,
    items_of,
    new_item,
    period,
    publish,
    recurring_price,
    set_items,
    snapshot,
)
from gatehouse_emulators.stripe.wire.errors import invalid
from gatehouse_emulators.stripe.wire.forms import Params, read_metadata_update

PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")
END_BEHAVIORS = ("release", "cancel")
LIVE = ("not_started", "active")


def _phase(emu: Emulator, sub: Obj, items: list[Obj], start: int, end: int, behavior: str) -> Obj:
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": None,
        "currency": sub["currency"],
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "end_date": end,
        "invoice_settings": None,
        "items": [
            {
                "billing_thresholds": None,
                "discounts": [],
                "metadata": dict(item.get("metadata") or {}),
                "plan": item["price"],
                "price": item["price"],
                "quantity": item["quantity"],
                "tax_rates": [],
            }
            for item in items
        ],
        "metadata": {},
        "on_behalf_of": None,
        "proration_behavior": behavior,
        "start_date": start,
        "transfer_data": None,
        "trial_end": None,
    }


def create_schedule(emu: Emulator, params: Params) -> Obj:
    params.allow(
        "customer",
        "default_settings",
        "end_behavior",
        "expand",
        "from_subscription",
        "metadata",
        "phases",
        "start_date",
    )
    sub_id = params.text("from_subscription")
    if sub_id is None:
        raise invalid(
            "The emulator creates subscription schedules from a subscription only: pass from_subscription.",
            param="from_subscription",
        )
    sub = emu.store.require(sub_id, "subscription", "subscription", "from_subscription")
    if sub["status"] in ENDED:
        raise invalid(f"The subscription {sub_id} has ended.", param="from_subscription")
    if sub["schedule"] is not None:
        raise invalid(
            f"You cannot migrate a subscription that is already attached to a schedule: `{sub['schedule']}`.",
            param="from_subscription",
        )
    start, end = period(sub)
    now = emu.now()
    schedule: Obj = {
        "id": new_id("sub_sched_"),
        "object": "subscription_schedule",
        "application": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "canceled_at": None,
        "completed_at": None,
        "created": now,
        "current_phase": {"end_date": end, "start_date": start},
        "customer": sub["customer"],
        "customer_account": None,
        "default_settings": {
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": "automatic",
            "billing_thresholds": None,
            "collection_method": "charge_automatically",
            "default_payment_method": None,
            "description": None,
            "invoice_settings": {
                "account_tax_ids": None,
                "custom_fields": None,
                "days_until_due": None,
                "description": None,
                "footer": None,
                "issuer": {"type": "self"},
            },
            "on_behalf_of": None,
            "transfer_data": None,
        },
        "end_behavior": "release",
        "livemode": False,
        "metadata": read_metadata_update(params, {}),
        "pause_schedules": [],
        "phases": [_phase(emu, sub, items_of(sub), start, end, "create_prorations")],
        "released_at": None,
        "released_subscription": None,
        "status": "active",
        "subscription": sub["id"],
        "test_clock": None,
    }
    emu.store.add(schedule)
    before = snapshot(emu, sub)
    sub["schedule"] = schedule["id"]
    emu.emit("subscription_schedule.created", schedule)
    publish(emu, sub, before)
    return schedule


def _live(schedule: Obj, action: str) -> None:
    if schedule["status"] not in LIVE:
        raise invalid(
            f"You cannot {action} the subscription schedule {schedule['id']}: its status is "
            f"{schedule['status']}."
        )


def update_schedule(emu: Emulator, schedule: Obj, params: Params) -> Obj:
    params.allow("default_settings", "end_behavior", "expand", "metadata", "phases", "proration_behavior")
    _live(schedule, "update")
    sub = emu.store.get(schedule["subscription"] or "", "subscription")
    assert sub is not None
    end_behavior = params.enum("end_behavior", END_BEHAVIORS)
    phases = _read_phases(emu, sub, schedule, params.hashes("phases")) if "phases" in params else None
    if phases is not None:
        schedule["phases"] = phases
    if end_behavior is not None:
        schedule["end_behavior"] = end_behavior
    schedule["metadata"] = read_metadata_update(params, schedule["metadata"])
    emu.emit("subscription_schedule.updated", schedule)
    return schedule


def _read_phases(emu: Emulator, sub: Obj, schedule: Obj, given: list[Params]) -> list[Obj]:
    if not given:
        raise invalid("A subscription schedule needs at least one phase.", param="phases")
    current_start = schedule["phases"][0]["start_date"]
    interval, count = cycle(emu, sub)
    phases: list[Obj] = []
    start = current_start
    for index, phase in enumerate(given):
        phase.allow("end_date", "items", "iterations", "metadata", "proration_behavior", "start_date")
        if "start_date" in phase:
            if phase.raw("start_date") == "now":
                raise invalid("The emulator does not start phases `now`.", param=phase.name("start_date"))
            given_start = phase.integer("start_date")
            if index == 0 and given_start != current_start:
                raise invalid(
                    "You can not modify the start date of the current phase.", param=phase.name("start_date")
                )
            if index > 0 and given_start != start:
                raise invalid(
                    "Phases must be contiguous: a phase starts where the one before it ends.",
                    param=phase.name("start_date"),
                )
        items = phase.hashes("items")
        specs: list[ItemSpec] = []
        for item in items:
            item.allow("price", "quantity", "metadata", "discounts", "tax_rates")
            price = recurring_price(emu, item.text("price", required=True), item.name("price"))
            specs.append(
                ItemSpec(price, item.integer("quantity", minimum=1) or 1, read_metadata_update(item, {}))
            )
        check_compatible([s.price for s in specs], phase.name("items"))
        if specs[0].price["currency"] != sub["currency"]:
            raise invalid(
                "A subscription's currency cannot change; use prices in " + sub["currency"],
                param=phase.name("items"),
            )
        iterations = phase.integer("iterations", minimum=1)
        end = phase.integer("end_date")
        if end is None and iterations is not None:
            end = add_interval(start, interval, count * iterations)
        if end is None:
            raise invalid("Every phase needs an end_date or iterations.", param=phase.name("end_date"))
        if end <= start:
            raise invalid("A phase must end after it starts.", param=phase.name("end_date"))
        behavior = phase.enum("proration_behavior", PRORATION_BEHAVIORS) or "create_prorations"
        items_now = [{"price": s.price["id"], "quantity": s.quantity, "metadata": s.metadata} for s in specs]
        built = _phase(emu, sub, items_now, start, end, behavior)
        built["metadata"] = read_metadata_update(phase, {})
        phases.append(built)
        start = end
    return phases


def release_schedule(emu: Emulator, schedule: Obj, params: Params) -> Obj:
    params.allow("expand", "preserve_cancel_date")
    _live(schedule, "release")
    sub = emu.store.get(schedule["subscription"] or "", "subscription")
    before = snapshot(emu, sub) if sub is not None else None
    _release(emu, schedule, sub)
    if sub is not None and before is not None:
        publish(emu, sub, before)
    return schedule


def _release(emu: Emulator, schedule: Obj, sub: Obj | None) -> None:
    schedule.update(
        status="released",
        released_at=emu.now(),
        released_subscription=schedule["subscription"],
        subscription=None,
        current_phase=None,
    )
    if sub is not None:
        sub["schedule"] = None
    emu.emit("subscription_schedule.released", schedule)


def cancel_schedule(emu: Emulator, schedule: Obj, params: Params) -> Obj | None:
    """The schedule is canceled; returns its subscription, which the caller cancels too."""
    params.allow("expand", "invoice_now", "prorate")
    _live(schedule, "cancel")
    sub = emu.store.get(schedule["subscription"] or "", "subscription")
    schedule.update(status="canceled", canceled_at=emu.now(), current_phase=None)
    emu.emit("subscription_schedule.canceled", schedule)
    return sub if sub is not None and sub["status"] not in ENDED else None


def end_with(emu: Emulator, sub: Obj) -> None:
    """The subscription was canceled: its live schedule is canceled with it, as Stripe does."""
    schedule = emu.store.get(sub.get("schedule") or "", "subscription_schedule")
    if schedule is None or schedule["status"] not in LIVE:
        return
    schedule.update(status="canceled", canceled_at=emu.now(), current_phase=None)
    emu.emit("subscription_schedule.canceled", schedule)


def at_period_end(emu: Emulator, sub: Obj, boundary: int) -> bool:
    """The subscription's period ends at `boundary`: move its schedule on. Returns whether the
    subscription is to be canceled now (its last phase ended, `end_behavior: cancel`). Called by
    `billing.renew` inside its `publish`, so item changes are announced with the renewal."""
    schedule = emu.store.get(sub.get("schedule") or "", "subscription_schedule")
    if schedule is None or schedule["status"] not in LIVE:
        return False
    phases = schedule["phases"]
    if phases[-1]["end_date"] <= boundary:
        if schedule["end_behavior"] == "cancel":
            schedule.update(status="completed", completed_at=emu.now(), current_phase=None)
            sub["schedule"] = None
            emu.emit("subscription_schedule.completed", schedule)
            return True
        _release(emu, schedule, sub)
        return False
    upcoming = next((p for p in phases if p["start_date"] <= boundary < p["end_date"]), None)
    if upcoming is None:
        return False
    current = {"end_date": upcoming["end_date"], "start_date": upcoming["start_date"]}
    if schedule["current_phase"] == current:
        return False
    _enter(emu, sub, upcoming)
    schedule["current_phase"] = current
    emu.emit("subscription_schedule.updated", schedule)
    return False


def _enter(emu: Emulator, sub: Obj, phase: Obj) -> None:
    """The subscription takes the phase's items (same ids where the position is kept)."""
    start, end = period(sub)
    old = items_of(sub)
    items: list[Obj] = []
    for index, wanted in enumerate(phase["items"]):
        if index < len(old):
            item = copy.deepcopy(old[index])
            item.update(price=wanted["price"], quantity=wanted["quantity"], metadata=dict(wanted["metadata"]))
        else:
            price = emu.store.get(wanted["price"], "price")
            assert price is not None
            item = new_item(emu, sub["id"], ItemSpec(price, wanted["quantity"]), start, end)
        items.append(item)
    set_items(sub, items)
