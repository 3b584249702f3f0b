"""Coupon and promotion code request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from billing_service.models import CouponDuration
from billing_service.pagination import Page
from billing_service.plans.schemas import Currency, PlanCode
from gatehouse_platform.schemas import RequestModel, without_null

PromotionCodeText = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9]{3,64}$"),
    Field(
        description="What customers type: 3 to 64 letters and digits; unique among active codes, any case."
    ),
]
CouponName = Annotated[str, StringConstraints(min_length=1, max_length=40, strip_whitespace=True)]
_OPTIONAL = ("percent_off", "amount_off", "currency", "duration_in_months", "max_redemptions", "redeem_by")


def _coupon_schema(schema: dict[str, Any]) -> None:
    """What the validator checks, said in the schema: percent_off or amount_off + currency, and
    duration_in_months exactly when the duration is `repeating`."""
    without_null(*_OPTIONAL)(schema)
    schema["oneOf"] = [
        {
            "required": ["percent_off"],
            "not": {"anyOf": [{"required": ["amount_off"]}, {"required": ["currency"]}]},
        },
        {"required": ["amount_off", "currency"], "not": {"required": ["percent_off"]}},
    ]
    schema["if"] = {"properties": {"duration": {"const": "repeating"}}}
    schema["then"] = {"required": ["duration_in_months"]}
    schema["else"] = {"not": {"required": ["duration_in_months"]}}


class CouponCreate(RequestModel):
    """A discount: `percent_off`, or `amount_off` in `currency`; for `once` (the first invoice),
    `repeating` (`duration_in_months`) or `forever`."""

    model_config = ConfigDict(json_schema_extra=_coupon_schema)

    name: CouponName
    percent_off: float | None = Field(default=None, gt=0, le=100)
    amount_off: int | None = Field(
        default=None, ge=1, le=99_999_999, description="In minor units of `currency`."
    )
    currency: Currency | None = None
    duration: CouponDuration
    duration_in_months: int | None = Field(default=None, ge=1, le=36)
    max_redemptions: int | None = Field(default=None, ge=1, le=1_000_000)
    redeem_by: AwareDatetime | None = Field(default=None, description="Last moment it can be redeemed.")
    applies_to: list[PlanCode] = Field(
        default_factory=list, max_length=50, description="Plan codes it is limited to (empty: every plan)."
    )

    @field_validator(*_OPTIONAL, mode="after")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null (leave the field out)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("Give either percent_off or amount_off (with currency).")
        if (self.amount_off is None) != (self.currency is None):
            raise ValueError("currency goes with amount_off, and only with it.")
        if (self.duration == CouponDuration.REPEATING) != (self.duration_in_months is not None):
            raise ValueError("duration_in_months is required for a repeating coupon, and only for one.")
        return self


class CouponOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    percent_off: float | None
    amount_off: int | None
    currency: str | None
    duration: CouponDuration
    duration_in_months: int | None
    max_redemptions: int | None
    redeem_by: datetime | None
    applies_to: list[str] = Field(validation_alias="plan_codes")
    stripe_coupon_id: str | None
    deleted_at: datetime | None
    created_at: datetime


class CouponPage(Page[CouponOut]):
    pass


class PromotionCodeCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra=without_null("max_redemptions", "expires_at"))

    code: PromotionCodeText
    max_redemptions: int | None = Field(default=None, ge=1, le=1_000_000)
    expires_at: AwareDatetime | None = None
    first_time_only: bool = Field(default=False, description="Only for customers who never paid us.")

    @field_validator("max_redemptions", "expires_at", mode="after")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null (leave the field out)")
        return value


class PromotionCodeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    coupon_id: uuid.UUID
    code: str
    max_redemptions: int | None
    expires_at: datetime | None
    first_time_only: bool
    active: bool = Field(validation_alias="is_active")
    stripe_promotion_code_id: str | None
    created_at: datetime


class PromotionCodePage(Page[PromotionCodeOut]):
    pass
