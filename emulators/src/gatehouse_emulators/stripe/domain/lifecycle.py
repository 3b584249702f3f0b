"""Work that falls due as time passes, run in time order with the clock pinned to each due moment.

Due work: `customer.subscription.trial_will_end` (`trial_will_end_days` before a trial ends),
`invoice.upcoming` (`upcoming_invoice_days` before a renewal or trial end), trial ends, period ends
(renewal, or the end of a subscription set to cancel), `cancel_at` inside a period, dunning retries
(`invoice.next_payment_attempt`), `incomplete` subscriptions expiring 23 h after creation, and
Checkout Sessions expiring at `expires_at`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gatehouse_emulators.stripe.domain import billing, checkout, invoices, payments, previews
from gatehouse_emulators.stripe.domain.state import Emulator
from gatehouse_emulators.stripe.domain.store import Obj
from gatehouse_emulators.stripe.domain.subscriptions import period, publish, snapshot

MAX_STEPS = 100_000


@dataclass(order=True)
class Due:
    at: int
    order: int  # ties: expiries and trial notices before renewals before retries
    kind: str
    object_id: str


def _subscription_work(emu: Emulator, sub: Obj) -> list[Due]:
    work: list[Due] = []
    status, sub_id = sub["status"], sub["id"]
    if status == "trialing" and sub["trial_end"]:
        if not sub.get("_trial_will_end_sent"):
            notice = max(sub["trial_start"] or 0, sub["trial_end"] - emu.config.trial_will_end_days * 86400)
            work.append(Due(notice, 1, "trial_will_end", sub_id))
        work.append(Due(sub["trial_end"], 2, "trial_end", sub_id))
    if status in ("active", "past_due", "unpaid", "trialing") and not sub["cancel_at_period_end"]:
        start, end = period(sub)
        notice = end - emu.config.upcoming_invoice_days * 86400
        if emu.config.upcoming_invoice_days > 0 and notice > start and sub.get("_upcoming_for") != end:
            work.append(Due(notice, 1, "invoice_upcoming", sub_id))
    if status in ("active", "past_due", "unpaid"):
        _, end = period(sub)
        if sub["cancel_at"] is not None and sub["cancel_at"] < end:
            work.append(Due(sub["cancel_at"], 2, "cancel_at", sub_id))
        else:
            work.append(Due(end, 2, "period_end", sub_id))
    elif status == "incomplete":
        work.append(Due(sub["created"] + emu.config.incomplete_expiry, 0, "incomplete_expiry", sub_id))
    return work


def pending_work(emu: Emulator) -> list[Due]:
    work: list[Due] = []
    for sub in emu.store.all("subscription"):
        work += _subscription_work(emu, sub)
    for invoice in emu.store.all("invoice", lambda i: i["status"] == "open" and i["next_payment_attempt"]):
        work.append(Due(invoice["next_payment_attempt"], 3, "retry", invoice["id"]))
    for session in emu.store.all("checkout.session", lambda s: s["status"] == "open"):
        work.append(Due(session["expires_at"], 0, "session_expiry", session["id"]))
    return sorted(work)


def run_due(emu: Emulator, until: int) -> list[Due]:
    """Process everything due at or before `until`, earliest first; returns what ran."""
    done: list[Due] = []
    for _ in range(MAX_STEPS):
        work = pending_work(emu)
        if not work or work[0].at > until:
            return done
        due = work[0]
        with emu.clock.at(max(due.at, 0)):
            HANDLERS[due.kind](emu, due.object_id)
        done.append(due)
    raise RuntimeError("due work did not settle")


def advance_to(emu: Emulator, moment: int) -> list[Due]:
    """Run what falls due up to `moment`, then move the clock there (never backwards)."""
    done = run_due(emu, moment)
    if moment > emu.now():
        emu.clock.advance(moment - emu.now())
    return done


def _with_subscription(action: Callable[[Emulator, Obj], None]) -> Callable[[Emulator, str], None]:
    def run(emu: Emulator, sub_id: str) -> None:
        sub = emu.store.get(sub_id, "subscription")
        assert sub is not None
        before = snapshot(emu, sub)
        action(emu, sub)
        publish(emu, sub, before)

    return run


def _trial_will_end(emu: Emulator, sub_id: str) -> None:
    sub = emu.store.get(sub_id, "subscription")
    assert sub is not None
    sub["_trial_will_end_sent"] = True
    emu.emit("customer.subscription.trial_will_end", sub)


def _invoice_upcoming(emu: Emulator, sub_id: str) -> None:
    sub = emu.store.get(sub_id, "subscription")
    assert sub is not None
    sub["_upcoming_for"] = period(sub)[1]
    if sub["cancel_at"] is None:
        emu.emit("invoice.upcoming", previews.upcoming_invoice(emu, sub))


def _cancel_at(emu: Emulator, sub: Obj) -> None:
    billing.cancel_now(emu, sub, reason="cancellation_requested")


def _expire_incomplete(emu: Emulator, sub: Obj) -> None:
    sub["status"] = "incomplete_expired"
    sub["ended_at"] = emu.now()
    invoice = emu.store.get(sub["latest_invoice"] or "", "invoice")
    if invoice is not None and invoice["status"] == "open":
        payments.cancel_intent(emu, invoice)
        invoices.void(emu, invoice)


def _retry(emu: Emulator, invoice_id: str) -> None:
    invoice = emu.store.get(invoice_id, "invoice")
    assert invoice is not None
    billing.retry_invoice(emu, invoice)


def _session_expiry(emu: Emulator, session_id: str) -> None:
    session = emu.store.get(session_id, "checkout.session")
    assert session is not None
    checkout.expire(emu, session)


HANDLERS: dict[str, Callable[[Emulator, str], None]] = {
    "trial_will_end": _trial_will_end,
    "invoice_upcoming": _invoice_upcoming,
    "trial_end": _with_subscription(billing.end_trial),
    "period_end": _with_subscription(billing.renew),
    "cancel_at": _with_subscription(_cancel_at),
    "incomplete_expiry": _with_subscription(_expire_incomplete),
    "retry": _retry,
    "session_expiry": _session_expiry,
}
