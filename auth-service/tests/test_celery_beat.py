"""The periodic purge runs end to end: beat schedules it on the real RabbitMQ, a worker runs it
against the real database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.models import LoginCode
from conftest import register
from gatehouse_platform.db import utcnow


async def test_beat_schedules_the_purge_and_a_worker_runs_it(
    client: httpx.AsyncClient,
    db: async_sessionmaker[AsyncSession],
    database_url: str,
    amqp_url: str,
    tmp_path: Path,
) -> None:
    user_id = uuid.UUID((await register(client))["id"])
    async with db() as session:
        expired = LoginCode(user_id=user_id, code_hash="expired", expires_at=utcnow() - timedelta(minutes=1))
        session.add(expired)
        await session.commit()
    env = {
        **os.environ,
        "AUTH_DATABASE_URL": database_url,
        "AUTH_CELERY_BROKER_URL": amqp_url,
        "AUTH_PURGE_INTERVAL_SECONDS": "1",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "auth_service.tasks",
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
            "auth-service.tasks",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(150):
            async with db() as session:
                left = await session.execute(select(LoginCode.id).where(LoginCode.id == expired.id))
                if left.first() is None:
                    break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the scheduled purge never ran")
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode is not None, output
