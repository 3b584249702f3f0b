"""Queries on the customer projection."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from billing_service.locks import lock_one
from billing_service.models import Customer
from gatehouse_platform.db import Repository


class CustomerRepository(Repository[Customer]):
    model = Customer

    async def insert_if_missing(self, user_id: uuid.UUID, email: str) -> bool:
        """Create the projection row unless it exists; True if this call created it. Waits for a
        concurrent transaction inserting the same user, like any unique insert."""
        created = await self.session.scalar(
            insert(Customer)
            .values(user_id=user_id, email=email)
            .on_conflict_do_nothing(index_elements=[Customer.user_id])
            .returning(Customer.user_id)
        )
        return created is not None

    async def lock(self, user_id: uuid.UUID) -> Customer | None:
        return await lock_one(self.session, Customer, Customer.user_id == user_id)

    async def emails(self, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(Customer.user_id, Customer.email).where(Customer.user_id.in_(user_ids))
        )
        return {user_id: email for user_id, email in rows.all()}
