"""Plan request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from billing_service.models import PlanInterval, PlanTier
from billing_service.pagination import Page
from gatehouse_contracts.currencies import STRIPE_CURRENCIES
from gatehouse_platform.schemas import PartialUpdate, RequestModel

PlanCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


def _stripe_currency(code: str) -> str:
    if code not in STRIPE_CURRENCIES:
        raise ValueError("Use a currency Stripe supports (ISO 4217, e.g. usd, eur).")
    return code


Currency = Annotated[
    str,
    StringConstraints(to_lower=True),
    AfterValidator(_stripe_currency),
    Field(
        json_schema_extra={"enum": sorted(STRIPE_CURRENCIES)},
        description="ISO 4217 code of a currency Stripe supports, lower case (upper case is accepted)",
    ),
]
Feature = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Amount = Annotated[
    int,
    Field(ge=0, le=99_999_999, description="Price per period in minor units (cents); per seat if per_seat."),
]
Seats = Annotated[int, Field(ge=1, le=100_000)]


def check_seats(per_seat: bool, min_seats: int | None, max_seats: int | None) -> None:
    """The seat rules every plan keeps (the same CHECKs hold in the database)."""
    if not per_seat and (min_seats is not None or max_seats is not None):
        raise ValueError("min_seats and max_seats apply to a per-seat plan only (set per_seat).")
    if min_seats is not None and max_seats is not None and min_seats > max_seats:
        raise ValueError(f"min_seats ({min_seats}) must not exceed max_seats ({max_seats}).")


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
    per_seat: bool = Field(
        default=False, description="Priced per member of the organization that buys it (Stripe quantity)."
    )
    min_seats: Seats | None = Field(default=None, description="Seats billed at least (per-seat plans).")
    max_seats: Seats | None = Field(
        default=None, description="Members the org may have on it (per-seat plans); none: no limit."
    )

    @model_validator(mode="after")
    def _seats(self) -> PlanCreate:
        check_seats(self.per_seat, self.min_seats, self.max_seats)
        return self


class PlanUpdate(PartialUpdate):
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
    per_seat: bool | None = None
    min_seats: Seats | None = None
    max_seats: Seats | None = None


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
    per_seat: bool
    min_seats: int | None
    max_seats: int | None
    active: bool = Field(validation_alias="is_active")
    stripe_product_id: str | None
    stripe_price_id: str | None
    created_at: datetime
    updated_at: datetime


class PlanPage(Page[PlanOut]):
    pass
