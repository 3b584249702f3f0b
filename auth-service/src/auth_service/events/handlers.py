"""The one list of consumed events: `HANDLERS` maps each event type to its function, which the
platform's `EventConsumer` runs in a transaction of its own with the event id recorded (so a
redelivery changes nothing twice)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.orgs.service import apply_seat_limit
from gatehouse_contracts.envelope import CloudEvent, EventData
from gatehouse_contracts.events import OrgSeatLimitChanged
from gatehouse_platform.consumer import Handler


async def on_org_seat_limit_changed(db: AsyncSession, event: CloudEvent, data: EventData) -> None:
    """Billing's seat limit for an org: the highest `limit_version` wins, so events may come late,
    twice or out of order; an org deleted meanwhile has nothing to apply."""
    assert isinstance(data, OrgSeatLimitChanged)
    await apply_seat_limit(db, data.org_id, data.max_seats, data.limit_version)


HANDLERS: Mapping[str, Handler] = {
    OrgSeatLimitChanged.event_type: on_org_seat_limit_changed,
}
