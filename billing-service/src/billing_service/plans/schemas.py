"""Plan request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from billing_service.models import PlanInterval, PlanTier
from billing_service.pagination import Page
from gatehouse_platform.schemas import RequestModel

PlanCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Currency = Annotated[
    str, StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$", to_lower=True)
]
Feature = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Amount = Annotated[int, Field(ge=0, le=99_999_999, description="Price per period in minor units (cents).")]


class PlanCreate(RequestModel):
    code: PlanCode = Field(description="Stable identifier clients subscribe with, e.g. `pro`.")
    name: Name
    description: str = Field(default="", max_length=2000)
    tier: PlanTier
    amount: Amount
    currency: Currency = "usd"
    interval: PlanInterval = PlanInterval.MONTH
    interval_count: int = Field(default=1, ge=1, le=12)
    features: list[Feature] = Field(default_factory=list, max_length=50, description="Entitlements granted.")
    trial_days: int = Field(default=0, ge=0, le=730)


class PlanUpdate(RequestModel):
    """Changes to a plan. A new amount, currency or interval makes a new Stripe price (prices are
    immutable); existing subscribers keep the price they signed up for."""

    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    tier: PlanTier | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    interval: PlanInterval | None = None
    interval_count: int | None = Field(default=None, ge=1, le=12)
    features: list[Feature] | None = Field(default=None, max_length=50)
    trial_days: int | None = Field(default=None, ge=0, le=730)
    active: bool | None = Field(default=None, description="`true` offers a retired plan again.")

    @field_validator("*", mode="after")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Absent means "unchanged"; an explicit null would mean nothing sensible.
        if value is None:
            raise ValueError("must not be null (leave the field out to keep it)")
        return value


class PlanOut(BaseModel):
    # Read from a Plan row: `PlanOut.model_validate(plan)`.
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    description: str
    tier: PlanTier
    amount: int
    currency: str
    interval: PlanInterval
    interval_count: int
    features: list[str]
    trial_days: int
    active: bool = Field(validation_alias="is_active")
    stripe_product_id: str | None
    stripe_price_id: str | None
    created_at: datetime
    updated_at: datetime


class PlanPage(Page[PlanOut]):
    pass
