"""notification-service tests: the real app (ASGI) and its consumer on a real Postgres database
migrated with Alembic, a RabbitMQ vhost of this run's own, real SMTP servers (aiosmtpd writing to
Maildirs) and admin tokens from a test issuer whose JWKS is served over real HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractChannel
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, Envelope, Session
from alembic.config import Config
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gatehouse_contracts.envelope import CloudEvent, EventData, new_event
from gatehouse_emulators.smtp import read_maildir, start_catcher
from gatehouse_platform import testing
from gatehouse_platform.outbox import event_message
from gatehouse_platform.testing import free_port
from notification_service.email.links import Links
from notification_service.email.render import Renderer
from notification_service.main import create_app
from notification_service.models import Delivery
from notification_service.previews.samples import SAMPLE_EVENTS
from notification_service.settings import Settings

SERVICE_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_SECONDS = 30
RUN = testing.unique_name(f"gh_notif_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
TEST_RETRY_DELAYS = (0.2, 0.5, 1.0)


def alembic_config(url: str) -> Config:
    return testing.alembic_config(SERVICE_ROOT, url)


@pytest.fixture(scope="session")
def run_name() -> str:
    return RUN


@pytest.fixture(scope="session")
def service_root() -> Path:
    return SERVICE_ROOT


# --- tokens -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def admin(issuer: testing.TestIssuer) -> dict[str, str]:
    return issuer.bearer(roles=["admin"], email="admin@example.com")


# --- SMTP ---------------------------------------------------------------------------------------


async def wait_for_mail(maildir: Path, to: str, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
    """The messages to `to` once `count` have arrived; fails after `timeout` seconds."""

    def arrived() -> list[EmailMessage] | None:
        messages = read_maildir(maildir, to)
        return messages if len(messages) >= count else None

    messages: list[EmailMessage] = await testing.eventually(
        arrived, f"{count} emails to {to}", within=timeout
    )
    return messages


class RefusingMailbox(Mailbox):
    """Writes accepted mail to a Maildir; answers 550 to the addresses in `refused`, and 451 to
    those in `greylisted` as many times as their count says."""

    def __init__(self, maildir: Path) -> None:
        super().__init__(maildir)
        self.refused: set[str] = set()
        self.greylisted: dict[str, int] = {}

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refused:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if self.greylisted.get(address.lower(), 0) > 0:
            self.greylisted[address.lower()] -= 1
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class MailServer:
    """A real SMTP server (aiosmtpd) that tests can stop and start again on the same port, and
    make refuse recipients."""

    def __init__(self, maildir: Path) -> None:
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        self.maildir = maildir
        self.port = free_port()
        self.handler = RefusingMailbox(maildir)
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass(frozen=True)
class Catcher:
    maildir: Path
    port: int


@pytest.fixture(scope="session")
def catcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catcher]:
    """The session's SMTP catcher (the emulator `make run` uses), accepting everything."""
    path = tmp_path_factory.mktemp("mail") / "Maildir"
    port = free_port()
    controller = start_catcher(path, port=port)
    try:
        yield Catcher(path, port)
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def maildir(catcher: Catcher) -> Path:
    return catcher.maildir


# --- the service --------------------------------------------------------------------------------


