"""Turning an event into emails, each sent once: the consumer's handler, and manual resends.

For every email an event asks for (see `events/handlers.py`):

1. **claim** — in a transaction of its own, committed at once: the delivery row keyed by
   (event id, template, recipient) is created, or found again on a retry, and marked `sending`
   with one more attempt. Its Message-ID is fixed at creation, so every attempt carries the same.
   A row already `sent` or `suppressed` is skipped.
2. **send** over SMTP.
3. **settle** — when every email of the event went out, the rows become `sent` in the handler's
   own session, the transaction in which the platform consumer records the event as processed.
   A redelivered event is then skipped whole. When a send fails, the rows sent so far and the
   failure (`deferred` or `failed`, code and message) are committed in a transaction of their
   own, because the handler's transaction rolls back: a transient failure is raised again for the
   consumer to retry with back-off, a permanent one (5xx) becomes `PermanentFailure`, which
   dead-letters the event at once. Replaying it sends only what was not sent.

The one window left: the SMTP server has accepted a message and the process dies before step 3
commits. The row then says `sending`; the redelivered event sends again, with the same Message-ID
(which lets receivers and operators recognise the duplicate), and a warning is logged. We prefer
that rare duplicate to the alternative, a verification link or sign-in code never arriving.

Nothing here logs a context, a body, a link or a code: only ids, templates and SMTP outcomes.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from asgi_correlation_id import correlation_id
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gatehouse_contracts.envelope import CloudEvent, EventData
from gatehouse_contracts.events import parse_data
from gatehouse_platform.consumer import PermanentFailure
from gatehouse_platform.db import session_scope, utcnow
from notification_service.deliveries.repository import DeliveryRepository
from notification_service.email.catalogue import TEMPLATES
from notification_service.email.links import Links
from notification_service.email.render import RenderedEmail, Renderer
from notification_service.email.smtp import (
    SmtpError,
    SmtpPermanentError,
    SmtpSender,
    compose,
    new_message_id,
)
from notification_service.errors import NotResendable, RecipientRejected, SecretNotStored, SmtpUnavailable
from notification_service.events.handlers import HANDLERS
from notification_service.models import Delivery, DeliveryStatus
from notification_service.settings import Settings
from notification_service.unsubscribe.repository import SuppressionRepository

log = logging.getLogger(__name__)

EMAILS_SENT = Counter("notification_emails_sent_total", "Emails the SMTP server accepted.", ["template"])
EMAILS_FAILED = Counter(
    "notification_emails_failed_total", "Emails the SMTP server refused for good (5xx).", ["template"]
)
EMAILS_RETRIED = Counter(
    "notification_emails_retried_total",
    "Sends that failed transiently (unreachable, timeout, 4xx) and are retried with back-off.",
    ["template"],
)
EMAILS_SUPPRESSED = Counter(
    "notification_emails_suppressed_total",
    "Emails not sent because the recipient unsubscribed.",
    ["template"],
)


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        renderer: Renderer,
        sender: SmtpSender,
        links: Links,
    ) -> None:
        self._settings = settings
        self._sessions = session_factory
        self._renderer = renderer
        self._sender = sender
        self._links = links

    async def handle_event(self, session: AsyncSession, event: CloudEvent, data: EventData) -> None:
        """The consumer's handler for every consumed type (`session` is the consumer's transaction)."""
        notices = HANDLERS[event.type](data, self._links)
        # Kept only when the event holds no secret, so a resend can render the email again.
        kept_data = None if type(data).carries_secret else event.data
        sent: list[Delivery] = []
        current: Delivery | None = None
        try:
            for notice in notices:
                current = None
                email = self._renderer.render(notice)
                current = await self._claim(event, email, kept_data)
                if DeliveryStatus(current.status).is_final:
                    continue
                await self._sender.send(
                    compose(email, settings=self._settings, message_id=current.message_id)
                )
                EMAILS_SENT.labels(email.template).inc()
                log.info("sent delivery %s (template %s, event %s)", current.id, email.template, event.id)
                sent.append(current)
        except SmtpPermanentError as exc:
            assert current is not None
            EMAILS_FAILED.labels(current.template).inc()
            log.error("SMTP refused delivery %s for good: %s", current.id, exc)
            await self._settle(sent, current, DeliveryStatus.FAILED, exc)
            raise PermanentFailure(f"SMTP {exc.code} refused delivery {current.id}") from None
        except Exception as exc:
            if current is not None:
                EMAILS_RETRIED.labels(current.template).inc()
                log.warning("delivery %s deferred: %s", current.id, _describe(exc))
            await self._settle(sent, current, DeliveryStatus.DEFERRED, exc)
            raise
        await DeliveryRepository(session).mark_sent([d.id for d in sent])

    async def resend(self, db: AsyncSession, original: Delivery) -> Delivery:
        """Render the email of `original` again from its stored event and send it as a new delivery.

        Only for events without a one-time secret; their data is the only thing a resend can use.
        """
        if original.event_data is None:
            raise SecretNotStored(
                f"The {original.template} email carried a one-time secret (a link or a code), which "
                "is never stored. Ask the user to request a new one."
            )
        data = parse_data(original.event_type, original.event_data)
        notice = next(
            (
                notice
                for notice in HANDLERS[original.event_type](data, self._links)
                if notice.template == original.template and notice.recipient == original.recipient
            ),
            None,
        )
        if notice is None:
            raise NotResendable(f"The {original.event_type} event no longer asks for this email.")
        email = self._renderer.render(notice)
        copy = self._new_delivery(
            original.event_id, original.event_type, email, original.event_data, correlation_id.get()
        )
        copy.resend_of, copy.attempts, copy.last_attempt_at = original.id, 1, utcnow()
        deliveries = DeliveryRepository(db)
        deliveries.add(copy)
        await deliveries.flush()
        try:
            await self._sender.send(compose(email, settings=self._settings, message_id=copy.message_id))
        except SmtpError as exc:
            # Nobody retries a resend by itself: any failure is final for this row.
            _record_failure(copy, DeliveryStatus.FAILED, exc)
            if isinstance(exc, SmtpPermanentError):
                EMAILS_FAILED.labels(copy.template).inc()
                raise RecipientRejected(f"SMTP {exc.code}: {exc}", delivery_id=str(copy.id)) from None
            raise SmtpUnavailable(f"The SMTP server did not take the message: {exc}") from None
        EMAILS_SENT.labels(copy.template).inc()
        copy.status = DeliveryStatus.SENT.value
        copy.sent_at = utcnow()
        log.info("resent delivery %s as %s", original.id, copy.id)
        return copy

    async def _claim(
        self, event: CloudEvent, email: RenderedEmail, kept_data: dict[str, Any] | None
    ) -> Delivery:
        category = TEMPLATES[email.template].unsubscribe_category
        async with session_scope(self._sessions) as s:
            deliveries = DeliveryRepository(s)
            # The first attempt (nearly every one): the row is created already claimed, in one
            # INSERT … ON CONFLICT DO NOTHING; a retry or a redelivery finds it taken and goes on below.
            suppressed = category is not None and await SuppressionRepository(s).is_suppressed(
                email.recipient, category
            )
            fresh = self._new_delivery(event.id, event.type, email, kept_data, event.correlationid)
            if suppressed:
                fresh.status = DeliveryStatus.SUPPRESSED.value
            else:
                fresh.attempts, fresh.last_attempt_at = 1, utcnow()
            if await deliveries.insert_new(fresh):
                if suppressed:
                    EMAILS_SUPPRESSED.labels(email.template).inc()
                    log.info("delivery %s suppressed: the recipient unsubscribed from %s", fresh.id, category)
                return fresh
            delivery = await deliveries.by_key(event.id, email.template, email.recipient, for_update=True)
            if delivery is None:
                delivery = deliveries.add(
                    self._new_delivery(event.id, event.type, email, kept_data, event.correlationid)
                )
            elif DeliveryStatus(delivery.status).is_final:
                return delivery
            elif delivery.status == DeliveryStatus.SENDING:
                log.warning(
                    "delivery %s was in flight when an earlier attempt stopped; sending it again "
                    "with the same Message-ID (the recipient may get it twice)",
                    delivery.id,
                )
            if suppressed:
                delivery.status = DeliveryStatus.SUPPRESSED.value
                EMAILS_SUPPRESSED.labels(email.template).inc()
                log.info("delivery %s suppressed: the recipient unsubscribed from %s", delivery.id, category)
                return delivery
            delivery.status = DeliveryStatus.SENDING.value
            delivery.attempts += 1
            delivery.subject = email.subject
            delivery.last_attempt_at = utcnow()
            await deliveries.flush()
            return delivery

    def _new_delivery(
        self,
        event_id: uuid.UUID,
        event_type: str,
        email: RenderedEmail,
        event_data: dict[str, Any] | None,
        correlation_id: str | None,
    ) -> Delivery:
        """A `sending` row for `email`, not attempted yet. Its Message-ID, chosen here, is the one
        every attempt of this delivery carries."""
        return Delivery(
            id=uuid.uuid4(),
            event_id=event_id,
            event_type=event_type,
            template=email.template,
            recipient=email.recipient,
            subject=email.subject,
            status=DeliveryStatus.SENDING.value,
            attempts=0,
            message_id=new_message_id(self._settings),
            event_data=event_data,
            correlation_id=correlation_id,
        )

    async def _settle(
        self, sent: list[Delivery], current: Delivery | None, status: DeliveryStatus, exc: Exception
    ) -> None:
        """Keep what happened before the handler's transaction rolls back (its own transaction)."""
        try:
            async with session_scope(self._sessions) as s:
                deliveries = DeliveryRepository(s)
                await deliveries.mark_sent([d.id for d in sent])
                if current is not None:
                    row = await deliveries.get(current.id, for_update=True)
                    if row is not None:
                        _record_failure(row, status, exc)
        except Exception:
            log.exception("could not record the outcome of deliveries for a failed event")


def _describe(exc: Exception) -> str:
    """An SMTP failure as the server put it; anything else (a template or database error) by its
    type only, since its text could quote what it was working on."""
    return str(exc)[:1000] if isinstance(exc, SmtpError) else type(exc).__name__


def _record_failure(delivery: Delivery, status: DeliveryStatus, exc: Exception) -> None:
    delivery.status = status.value
    delivery.smtp_code = exc.code if isinstance(exc, SmtpError) else None
    delivery.error = _describe(exc)
