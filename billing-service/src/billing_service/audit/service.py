"""Billing's audit trail: who changed money or the catalogue. Each entry is added to the caller's
unit of work, so it stands or falls with the change it records; nothing edits or deletes one.

Audited: an admin's plan, coupon and promotion code changes, refunds made through our API (a
replayed Idempotency-Key records nothing new), and a failed Stripe event retried by hand. Kept as
long as the payments they explain: there is no purge.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.audit.repository import AuditEventRepository
from billing_service.models import AuditEvent
from billing_service.pagination import decode_time_cursor, page_of
from gatehouse_platform.db import utcnow


class AuditAction(enum.StrEnum):
    PLAN_CREATED = "plan.created"
    PLAN_UPDATED = "plan.updated"
    PLAN_RETIRED = "plan.retired"
    COUPON_CREATED = "coupon.created"
    COUPON_DELETED = "coupon.deleted"
    PROMOTION_CODE_CREATED = "promotion_code.created"
    PROMOTION_CODE_DEACTIVATED = "promotion_code.deactivated"
    PAYMENT_REFUNDED = "payment.refunded"
    STRIPE_EVENT_RETRIED = "stripe_event.retried"


def record(
    db: AsyncSession,
    action: AuditAction,
    *,
    actor_id: uuid.UUID,
    subject_id: uuid.UUID | str,
    user_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """`actor_id` did `action` to `subject_id` (a plan, coupon, promotion code, payment or Stripe
    event), which
    concerns the customer `user_id` if any."""
    return AuditEventRepository(db).add(
        AuditEvent(
            id=uuid.uuid4(),
            occurred_at=utcnow(),
            actor_id=actor_id,
            action=action.value,
            subject_id=str(subject_id),
            user_id=user_id,
            details=details or {},
        )
    )


def sent(body: BaseModel) -> dict[str, Any]:
    """A request's fields as the admin sent them: an entry's details."""
    return body.model_dump(mode="json", exclude_unset=True)


async def page(
    db: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    actor_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    action: AuditAction | None = None,
    subject_id: uuid.UUID | None = None,
    since: datetime | None = None,
) -> tuple[list[AuditEvent], str | None]:
    """A page of the trail, newest first, and the cursor of the next one."""
    rows = await AuditEventRepository(db).page(
        limit=limit + 1,
        after=decode_time_cursor(cursor) if cursor else None,
        actor_id=actor_id,
        user_id=user_id,
        action=action.value if action is not None else None,
        subject_id=str(subject_id) if subject_id is not None else None,
        since=since,
    )
    return page_of(rows, limit, lambda event: (event.occurred_at, event.id))
