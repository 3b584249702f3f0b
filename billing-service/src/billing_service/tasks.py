"""Celery app of billing-service (broker: RabbitMQ) and its periodic tasks: the expiry sweep and the
reconciliation with Stripe.

Run a worker with `billing-service worker` and the schedule with `billing-service beat` (they exec
`celery -A billing_service.tasks worker|beat`).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from celery import Celery

from billing_service.maintenance import run_with_services
from billing_service.settings import get_settings
from billing_service.subscriptions.lifecycle import sweep_expired
from billing_service.webhooks.reconcile import reconcile as reconcile_with_stripe

settings = get_settings()
celery_app = Celery("billing_service", broker=settings.celery_broker_url)
celery_app.conf.update(
    task_default_queue="billing-service.tasks",
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    beat_schedule={
        "expire-subscriptions": {
            "task": "billing_service.tasks.expire_subscriptions",
            "schedule": settings.sweep_interval_seconds,
        },
        "reconcile-with-stripe": {
            "task": "billing_service.tasks.reconcile_with_stripe",
            "schedule": settings.reconcile_interval_seconds,
        },
    },
)


@celery_app.task(name="billing_service.tasks.expire_subscriptions")
def expire_subscriptions() -> dict[str, Any]:
    return asdict(asyncio.run(run_with_services(sweep_expired)))


@celery_app.task(name="billing_service.tasks.reconcile_with_stripe")
def reconcile() -> dict[str, Any]:
    result = asyncio.run(run_with_services(reconcile_with_stripe))
    return {**asdict(result), "since": result.since.isoformat()}
