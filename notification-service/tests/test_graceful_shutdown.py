"""SIGTERM mid-load: the service stops taking messages, finishes the ones in hand, and leaves the
rest on the queue; started again, it delivers every email exactly once.

The service runs as a real process (`notification-service serve`) with a database, a RabbitMQ
vhost and an SMTP catcher of this test's own.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from pathlib import Path

import aio_pika

from conftest import envelope, read_maildir, sample
from gatehouse_emulators.smtp import start_catcher
from gatehouse_platform import testing
from gatehouse_platform.outbox import event_message
from gatehouse_platform.testing import free_port

EVENTS = 60


async def test_sigterm_mid_load_loses_nothing_and_sends_nothing_twice(
    own_database: str, own_vhost: str, tmp_path: Path
) -> None:
    maildir = tmp_path / "Maildir"
    smtp_port = free_port()
    catcher = start_catcher(maildir, port=smtp_port)
    env = {
        **os.environ,
        "NOTIFICATION_ENVIRONMENT": "test",
        "NOTIFICATION_DATABASE_URL": own_database,
        "NOTIFICATION_AMQP_URL": own_vhost,
        "NOTIFICATION_SMTP_PORT": str(smtp_port),
        "NOTIFICATION_CONSUMER_PREFETCH": "4",
        "NOTIFICATION_DATABASE_POOL_SIZE": "4",
        "NOTIFICATION_LOG_JSON": "false",
    }
    service = testing.ServiceProcess("notification_service.cli", env, free_port())
    recipients = [f"sigterm-{uuid.uuid4().hex[:8]}@example.com" for _ in range(EVENTS)]
    try:
        await service.start()  # declares its queue and bindings
        connection = await aio_pika.connect(own_vhost)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange("gatehouse.events")
            for to in recipients:
                event = envelope(sample("user.login_code_requested", email=to))
                await exchange.publish(event_message(event), routing_key=event.type)
            await testing.eventually(
                lambda: len(list((maildir / "new").iterdir())) >= 5,
                "the load to be under way",
                within=30,
                every=0.01,
            )

            assert await service.terminate() in testing.GRACEFUL_EXITS
            sent_before = Counter(str(m["To"]) for to in recipients for m in read_maildir(maildir, to))
            queue = await channel.declare_queue("notification-service", passive=True)
            waiting = queue.declaration_result.message_count or 0
            # Every event was either emailed or is back on the queue: none lost, none held unacked.
            assert len(sent_before) + waiting == EVENTS
            assert waiting > 0, "the load was still running when SIGTERM came"

        await service.start()
        await testing.eventually(
            lambda: sum(len(read_maildir(maildir, to)) for to in recipients) >= EVENTS,
            "every email to arrive",
            within=30,
        )
        await asyncio.sleep(0.5)  # anything extra would have arrived by now
        received = Counter(str(m["To"]) for to in recipients for m in read_maildir(maildir, to))
        assert received == Counter(recipients), "every email exactly once"
        assert await service.terminate() in testing.GRACEFUL_EXITS
    finally:
        service.kill()
        catcher.stop()
