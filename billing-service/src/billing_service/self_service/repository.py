"""Queries of the self-service rules: the card expiry notices sent."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert

from billing_service.models import CardExpiryNotice
from gatehouse_platform.db import Repository


class CardExpiryNoticeRepository(Repository[CardExpiryNotice]):
    model = CardExpiryNotice

    async def record_once(
        self, *, payment_method_id: str, exp_year: int, exp_month: int, user_id: uuid.UUID
    ) -> bool:
        """Record that this card's expiry was notified; False when it was already (by anyone)."""
        stmt = (
            insert(CardExpiryNotice)
            .values(
                payment_method_id=payment_method_id, exp_year=exp_year, exp_month=exp_month, user_id=user_id
            )
            .on_conflict_do_nothing()
            .returning(CardExpiryNotice.payment_method_id)
        )
        return (await self.session.execute(stmt)).first() is not None
