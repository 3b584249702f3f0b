"""Dunning: a renewal whose payment failed, while Stripe retries it on its schedule.

The row converges on Stripe like the rest of it (`follow`, called by `sync.apply_snapshot` with the
subscription just re-read):
- `past_due_since`: when the unpaid invoice was first attempted (Stripe's time), set on entering
  `past_due` / `unpaid`; the grace (`BILLING_DUNNING_GRACE_SECONDS`) counts from it;
- `next_payment_attempt`: Stripe's next retry of its latest invoice (null: none planned);
- `retries_exhausted_at`: the latest invoice is open, was attempted, and Stripe plans no retry;
- `restricted_at`: access is withheld (`has_access` false, no features): Stripe says `unpaid`, the
  retries are exhausted, or the expiry sweep found the grace over (`lifecycle.restrict_after_grace`).
All four are cleared when the subscription is active again: paid (then `payment.recovered` is
announced, payments/service.py), or its invoice voided or forgiven.

After the last retry, `lifecycle.settle_exhausted_retries` applies `BILLING_DUNNING_FINAL_ACTION`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from billing_service.integrations.stripe import SubscriptionSnapshot
from billing_service.models import Subscription, SubscriptionStatus

DUNNING_STATUSES = (SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID)


def follow(row: Subscription, snapshot: SubscriptionSnapshot, *, now: datetime) -> None:
    """Converge the dunning markers of a (locked) row whose status was just set from `snapshot`."""
    if row.status not in DUNNING_STATUSES:
        row.past_due_since = row.next_payment_attempt = None
        row.retries_exhausted_at = row.restricted_at = None
        return
    latest = snapshot.latest_invoice
    unpaid = latest if latest is not None and latest.status == "open" else None
    row.past_due_since = row.past_due_since or (unpaid.created if unpaid else now)
    row.next_payment_attempt = unpaid.next_payment_attempt if unpaid else None
    exhausted = unpaid is not None and unpaid.attempt_count > 0 and unpaid.next_payment_attempt is None
    if exhausted:
        row.retries_exhausted_at = row.retries_exhausted_at or now
    if exhausted or row.status == SubscriptionStatus.UNPAID:
        row.restricted_at = row.restricted_at or now


def grace_until(row: Subscription, grace: timedelta) -> datetime | None:
    """Until when a past-due subscription keeps its features (None: not in dunning)."""
    if row.status not in DUNNING_STATUSES or row.past_due_since is None:
        return None
    return row.past_due_since + grace
