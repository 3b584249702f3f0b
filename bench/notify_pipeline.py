"""Event-to-inbox pipeline of notification-service: events per second from the queue to "accepted
by SMTP", and the latency from publishing an event to its email arriving, in a burst and paced.

Starts notification-service (its own process, real settings but for the addresses) on a throw-away
database and RabbitMQ vhost, with an aiosmtpd server in this process recording when each email
arrives; publishes `user.password_changed` events (one recipient each) to `gatehouse.events`.

    uv run python bench/notify_pipeline.py [--events 500] [--paced 100 --rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import aio_pika
import asyncpg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gatehouse_contracts.envelope import new_event
from gatehouse_contracts.events import PasswordChanged
from gatehouse_platform import testing
from gatehouse_platform.outbox import event_message
from notification_service.settings import Settings
from support import ROOT, free_port, percentile, print_table, wait_ready

EXCHANGE = "gatehouse.events"


class Arrivals:
    """aiosmtpd handler: accepts everything, notes when each recipient's email arrived."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        now = time.perf_counter()
        for recipient in envelope.rcpt_tos:
            self.at.setdefault(recipient.lower(), now)
        return "250 OK"


async def publish(
    channel: aio_pika.abc.AbstractChannel, recipients: list[str], sent: dict[str, float]
) -> None:
    exchange = await channel.get_exchange(EXCHANGE)
    for recipient in recipients:
        data = PasswordChanged(
            user_id=uuid.uuid4(), email=recipient, method="change", changed_at=datetime.now(UTC)
        )
        event = new_event(data, source="/auth-service", subject=str(data.user_id))
        sent[recipient] = time.perf_counter()
        await exchange.publish(event_message(event), routing_key=event.type)


async def wait_for(arrivals: Arrivals, recipients: list[str], within: float) -> None:
    await testing.eventually(
        lambda: all(r in arrivals.at for r in recipients),
        f"{len(recipients)} emails to arrive",
        within=within,
        every=0.01,
    )


async def main(events: int, paced: int, rate: float) -> None:
    name = testing.unique_name("gh_bench_notify")
    url = await testing.create_database(name)
    arrivals = Arrivals()
    smtp_port, port = free_port(), free_port()
    smtp = Controller(arrivals, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        with testing.rabbitmq_vhost(name) as amqp_url:
            env = {
                **os.environ,
                "NOTIFICATION_DATABASE_URL": url,
                "NOTIFICATION_AMQP_URL": amqp_url,
                "NOTIFICATION_SMTP_HOST": "127.0.0.1",
                "NOTIFICATION_SMTP_PORT": str(smtp_port),
                "NOTIFICATION_LOG_LEVEL": "WARNING",
            }
            await testing.migrate(ROOT / "notification-service", url)
            server = subprocess.Popen(
                [sys.executable, "-m", "notification_service.cli", "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await wait_ready(f"http://127.0.0.1:{port}")

                connection = await aio_pika.connect(amqp_url)
                async with connection:
                    channel = await connection.channel(publisher_confirms=True)
                    await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
                    run = uuid.uuid4().hex[:6]

                    # Warm-up: the connections to Postgres and SMTP are open before measuring.
                    warm = [f"warm-{run}-{i}@example.com" for i in range(20)]
                    await publish(channel, warm, {})
                    await wait_for(arrivals, warm, 30)

                    # Burst: everything published at once; the service drains the queue.
                    burst = [f"burst-{run}-{i}@example.com" for i in range(events)]
                    burst_sent: dict[str, float] = {}
                    start = time.perf_counter()
                    await publish(channel, burst, burst_sent)
                    published = time.perf_counter() - start
                    await wait_for(arrivals, burst, 120)
                    drained = max(arrivals.at[r] for r in burst) - start
                    burst_latency = [arrivals.at[r] - burst_sent[r] for r in burst]

                    # Paced: one event every 1/rate seconds, far below capacity: the pipeline's own latency.
                    steady = [f"paced-{run}-{i}@example.com" for i in range(paced)]
                    steady_sent: dict[str, float] = {}
                    for recipient in steady:
                        await publish(channel, [recipient], steady_sent)
                        await asyncio.sleep(1 / rate)
                    await wait_for(arrivals, steady, 60)
                    steady_latency = [arrivals.at[r] - steady_sent[r] for r in steady]

                conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
                try:
                    rows = await conn.fetchval("SELECT count(*) FROM deliveries WHERE status = 'sent'")
                finally:
                    await conn.close()
            finally:
                server.terminate()
                server.wait(timeout=30)

        defaults = Settings()
        expected = len(warm) + events + paced
        rows_out = [
            ("cores", f"{os.cpu_count()}"),
            (
                "consumer prefetch / SMTP connections",
                f"{defaults.consumer_prefetch} / {defaults.smtp_max_connections}",
            ),
            (f"burst: {events} events published (confirms) in", f"{published:.2f} s"),
            (f"burst: queue → accepted by SMTP, {events} events", f"{events / drained:.0f} events/s"),
            ("burst: publish → email arrived p50", f"{percentile(burst_latency, 50) * 1000:.0f} ms"),
            ("burst: publish → email arrived p99", f"{percentile(burst_latency, 99) * 1000:.0f} ms"),
            (
                f"paced ({rate:.0f}/s): publish → email arrived p50",
                f"{percentile(steady_latency, 50) * 1000:.1f} ms",
            ),
            (
                f"paced ({rate:.0f}/s): publish → email arrived p99",
                f"{percentile(steady_latency, 99) * 1000:.1f} ms",
            ),
            (f"paced ({rate:.0f}/s): mean", f"{statistics.mean(steady_latency) * 1000:.1f} ms"),
            ("emails received / delivery rows `sent` / events", f"{len(arrivals.at)} / {rows} / {expected}"),
        ]
        print_table(rows_out)
    finally:
        smtp.stop()
        await testing.drop_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--paced", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.paced, args.rate))
