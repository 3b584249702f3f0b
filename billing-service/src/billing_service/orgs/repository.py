"""Queries on the organization projection."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from billing_service.models import BillingOrg
from gatehouse_platform.db import Repository


class BillingOrgRepository(Repository[BillingOrg]):
    model = BillingOrg

    async def record_membership(
        self, org_id: uuid.UUID, *, member_count: int, version: int, name: str | None
    ) -> bool:
        """Take this member count unless a version as high was applied already (a stale or repeated
        event changes nothing); marks the seats pending for the seat worker. One statement, so
        concurrent events of one org need no lock of ours. True if applied."""
        values: dict[str, object] = {
            "org_id": org_id,
            "member_count": member_count,
            "membership_version": version,
            "seats_pending": True,
        }
        if name is not None:
            values["name"] = name
        stmt = insert(BillingOrg).values(**values)
        updates = {
            "member_count": stmt.excluded.member_count,
            "membership_version": stmt.excluded.membership_version,
            "seats_pending": True,
            "updated_at": stmt.excluded.updated_at,
        }
        if name is not None:
            updates["name"] = stmt.excluded.name
        upsert = stmt.on_conflict_do_update(
            index_elements=[BillingOrg.org_id],
            set_=updates,
            where=BillingOrg.membership_version < stmt.excluded.membership_version,
        ).returning(BillingOrg.org_id)
        return (await self.session.scalar(upsert)) is not None

    async def insert_if_missing(self, org_id: uuid.UUID) -> None:
        """A row for an org no event has told us about yet (one member until its events arrive)."""
        await self.session.execute(insert(BillingOrg).values(org_id=org_id).on_conflict_do_nothing())

    async def pending_seats(self, *, limit: int) -> list[uuid.UUID]:
        stmt = select(BillingOrg.org_id).where(BillingOrg.seats_pending.is_(True)).limit(limit)
        return list((await self.session.execute(stmt)).scalars())
