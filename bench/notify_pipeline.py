"""Event-to-inbox pipeline of notification-service: its CPU per email, events per second from the
queue to "accepted by SMTP" in a burst, and, paced like sign-ups (issue 20: 50/s), the latency
from the producer's commit to the event on the queue (the outbox relay) and to the email arriving.

Starts notification-service (its own process, real settings but for the addresses) on a throw-away
database and RabbitMQ vhost, with an aiosmtpd server in this process recording when each email
arrives. The burst publishes `user.password_changed` events (one recipient each) straight to
`gatehouse.events`; the paced run writes them as a producer does, with `add_event` in a committed
transaction of a producer database of its own, and an `OutboxRelay` (in this process) publishes
them; a queue of the bench's own, bound beside the service's, notes when each reached the broker.

CPU per email is the service process's and its Postgres backends' (found by database name in
pg_stat_activity), measured over the burst; the SMTP catcher and the publisher run in this
process, so their CPU is apart (shown as the bench's own).

    uv run python bench/notify_pipeline.py [--events 500] [--paced 250 --rate 50]

Profiles (`py-spy record --subprocesses -r 50` on this bench, 300 events, load 3–12; shares of
the service's event-loop samples). Before the changes of issue 20: composing with
`email.message.EmailMessage` (header registry parsing, the generator) 16 %, aiosmtplib 26 % (a
NOOP before every message 7 %), the delivery claim (SELECT … FOR UPDATE, then an ORM insert and
flush) 18 %, marking sent 10 %, the pool's pre-ping 12 %. Hence: the message is built as bytes (the
`email` package only for non-ASCII or long headers), NOOP only after 2 s idle, the claim is one
Core INSERT … ON CONFLICT DO NOTHING RETURNING, marking sent a Core UPDATE. After: the handler
is 42 % of the loop's samples (the claim 19 %, about half of it the pool's pre-ping on checkout;
marking sent 8 %; SMTP 11 %; Jinja rendering 3 %), the consumer's own transaction around it
(processed_events, commit, ack) 24 %, the pool's pre-ping 17 % in all (platform `db.py`): what
is left is asyncpg round trips and SQLAlchemy's session, not composing or SMTP.

Measured with `python bench/notify_pipeline.py` (defaults), six rounds alternating the code before
issue 20's changes and after, load average 3.6–7.1 on 2 shared cores; medians: CPU per email
6.7 → 3.5 ms; burst 96 → 128 events/s (85–213 after, the spread is the machine's load); paced
50/s commit → email p50 31 → 16 ms, p99 139 → 121 ms; commit → on the queue p50 5.3 → 2.2 ms.
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

import gatehouse_platform.models  # noqa: F401  (registers the outbox table on Base)
from gatehouse_contracts.envelope import new_event
from gatehouse_contracts.events import PasswordChanged
from gatehouse_platform import testing
from gatehouse_platform.db import Base, make_engine, make_session_factory, session_scope
from gatehouse_platform.outbox import OutboxRelay, add_event, event_message
from notification_service.settings import Settings
from support import ROOT, cpu_seconds, free_port, percentile, print_table, record_costs, wait_ready

EXCHANGE = "gatehouse.events"
ROUTING_KEY = "user.password_changed"


class Arrivals:
    """aiosmtpd handler: accepts everything, notes when each recipient's email arrived."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        now = time.perf_counter()
        for recipient in envelope.rcpt_tos:
            self.at.setdefault(recipient.lower(), now)
        return "250 OK"


def password_changed(recipient: str) -> PasswordChanged:
    return PasswordChanged(
        user_id=uuid.uuid4(), email=recipient, method="change", changed_at=datetime.now(UTC)
    )


async def publish(
    channel: aio_pika.abc.AbstractChannel, recipients: list[str], sent: dict[str, float]
) -> None:
    exchange = await channel.get_exchange(EXCHANGE)
    for recipient in recipients:
        data = password_changed(recipient)
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


async def backend_pids(admin: asyncpg.Connection, database: str) -> list[int]:
    rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
    return [row["pid"] for row in rows]


def ms(values: list[float], pct: float) -> str:
    return f"{percentile(values, pct) * 1000:.1f} ms"