def make_settings(
    database_url: str, amqp_url: str, jwks_url: str, smtp_port: int, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "amqp_url": amqp_url,
        "jwks_url": jwks_url,
        "redis_key_prefix": f"{RUN}:{uuid.uuid4().hex[:6]}",
        "log_json": False,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_timeout": 2.0,
        "consumer_retry_delays": list(TEST_RETRY_DELAYS),
        "app_url": "https://app.gatehouse.test",
        "public_url": "https://api.gatehouse.test",
        "from_address": "no-reply@gatehouse.test",
        "support_email": "support@gatehouse.test",
        "message_id_domain": "mail.gatehouse.test",
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Stack:
    """A running notification-service: its app, an API client, and where its events go."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    channel: AbstractChannel

    async def publish(self, event: CloudEvent) -> None:
        exchange = await self.channel.get_exchange(self.settings.events_exchange, ensure=False)
        await exchange.publish(event_message(event), routing_key=event.type)

    async def dead_letters(self) -> int:
        queue = await self.channel.declare_queue(f"{self.settings.consumer_name}.dlq", passive=True)
        count = queue.declaration_result.message_count
        assert count is not None
        return count


@pytest.fixture(scope="session")
async def bus(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractConnection]:
    # Not a robust connection: its channels cache passive declarations (and their message counts).
    connection = await aio_pika.connect(amqp_url)
    yield connection
    await connection.close()


@asynccontextmanager
async def running_stack(
    settings: Settings, bus: aio_pika.abc.AbstractConnection, *, run_consumer: bool = True
) -> AsyncIterator[Stack]:
    app = create_app(settings, run_consumer=run_consumer)
    channel = await bus.channel(publisher_confirms=True)
    await channel.declare_exchange(settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    try:
        async with (
            # Startup connects two consumers and readies the token denylist (Redis, the issuer's
            # revocation list): on a loaded machine that can pass asgi-lifespan's default 5 s.
            LifespanManager(
                app, startup_timeout=STARTUP_TIMEOUT_SECONDS, shutdown_timeout=STARTUP_TIMEOUT_SECONDS
            ),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://notify.test"
            ) as client,
        ):
            yield Stack(app=app, client=client, settings=settings, channel=channel)
    finally:
        await channel.close()


@pytest.fixture(scope="session")
async def stack(
    database_url: str,
    amqp_url: str,
    jwks_url: str,
    catcher: Catcher,
    bus: aio_pika.abc.AbstractConnection,
) -> AsyncIterator[Stack]:
    """The session's service, its consumer running, sending to the session's SMTP catcher."""
    settings = make_settings(database_url, amqp_url, jwks_url, catcher.port)
    async with running_stack(settings, bus) as running:
        yield running


@pytest.fixture(scope="session")
def client(stack: Stack) -> httpx.AsyncClient:
    return stack.client


@pytest.fixture
async def isolated(
    database_url: str,
    amqp_url: str,
    jwks_url: str,
    bus: aio_pika.abc.AbstractConnection,
    tmp_path: Path,
) -> AsyncIterator[tuple[Stack, MailServer]]:
    """A service of this test's own (own exchange and queue) and an SMTP server the test controls."""
    server = MailServer(tmp_path / "Maildir")
    server.start()
    name = uuid.uuid4().hex[:10]
    settings = make_settings(
        database_url,
        amqp_url,
        jwks_url,
        server.port,
        events_exchange=f"test.events.{name}",
        consumer_name=f"notification-test-{name}",
        consumer_retry_delays=[0.2, 0.5, 1.0, 2.0],
    )
    try:
        async with running_stack(settings, bus) as running:
            yield running, server
    finally:
        server.stop()


# --- events -------------------------------------------------------------------------------------


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def sample(event_type: str, **changes: Any) -> EventData:
    """The sample event of `event_type` with `changes`, validated against its contract."""
    data = SAMPLE_EVENTS[event_type]
    return type(data).model_validate({**data.model_dump(), **changes})


def envelope(data: EventData, correlation_id: str | None = None) -> CloudEvent:
    billing = data.event_type.startswith(("subscription.", "payment.", "payment_method."))
    source = "/billing-service" if billing else "/auth-service"
    return new_event(
        data, source=source, subject=str(getattr(data, "user_id", "")), correlation_id=correlation_id
    )


async def deliveries_of(db: async_sessionmaker[AsyncSession], event_id: uuid.UUID) -> list[Delivery]:
    async with db() as session:
        rows = await session.execute(
            select(Delivery).where(Delivery.event_id == event_id).order_by(Delivery.created_at, Delivery.id)
        )
        return list(rows.scalars())


async def wait_for_deliveries(
    db: async_sessionmaker[AsyncSession],
    event_id: uuid.UUID,
    *statuses: str,
    timeout: float = 10.0,
) -> list[Delivery]:
    """The event's deliveries once there are as many as `statuses` (at least one) and they have
    those statuses."""

    async def settled() -> list[Delivery] | None:
        rows = await deliveries_of(db, event_id)
        return rows if sorted(r.status for r in rows) == sorted(statuses) else None

    rows: list[Delivery] = await testing.eventually(
        settled, f"deliveries of {event_id} to be {sorted(statuses)}", within=timeout
    )
    return rows


@pytest.fixture(scope="module")
def renderer_and_links() -> tuple[Renderer, Links]:
    """The email renderer and its links, as a service configured for app.example.com has them."""
    settings = Settings(environment="test", app_url="https://app.example.com")
    links = Links(settings)
    return Renderer(settings, links), links
