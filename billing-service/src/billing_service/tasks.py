"""Celery app of billing-service (broker: RabbitMQ) and its periodic tasks: the expiry sweep, the
reconciliation with Stripe and the "card expires soon" check.

Run a worker with `billing-service worker` and the schedule with `billing-service beat` (they exec
`celery -A billing_service.tasks worker|beat`).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from billing_service.maintenance import run_with_services
from billing_service.self_service.card_expiry import notify_expiring_cards as check_expiring_cards
from billing_service.settings import get_settings
from billing_service.subscriptions.lifecycle import sweep_expired
from billing_service.webhooks.reconcile import reconcile as reconcile_with_stripe
from gatehouse_platform.tasks import make_celery_app

settings = get_settings()
celery_app = make_celery_app(
    "billing_service",
    broker_url=settings.celery_broker_url,
    schedule={
        "expire-subscriptions": (
            "billing_service.tasks.expire_subscriptions",
            settings.sweep_interval_seconds,
        ),
        "reconcile-with-stripe": (
            "billing_service.tasks.reconcile_with_stripe",
            settings.reconcile_interval_seconds,
        ),
        "notify-expiring-cards": (
            "billing_service.tasks.notify_expiring_cards",
            settings.card_expiry_check_interval_seconds,
        ),
    },
)


@celery_app.task(name="billing_service.tasks.expire_subscriptions")
def expire_subscriptions() -> dict[str, Any]:
    return asdict(asyncio.run(run_with_services(sweep_expired)))


@celery_app.task(name="billing_service.tasks.reconcile_with_stripe")
def reconcile() -> dict[str, Any]:
    result = asyncio.run(run_with_services(reconcile_with_stripe))
    return {**asdict(result), "since": result.since.isoformat()}


@celery_app.task(name="billing_service.tasks.notify_expiring_cards")
def notify_expiring_cards() -> dict[str, Any]:
    return asdict(asyncio.run(run_with_services(check_expiring_cards)))
