"""The Stripe event log, for admins: read it, and retry a failed event now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query

from billing_service.audit.service import AuditAction, record
from billing_service.dependencies import AdminClaims, DbSession, ProcessorDep
from billing_service.errors import InvalidCursor, StripeEventNotFailed, StripeEventNotFound
from billing_service.event_log import service
from billing_service.event_log.schemas import StripeEventDetail, StripeEventOut, StripeEventPage
from billing_service.models import StripeEventStatus
from billing_service.pagination import Cursor, Limit
from gatehouse_platform.errors import Forbidden, Unauthorized, responses

router = APIRouter(
    prefix="/billing/admin/stripe-events", tags=["admin"], responses=responses(Unauthorized, Forbidden)
)
EventId = Annotated[str, Path(max_length=255, pattern=r"^evt_[A-Za-z0-9_]+$")]


@router.get("", summary="Stripe events received, newest first", responses=responses(InvalidCursor))
async def list_stripe_events(
    _: AdminClaims,
    db: DbSession,
    status: StripeEventStatus | None = None,
    type: Annotated[str | None, Query(max_length=100, examples=["invoice.payment_failed"])] = None,
    object_id: Annotated[str | None, Query(max_length=255, description="e.g. a sub_… or in_… id")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> StripeEventPage:
    rows, next_cursor = await service.page(
        db, limit=limit, cursor=cursor, status=status, type_=type, object_id=object_id
    )
    return StripeEventPage(items=[StripeEventOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/{event_id}", summary="One Stripe event, with its payload", responses=responses(StripeEventNotFound)
)
async def get_stripe_event(event_id: EventId, _: AdminClaims, db: DbSession) -> StripeEventDetail:
    return StripeEventDetail.model_validate(await service.get(db, event_id))


@router.post(
    "/{event_id}/retry",
    summary="Try a failed event again now, instead of at its next attempt",
    responses=responses(StripeEventNotFound, StripeEventNotFailed),
)
async def retry_stripe_event(
    event_id: EventId, admin: AdminClaims, db: DbSession, processor: ProcessorDep, after: BackgroundTasks
) -> StripeEventOut:
    event = await service.retry(db, event_id)
    details = {"type": event.type, "attempts": event.attempts}
    record(db, AuditAction.STRIPE_EVENT_RETRIED, actor_id=admin.sub, subject_id=event.id, details=details)
    after.add_task(processor.wake)  # once the request's unit of work is committed: it must see it due
    return StripeEventOut.model_validate(event)
