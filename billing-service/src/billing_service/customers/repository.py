"""Queries on the customer projection."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert

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
