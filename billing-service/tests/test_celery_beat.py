"""The periodic jobs run end to end: beat schedules them on the real RabbitMQ, a worker runs them
against the real database and the Stripe emulator."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import stripe
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.models import Customer, EndReason, Subscription, SubscriptionStatus
from billing_service.settings import Settings
from conftest import (
    Emulator,
    NewPlan,
    WebhookEndpoint,
    subscribe,
    subscription_row,
    wait_for_status,
    webhooks_off,
)
from gatehouse_platform.db import utcnow


async def test_beat_schedules_the_sweep_and_the_reconciliation_and_a_worker_runs_them(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_user: Any,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    settings: Settings,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    plan = await new_plan()
    # A missed webhook: the Checkout was paid while Stripe could not reach us.
    user = new_user()
    checkout = await subscribe(client, user, plan["code"])
    async with webhooks_off(sdk, webhook_endpoint, emulator, db):
        await emulator.complete_checkout(checkout["session_id"], "paid")
    # A subscription whose access is long over (canceled at a period end 10 days ago).
    expired_user, expired_id = uuid.uuid4(), uuid.uuid4()
    async with db() as session:
        session.add(Customer(user_id=expired_user, email="expired@example.com"))
        await session.flush()
        session.add(
            Subscription(
                id=expired_id,
                user_id=expired_user,
                plan_id=uuid.UUID(plan["id"]),
                status=SubscriptionStatus.ACTIVE,
                cancel_at_period_end=True,
                current_period_start=utcnow() - timedelta(days=40),
                current_period_end=utcnow() - timedelta(days=10),
                activated_at=utcnow() - timedelta(days=40),
            )
        )
        await session.commit()

    env = {
        **os.environ,
        "BILLING_ENVIRONMENT": "test",
        "BILLING_DATABASE_URL": settings.database_url,
        "BILLING_CELERY_BROKER_URL": settings.celery_broker_url,
        "BILLING_STRIPE_API_BASE": settings.stripe_api_base,
        "BILLING_STRIPE_API_KEY": settings.stripe_api_key,
        "BILLING_STRIPE_MAX_NETWORK_RETRIES": "0",
        "BILLING_SWEEP_INTERVAL_SECONDS": "1",
        "BILLING_RECONCILE_INTERVAL_SECONDS": "1",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "billing_service.tasks",
            "worker",
            "--beat",
            "--concurrency",
            "1",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(tmp_path / "beat-schedule"),
            "-Q",
            "billing-service.tasks",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        healed = await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.ACTIVE, timeout=40)
        assert healed.stripe_subscription_id
        ended = await wait_for_status(db, expired_id, SubscriptionStatus.CANCELED, timeout=20)
        assert ended.end_reason == EndReason.CANCELED
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode is not None, output
    assert (await subscription_row(db, checkout["subscription_id"])).activated_at is not None
