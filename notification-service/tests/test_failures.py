"""SMTP trouble: an outage is ridden out with retries; a permanent refusal is recorded, dead-lettered
at once, and delivered after a replay once the server accepts again."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import (
    MailServer,
    Stack,
    envelope,
    make_settings,
    new_email,
    read_maildir,
    running_stack,
    sample,
    wait_for_deliveries,
    wait_for_mail,
)
from gatehouse_platform.tcp_proxy import TcpProxy
from gatehouse_platform.testing import eventually
from notification_service.models import Delivery

pytestmark = pytest.mark.timeout(60)

Db = async_sessionmaker[AsyncSession]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def eventually_dead_letters(stack: Stack, count: int) -> None:
    async def counted() -> bool:
        return await stack.dead_letters() == count

    await eventually(counted, f"{count} dead letters")


async def test_an_email_sent_while_smtp_is_down_is_delivered_once_it_is_back(
    isolated: tuple[Stack, MailServer], db: Db
) -> None:
    stack, server = isolated
    retried_before = metric("notification_emails_retried_total", template="password_changed")
    server.stop()
    to = new_email()
    event = envelope(sample("user.password_changed", email=to))
    await stack.publish(event)

    [deferred] = await wait_for_deliveries(db, event.id, "deferred")
    assert deferred.error is not None and "connect" in deferred.error.lower()
    server.start()

    [message] = await wait_for_mail(server.maildir, to)
    [sent] = await wait_for_deliveries(db, event.id, "sent")
    assert sent.attempts >= 2
    assert sent.error is None
    assert message["Message-ID"] == sent.message_id == deferred.message_id  # the same on every attempt
    assert metric("notification_emails_retried_total", template="password_changed") > retried_before
    await eventually_dead_letters(stack, 0)


async def test_an_email_in_flight_when_the_process_died_is_sent_again_with_the_same_message_id(
    stack: Stack, maildir: Path, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    """The documented window: SMTP took the message, the process died before the commit. The
    redelivered event finds the row `sending` and sends again, recognisably the same message."""
    to = new_email()
    event = envelope(sample("user.identity_unlinked", email=to))
    async with db() as session:
        session.add(
            Delivery(
                event_id=event.id,
                event_type=event.type,
                template="identity_unlinked",
                recipient=to,
                subject="(claimed before the crash)",
                status="sending",
                attempts=1,
                message_id="<crashed-attempt@mail.gatehouse.test>",
            )
        )
        await session.commit()

    await stack.publish(event)
    [message] = await wait_for_mail(maildir, to)
    [sent] = await wait_for_deliveries(db, event.id, "sent")
    assert message["Message-ID"] == sent.message_id == "<crashed-attempt@mail.gatehouse.test>"
    assert sent.attempts == 2
    assert any("in flight" in r.getMessage() and str(sent.id) in r.getMessage() for r in caplog.records)


async def test_a_4xx_answer_is_retried_with_back_off(isolated: tuple[Stack, MailServer], db: Db) -> None:
    stack, server = isolated
    to = new_email()
    server.handler.greylisted[to] = 2
    event = envelope(sample("subscription.resumed", email=to))
    await stack.publish(event)

    [message] = await wait_for_mail(server.maildir, to)
    [sent] = await wait_for_deliveries(db, event.id, "sent")
    assert sent.attempts == 3
    assert message["Message-ID"] == sent.message_id
    assert await stack.dead_letters() == 0


async def test_a_refused_recipient_is_failed_dead_lettered_and_delivered_after_replay(
    isolated: tuple[Stack, MailServer], db: Db, admin: dict[str, str]
) -> None:
    stack, server = isolated
    to = new_email()
    server.handler.refused.add(to)
    event = envelope(sample("subscription.past_due", email=to))
    await stack.publish(event)

    [failed] = await wait_for_deliveries(db, event.id, "failed")
    await eventually_dead_letters(stack, 1)
    assert failed.attempts == 1  # no retries for a permanent refusal
    listed = await stack.client.get(
        "/notifications/deliveries", params={"recipient": to, "status": "failed"}, headers=admin
    )
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert (item["id"], item["smtp_code"]) == (str(failed.id), 550)
    assert "mailbox unavailable" in item["error"]
    assert read_maildir(server.maildir, to) == []

    counted = await stack.client.get("/notifications/dead-letters", headers=admin)
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"count": 1}

    server.handler.refused.clear()  # the address is fixed
    replayed = await stack.client.post("/notifications/dead-letters/replay", headers=admin)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json() == {"replayed": 1}

    [message] = await wait_for_mail(server.maildir, to)
    [sent] = await wait_for_deliveries(db, event.id, "sent")
    assert (sent.id, sent.attempts) == (failed.id, 2)
    assert message["Message-ID"] == sent.message_id
    await eventually_dead_letters(stack, 0)
    assert (await stack.client.get("/notifications/dead-letters", headers=admin)).json() == {"count": 0}


async def test_a_replay_sends_only_what_was_not_sent(
    isolated: tuple[Stack, MailServer], db: Db, admin: dict[str, str]
) -> None:
    stack, server = isolated
    old, new = new_email(), new_email()
    server.handler.refused.add(new)
    event = envelope(sample("user.email_changed", old_email=old, new_email=new))
    await stack.publish(event)

    rows = await wait_for_deliveries(db, event.id, "failed", "sent")
    assert {r.recipient: r.status for r in rows} == {old: "sent", new: "failed"}
    await eventually_dead_letters(stack, 1)

    server.handler.refused.clear()
    assert (await stack.client.post("/notifications/dead-letters/replay", headers=admin)).json() == {
        "replayed": 1
    }
    await wait_for_deliveries(db, event.id, "sent", "sent")
    await wait_for_mail(server.maildir, new)
    await asyncio.sleep(0.3)
    assert len(read_maildir(server.maildir, old)) == 1
    assert len(read_maildir(server.maildir, new)) == 1


async def test_a_permanent_failure_counts_as_rejected_dead_letter(
    isolated: tuple[Stack, MailServer], db: Db
) -> None:
    stack, server = isolated
    labels: dict[str, Any] = {"consumer": stack.settings.consumer_name, "reason": "rejected"}
    to = new_email()
    server.handler.refused.add(to)
    event = envelope(sample("payment.failed", email=to))
    await stack.publish(event)

    await wait_for_deliveries(db, event.id, "failed")
    await eventually_dead_letters(stack, 1)
    assert metric("gatehouse_events_dead_lettered_total", **labels) == 1
    assert metric("notification_emails_failed_total", template="payment_failed") >= 1


async def test_resend_through_a_refusing_server_answers_409_and_keeps_the_attempt(
    isolated: tuple[Stack, MailServer], db: Db, admin: dict[str, str]
) -> None:
    stack, server = isolated
    to = new_email()
    event = envelope(sample("user.reactivated", email=to))
    await stack.publish(event)
    [sent] = await wait_for_deliveries(db, event.id, "sent")

    server.handler.refused.add(to)
    response = await stack.client.post(f"/notifications/deliveries/{sent.id}/resend", headers=admin)
    assert response.status_code == 409, response.text
    assert response.json()["type"].endswith("/recipient-rejected")
    rows = await wait_for_deliveries(db, event.id, "sent", "failed")
    [attempt] = [r for r in rows if r.resend_of == sent.id]
    assert attempt.smtp_code == 550

    server.stop()
    response = await stack.client.post(f"/notifications/deliveries/{sent.id}/resend", headers=admin)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    await wait_for_deliveries(db, event.id, "sent", "failed", "failed")


async def test_a_hung_smtp_server_keeps_the_service_in_rotation_and_every_email_goes_once_after(
    database_url: str,
    amqp_url: str,
    jwks_url: str,
    bus: aio_pika.abc.AbstractConnection,
    tmp_path: Path,
    db: Db,
) -> None:
    """issue 22's drill: the SMTP server hung (accepting, answering nothing). Readiness stays 200
    (SMTP is reported, not required) and answers within its check timeout; once the server answers
    again, every email is delivered, once."""
    server = MailServer(tmp_path / "Maildir")
    server.start()
    link = TcpProxy("127.0.0.1", server.port)
    await link.open()
    name = uuid.uuid4().hex[:10]
    settings = make_settings(
        database_url,
        amqp_url,
        jwks_url,
        link.port,
        events_exchange=f"test.events.{name}",
        consumer_name=f"notification-test-{name}",
        consumer_retry_delays=[0.2, 0.5, 1.0, 2.0, 2.0],
    )
    try:
        async with running_stack(settings, bus) as stack:
            link.stall()
            recipients = [new_email() for _ in range(5)]
            events = [envelope(sample("user.password_changed", email=to)) for to in recipients]
            for event in events:
                await stack.publish(event)
            ready = await stack.client.get("/readyz")
            verbose = await stack.client.get("/readyz", params={"verbose": True})
            link.resume()
            for event in events:
                await wait_for_deliveries(db, event.id, "sent")
            for to in recipients:
                await wait_for_mail(server.maildir, to)
            await asyncio.sleep(0.5)  # a second copy would have arrived by now
            received = [len(read_maildir(server.maildir, to)) for to in recipients]
    finally:
        link.resume()
        await link.close()
        server.stop()
    assert ready.status_code == 200, ready.text
    assert verbose.status_code == 200
    assert verbose.json()["reported"]["smtp"].startswith("fail")
    assert received == [1] * len(events)
