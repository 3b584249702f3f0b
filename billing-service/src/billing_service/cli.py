"""`billing-service` command line: serve, migrate, worker, beat, replay-dead-letters, seed-plans,
reconcile, sweep."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import typer

from billing_service.errors import PaymentProviderUnavailable
from billing_service.main import bootstrap
from billing_service.maintenance import run_with_services, seed_plans
from billing_service.settings import get_settings
from billing_service.subscriptions.lifecycle import sweep_expired
from billing_service.webhooks.reconcile import reconcile as reconcile_with_stripe
from gatehouse_platform.cli import service_cli
from gatehouse_platform.consumer import EventConsumer


def _consumers() -> list[EventConsumer]:
    workers = bootstrap(get_settings())[1]
    return [workers.consumer, workers.denylist.consumer]


app = service_cli(
    "billing-service",
    app_factory="billing_service.main:create_app",
    port=8002,
    service_root=Path(__file__).resolve().parents[2],
    celery_app="billing_service.tasks",
    consumers=_consumers,
)


@app.command("seed-plans")
def seed(
    wait: float = typer.Option(0, help="Seconds to keep retrying while Stripe cannot be reached yet"),
) -> None:
    """Create the demo plans (starter, pro, business, pro-yearly) that do not exist yet, with their
    Stripe products and prices. Safe to run again."""
    deadline = time.monotonic() + wait
    while True:
        try:
            created = asyncio.run(run_with_services(seed_plans))
            break
        except PaymentProviderUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)  # `make run` starts Stripe's emulator alongside this
    typer.echo(f"created plans: {', '.join(created) or 'none (all exist)'}")


@app.command()
def reconcile() -> None:
    """Fetch the Stripe events billing may have missed and apply them."""
    result = asyncio.run(run_with_services(reconcile_with_stripe))
    counts = f"listed {result.listed}, missed {result.missed}, processed {result.processed}"
    typer.echo(f"since {result.since.isoformat()}: {counts}")


@app.command("sweep")
def sweep_command() -> None:
    """End the subscriptions whose access is over (period end plus grace)."""
    result = asyncio.run(run_with_services(sweep_expired))
    typer.echo(f"examined {result.examined}, ended {result.ended}, skipped {result.skipped}")


if __name__ == "__main__":
    app()
