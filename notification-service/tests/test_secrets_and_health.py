"""No secret reaches a log line; health, readiness (database, broker, SMTP) and metrics."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from aio_pika.abc import AbstractConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import (
    Stack,
    envelope,
    make_settings,
    new_email,
    running_stack,
    sample,
    wait_for_deliveries,
    wait_for_mail,
)
from gatehouse_platform.testing import free_port

pytestmark = pytest.mark.timeout(60)

Db = async_sessionmaker[AsyncSession]


async def test_one_time_secrets_never_reach_a_log_line(
    stack: Stack, maildir: Path, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything, SQL statements and their parameters included (the last call sets the handler's level).
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    caplog.set_level(logging.DEBUG)
    code, token = "730418", "s3cret-verify-token-value"
    to = new_email()
    login = envelope(sample("user.login_code_requested", email=to, code=code))
    verify = envelope(sample("user.email_verification_requested", email=to, token=token))
    await stack.publish(login)
    await stack.publish(login)  # a duplicate is logged as skipped
    await stack.publish(verify)

    await wait_for_mail(maildir, to, count=2)
    await wait_for_deliveries(db, login.id, "sent")
    await wait_for_deliveries(db, verify.id, "sent")
    # The SMTP server of the test is the recipient's side: it has to see the message.
    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]
    assert any(r.name.startswith("notification_service") for r in ours)
    assert any(r.name.startswith("sqlalchemy") for r in ours)
    for record in ours:
        line = f"{record.getMessage()} {record.__dict__}"
        assert code not in line, record.name
        assert token not in line, record.name


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    verbose = await client.get("/readyz", params={"verbose": True})
    assert verbose.json()["reported"] == {"broker": "ok", "smtp": "ok"}


async def test_an_smtp_outage_is_reported_but_keeps_the_api_in_rotation(
    database_url: str, amqp_url: str, jwks_url: str, bus: AbstractConnection
) -> None:
    """Deliveries wait and retry while SMTP is down: the admin API still serves, so an outage of
    the mail relay must not take the service out of rotation (issue 22's fault drill)."""
    settings = make_settings(database_url, amqp_url, jwks_url, free_port())  # nothing listens there
    async with running_stack(settings, bus, run_consumer=False) as stack:
        response = await stack.client.get("/readyz", params={"verbose": True})
        metrics = (await stack.client.get("/metrics")).text
    assert response.status_code == 200
    body = response.json()
    assert body["checks"] == {"database": "ok", "redis": "ok"}
    assert body["reported"]["smtp"].startswith("fail")
    assert body["reported"]["broker"] == "ok"
    assert 'dependency_up{dependency="smtp"} 0.0' in metrics


async def test_metrics_count_sent_emails_and_send_latency(
    stack: Stack, client: httpx.AsyncClient, maildir: Path
) -> None:
    to = new_email()
    await stack.publish(envelope(sample("user.reactivated", email=to)))
    await wait_for_mail(maildir, to)
    text = (await client.get("/metrics")).text
    assert 'notification_emails_sent_total{template="account_reactivated"}' in text
    assert "notification_smtp_send_seconds_bucket" in text
    assert "gatehouse_events_handled_total" in text
