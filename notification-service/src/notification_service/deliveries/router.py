"""Admin endpoints: deliveries (list, one, resend) and dead letters (how many, replay)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from gatehouse_platform.errors import Forbidden, ServiceUnavailable, Unauthorized, responses
from gatehouse_platform.schemas import SafeStr
from notification_service.deliveries import service
from notification_service.deliveries.repository import DeliveryFilters
from notification_service.deliveries.schemas import DeadLetters, DeliveryOut, DeliveryPage, ReplayResult
from notification_service.dependencies import AdminClaims, ConsumerDep, DbSession, DispatcherDep
from notification_service.errors import (
    BrokerUnavailable,
    DeliveryNotFound,
    InvalidCursor,
    NotResendable,
    RecipientRejected,
    SecretNotStored,
    SmtpUnavailable,
)
from notification_service.models import DeliveryStatus

router = APIRouter(
    prefix="/notifications",
    tags=["deliveries"],
    responses=responses(Unauthorized, Forbidden, ServiceUnavailable),
)


@router.get("/deliveries", responses=responses(InvalidCursor), summary="Deliveries, newest first")
async def list_deliveries(
    _: AdminClaims,
    db: DbSession,
    recipient: Annotated[SafeStr | None, Query(max_length=320, description="Exact address, any case")] = None,
    event_type: Annotated[
        SafeStr | None, Query(max_length=200, examples=["user.login_code_requested"])
    ] = None,
    template: Annotated[SafeStr | None, Query(max_length=100)] = None,
    status: DeliveryStatus | None = None,
    event_id: uuid.UUID | None = None,
    created_after: Annotated[datetime | None, Query(description="Inclusive")] = None,
    created_before: Annotated[datetime | None, Query(description="Exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DeliveryPage:
    filters = DeliveryFilters(
        recipient=recipient,
        event_type=event_type,
        template=template,
        status=status,
        event_id=event_id,
        created_after=created_after,
        created_before=created_before,
    )
    deliveries, next_cursor = await service.list_deliveries(db, filters, limit, cursor)
    return DeliveryPage(items=[DeliveryOut.model_validate(d) for d in deliveries], next_cursor=next_cursor)


@router.get("/deliveries/{delivery_id}", responses=responses(DeliveryNotFound))
async def get_delivery(delivery_id: uuid.UUID, _: AdminClaims, db: DbSession) -> DeliveryOut:
    return DeliveryOut.model_validate(await service.get_delivery(db, delivery_id))


@router.post(
    "/deliveries/{delivery_id}/resend",
    status_code=201,
    responses=responses(DeliveryNotFound, SecretNotStored, NotResendable, RecipientRejected, SmtpUnavailable),
    summary="Send the email again, as a new delivery",
    description="Renders the email again from the stored event. Emails that carried a one-time secret "
    "(verification or reset link, sign-in code) answer 409: the secret is never stored, so the user "
    "requests a new one.",
)
async def resend_delivery(
    delivery_id: uuid.UUID, _: AdminClaims, db: DbSession, dispatcher: DispatcherDep
) -> DeliveryOut:
    return DeliveryOut.model_validate(await service.resend(db, dispatcher, delivery_id))


@router.get(
    "/dead-letters",
    responses=responses(BrokerUnavailable),
    summary="How many events wait in the dead-letter queue",
)
async def dead_letters(_: AdminClaims, consumer: ConsumerDep) -> DeadLetters:
    return DeadLetters(count=await service.dead_letter_count(consumer))


@router.post(
    "/dead-letters/replay",
    responses=responses(BrokerUnavailable),
    summary="Move dead-lettered events back to the queue",
    description="Each replayed event is handled again: emails already sent are skipped, failed ones "
    "are tried again.",
)
async def replay_dead_letters(
    _: AdminClaims, consumer: ConsumerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> ReplayResult:
    return ReplayResult(replayed=await service.replay_dead_letters(consumer, limit))