async def main(events: int, paced: int, rate: float, command: str) -> None:
    name = testing.unique_name("gh_bench_notify")
    producer_name = f"{name}_producer"
    url = await testing.create_database(name)
    producer_url = await testing.create_database(producer_name)
    arrivals = Arrivals()
    smtp_port, port = free_port(), free_port()
    smtp = Controller(arrivals, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    producer = make_engine(producer_url, pool_size=2)
    try:
        async with producer.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)  # the platform's tables: the outbox
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
            admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            relay = OutboxRelay(producer, amqp_url, exchange=EXCHANGE, poll_interval=1.0)
            try:
                await wait_ready(f"http://127.0.0.1:{port}")

                connection = await aio_pika.connect(amqp_url)
                async with connection:
                    channel = await connection.channel(publisher_confirms=True)
                    exchange = await channel.declare_exchange(
                        EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
                    )
                    # The bench's own queue beside the service's: when each event reached the broker.
                    on_queue: dict[str, float] = {}
                    mine = await channel.declare_queue(exclusive=True)
                    await mine.bind(exchange, routing_key=ROUTING_KEY)

                    async def noted(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                        on_queue.setdefault(str(message.message_id), time.perf_counter())

                    await mine.consume(noted, no_ack=True)
                    run = uuid.uuid4().hex[:6]

                    # Warm-up: the connections to Postgres and SMTP are open before measuring.
                    warm = [f"warm-{run}-{i}@example.com" for i in range(20)]
                    await publish(channel, warm, {})
                    await wait_for(arrivals, warm, 30)

                    # Burst: everything published at once; the service drains the queue.
                    burst = [f"burst-{run}-{i}@example.com" for i in range(events)]
                    burst_sent: dict[str, float] = {}
                    pids = [server.pid, *await backend_pids(admin, name)]
                    cpu_before, own_before = cpu_seconds(pids), time.process_time()
                    start = time.perf_counter()
                    await publish(channel, burst, burst_sent)
                    published = time.perf_counter() - start
                    await wait_for(arrivals, burst, 300)
                    drained = max(arrivals.at[r] for r in burst) - start
                    # Backends the pool opened during the burst count whole.
                    pids = sorted({*pids, *await backend_pids(admin, name)})
                    cpu_total = cpu_seconds(pids) - cpu_before
                    own_cpu = time.process_time() - own_before
                    burst_latency = [arrivals.at[r] - burst_sent[r] for r in burst]
                    service_cpu = cpu_total  # service process + its Postgres backends

                    # Paced: committed through the outbox, one every 1/rate seconds on a fixed schedule.
                    await relay.start()
                    sessions = make_session_factory(producer)
                    steady = [f"paced-{run}-{i}@example.com" for i in range(paced)]
                    committed: dict[str, float] = {}
                    event_of: dict[str, str] = {}
                    begin = time.perf_counter()
                    for i, recipient in enumerate(steady):
                        data = password_changed(recipient)
                        async with session_scope(sessions) as session:
                            event = await add_event(
                                session, data, source="/auth-service", subject=str(data.user_id)
                            )
                        committed[recipient] = time.perf_counter()
                        event_of[recipient] = str(event.id)
                        await asyncio.sleep(max(0.0, begin + (i + 1) / rate - time.perf_counter()))
                    await wait_for(arrivals, steady, 120)
                    await testing.eventually(
                        lambda: all(event_of[r] in on_queue for r in steady), "paced events on the queue"
                    )
                    to_queue = [on_queue[event_of[r]] - committed[r] for r in steady]
                    to_email = [arrivals.at[r] - committed[r] for r in steady]
                    offered = paced / (max(committed.values()) - begin)

                rows = await admin.fetchval("SELECT count(*) FROM deliveries WHERE status = 'sent'")
            finally:
                await relay.stop()
                await admin.close()
                server.terminate()
                server.wait(timeout=30)

        defaults = Settings()
        expected = len(warm) + events + paced
        cpu_ms_per_email = service_cpu / events * 1000
        rows_out = [
            ("cores / load average (1 min) at the end", f"{os.cpu_count()} / {os.getloadavg()[0]:.1f}"),
            (
                "consumer prefetch / SMTP connections",
                f"{defaults.consumer_prefetch} / {defaults.smtp_max_connections}",
            ),
            ("CPU per email: notification-service + its Postgres backends", f"{cpu_ms_per_email:.1f} ms"),
            (
                "CPU per email: this bench (publisher, SMTP catcher), apart",
                f"{own_cpu / events * 1000:.1f} ms",
            ),
            (f"burst: {events} events published (confirms) in", f"{published:.2f} s"),
            (f"burst: queue → accepted by SMTP, {events} events", f"{events / drained:.0f} events/s"),
            ("burst: publish → email arrived p50", ms(burst_latency, 50)),
            ("burst: publish → email arrived p99", ms(burst_latency, 99)),
            (
                f"paced ({rate:.0f}/s asked, {offered:.1f}/s committed): commit → on the queue p50",
                ms(to_queue, 50),
            ),
            (f"paced ({rate:.0f}/s): commit → on the queue p99", ms(to_queue, 99)),
            (f"paced ({rate:.0f}/s): commit → email arrived p50", ms(to_email, 50)),
            (f"paced ({rate:.0f}/s): commit → email arrived p99", ms(to_email, 99)),
            (
                f"paced ({rate:.0f}/s): commit → email arrived mean",
                f"{statistics.mean(to_email) * 1000:.1f} ms",
            ),
            ("emails received / delivery rows `sent` / events", f"{len(arrivals.at)} / {rows} / {expected}"),
        ]
        print_table(rows_out)
        record_costs("notify_pipeline", {"email sent": round(cpu_ms_per_email, 2)}, command)
    finally:
        smtp.stop()
        await producer.dispose()
        await testing.drop_database(name)
        await testing.drop_database(producer_name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500, help="events in the burst")
    parser.add_argument("--paced", type=int, default=250, help="events in the paced run")
    parser.add_argument("--rate", type=float, default=50.0, help="commits per second in the paced run")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.paced, args.rate, " ".join(["python", *sys.argv])))
