"""Queries on plans and their price history."""

from __future__ import annotations

import uuid

from sqlalchemy import select, tuple_

from billing_service.models import Plan, PlanPrice
from gatehouse_platform.db import Repository


class PlanRepository(Repository[Plan]):
    model = Plan

    async def by_code(self, code: str) -> Plan | None:
        return (await self.session.execute(select(Plan).where(Plan.code == code))).scalar_one_or_none()

    async def page(self, *, include_retired: bool, limit: int, after: tuple[int, str] | None) -> list[Plan]:
        """Cheapest first (then by code), keyset-paginated on (amount, code)."""
        stmt = select(Plan)
        if not include_retired:
            stmt = stmt.where(Plan.is_active.is_(True))
        if after is not None:
            stmt = stmt.where(tuple_(Plan.amount, Plan.code) > tuple_(*after))
        stmt = stmt.order_by(Plan.amount, Plan.code).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def by_ids(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, Plan]:
        if not ids:
            return {}
        rows = await self.session.execute(select(Plan).where(Plan.id.in_(ids)))
        return {plan.id: plan for plan in rows.scalars()}


class PlanPriceRepository(Repository[PlanPrice]):
    model = PlanPrice

    async def by_price_ids(self, price_ids: set[str]) -> dict[str, PlanPrice]:
        if not price_ids:
            return {}
        rows = await self.session.execute(select(PlanPrice).where(PlanPrice.stripe_price_id.in_(price_ids)))
        return {price.stripe_price_id: price for price in rows.scalars()}
