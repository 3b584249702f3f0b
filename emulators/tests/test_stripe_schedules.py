"""Subscription schedules: a cheaper price from the next period on (created from the subscription,
phases updated, the phase taking effect at the renewal), released or canceled, and the requests
Stripe refuses. Every answer and event is checked against Stripe's schemas (pytest_plugin)."""

from __future__ import annotations

import pytest
import stripe
from stripe_support import DAY, Control, Receiver, make_price, subscribe

pytest_plugins = ["stripe_fixtures"]


def schedule_downgrade(
    client: stripe.StripeClient, sub: stripe.Subscription, price_id: str
) -> stripe.SubscriptionSchedule:
    """Stripe's recipe: a schedule from the subscription, then the cheaper price as a second phase."""
    schedule = client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    current = schedule.phases[0]
    return client.v1.subscription_schedules.update(
        schedule.id,
        params={
            "end_behavior": "release",
            "phases": [
                {
                    "items": [{"price": str(current["items"][0].price), "quantity": 1}],
                    "start_date": current.start_date,
                    "end_date": current.end_date,
                },
                {"items": [{"price": price_id, "quantity": 1}], "iterations": 1},
            ],
        },
    )


def test_a_scheduled_downgrade_takes_effect_at_the_renewal_then_the_schedule_is_released(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    dear, cheap = make_price(client, 3000), make_price(client, 1000, name="Starter")
    sub = subscribe(client, emulator, dear.id)
    end = sub["items"].data[0].current_period_end
    schedule = schedule_downgrade(client, sub, cheap.id)
    assert (schedule.status, schedule.subscription, schedule.end_behavior) == ("active", sub.id, "release")
    assert [(p.start_date, p.end_date) for p in schedule.phases] == [
        (sub["items"].data[0].current_period_start, end),
        (end, end + 30 * DAY),
    ]
    assert schedule.current_phase is not None and schedule.current_phase.end_date == end
    attached = client.v1.subscriptions.retrieve(sub.id)
    assert attached.schedule == schedule.id and attached["items"].data[0].price.id == dear.id

    emulator.advance(30 * DAY + 60)
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice", "schedule"]})
    assert renewed["items"].data[0].price.id == cheap.id
    assert (renewed.latest_invoice.billing_reason, renewed.latest_invoice.amount_paid) == (
        "subscription_cycle",
        1000,
    )
    assert renewed.schedule.id == schedule.id and renewed.schedule.current_phase.start_date == end

    emulator.advance(30 * DAY)  # the last phase ends: released, the subscription carries on as it is
    released = client.v1.subscription_schedules.retrieve(schedule.id)
    assert (released.status, released.subscription, released.released_subscription) == (
        "released",
        None,
        sub.id,
    )
    later = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert (later.status, later.schedule, later["items"].data[0].price.id) == ("active", None, cheap.id)
    assert later.latest_invoice.amount_paid == 1000

    emulator.flush()
    types = [t for t in webhook_receiver.types() if t.startswith("subscription_schedule.")]
    assert types == [
        "subscription_schedule.created",
        "subscription_schedule.updated",
        "subscription_schedule.updated",
        "subscription_schedule.released",
    ]
    switched = [
        e
        for e in webhook_receiver.events()
        if e.type == "customer.subscription.updated" and "items" in (e.data.previous_attributes or {})
    ]
    assert switched and switched[0].data.object["items"].data[0].price.id == cheap.id


def test_a_released_schedule_leaves_the_subscription_as_it_is(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    dear, cheap = make_price(client, 3000), make_price(client, 1000, name="Starter")
    sub = subscribe(client, emulator, dear.id)
    schedule = schedule_downgrade(client, sub, cheap.id)
    released = client.v1.subscription_schedules.release(schedule.id)
    assert (released.status, released.released_subscription) == ("released", sub.id)
    assert client.v1.subscriptions.retrieve(sub.id).schedule is None
    emulator.advance(30 * DAY + 60)
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert renewed["items"].data[0].price.id == dear.id and renewed.latest_invoice.amount_paid == 3000
    with pytest.raises(stripe.InvalidRequestError, match="status is released"):
        client.v1.subscription_schedules.release(schedule.id)
    mine = client.v1.subscription_schedules.list(params={"customer": str(sub.customer)}).data
    assert [s.id for s in mine] == [schedule.id]


def test_canceling_a_schedule_cancels_its_subscription(
    client: stripe.StripeClient, emulator: Control
) -> None:
    sub = subscribe(client, emulator, make_price(client, 3000).id)
    schedule = client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    canceled = client.v1.subscription_schedules.cancel(schedule.id)
    assert canceled.status == "canceled" and canceled.canceled_at is not None
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    # and the other way round: a subscription canceled takes its schedule with it
    other = subscribe(client, emulator, make_price(client, 3000).id, email="bo@example.com")
    attached = client.v1.subscription_schedules.create(params={"from_subscription": other.id})
    client.v1.subscriptions.cancel(other.id)
    assert client.v1.subscription_schedules.retrieve(attached.id).status == "canceled"


def test_schedule_requests_stripe_refuses(client: stripe.StripeClient, emulator: Control) -> None:
    dear, cheap = make_price(client, 3000), make_price(client, 1000, name="Starter")
    sub = subscribe(client, emulator, dear.id)
    schedule = client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    with pytest.raises(stripe.InvalidRequestError, match="already attached to a schedule"):
        client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    current = schedule.phases[0]
    with pytest.raises(stripe.InvalidRequestError, match="start date of the current phase"):
        client.v1.subscription_schedules.update(
            schedule.id,
            params={
                "phases": [
                    {
                        "items": [{"price": dear.id}],
                        "start_date": current.start_date + 1,
                        "end_date": current.end_date,
                    }
                ]
            },
        )
    with pytest.raises(stripe.InvalidRequestError, match="end_date or iterations"):
        client.v1.subscription_schedules.update(
            schedule.id,
            params={
                "phases": [
                    {"items": [{"price": dear.id}], "end_date": current.end_date},
                    {"items": [{"price": cheap.id}]},
                ]
            },
        )
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.subscription_schedules.retrieve("sub_sched_missing")
    assert missing.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError, match="from_subscription"):
        client.v1.subscription_schedules.create(params={"customer": str(sub.customer)})
    unchanged = client.v1.subscription_schedules.retrieve(schedule.id)
    assert len(unchanged.phases) == 1 and unchanged.status == "active"
