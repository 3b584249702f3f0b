"""Celery app of auth-service (broker: RabbitMQ) and its periodic tasks: purge expired secrets, erase
the deleted accounts whose grace period is over.

Run a worker with `auth-service worker` and the schedule with `auth-service beat` (they exec
`celery -A auth_service.tasks worker|beat`).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.deletion import erase_due
from auth_service.maintenance import purge_expired, run_in_transaction
from auth_service.settings import Settings, get_settings
from gatehouse_platform.tasks import make_celery_app

settings = get_settings()
celery_app = make_celery_app(
    "auth_service",
    broker_url=settings.celery_broker_url,
    schedule={
        "purge-expired-credentials": (
            "auth_service.tasks.purge_expired_credentials",
            settings.purge_interval_seconds,
        ),
        "erase-deleted-accounts": (
            "auth_service.tasks.erase_deleted_accounts",
            settings.erase_interval_seconds,
        ),
    },
)


async def _purge(session: AsyncSession, settings: Settings) -> dict[str, int]:
    return asdict(await purge_expired(session, settings))


@celery_app.task(name="auth_service.tasks.purge_expired_credentials")
def purge_expired_credentials() -> dict[str, int]:
    return asyncio.run(run_in_transaction(_purge))


async def _erase(session: AsyncSession, settings: Settings) -> list[str]:
    return [str(user_id) for user_id in await erase_due(session)]


@celery_app.task(name="auth_service.tasks.erase_deleted_accounts")
def erase_deleted_accounts() -> list[str]:
    """One batch of erasures per run (a backlog drains over the next runs)."""
    return asyncio.run(run_in_transaction(_erase))
