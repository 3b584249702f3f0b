"""Subscription endpoints: subscribe through Checkout, change plan, cancel and resume, read."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from billing_service.dependencies import (
    AdminClaims,
    DbSession,
    ReaderClaims,
    RecentClaims,
    SettingsDep,
    StripeDep,
    WriterClaims,
)
from billing_service.errors import (
    PROMOTION_CODE_ERRORS,
    STRIPE_ERRORS,
    AccountInactive,
    CheckoutInProgress,
    EmailNotVerified,
    IncompatiblePlan,
    InvalidCursor,
    InvalidProrationDate,
    OrgBillingForbidden,
    OrgNotFound,
    PaymentDeclined,
    PlanNotAvailable,
    PlanNotFound,
    SamePlan,
    ScheduledChangeNotFound,
    SeatLimitExceeded,
    SubscriptionAlreadyActive,
    SubscriptionNotChangeable,
    SubscriptionNotFound,
)
from billing_service.pagination import Cursor, Limit
from billing_service.plans.schemas import PlanCode
from billing_service.subscriptions import access, changes, checkout
from billing_service.subscriptions.changes import ChangeTiming
from billing_service.subscriptions.schemas import (
    ChangePlanRequest,
    ChangePreviewOut,
    CheckoutOut,
    EntitlementsOut,
    PreviewLineOut,
    SubscribeRequest,
    SubscriptionOut,
    SubscriptionPage,
)
from gatehouse_platform.errors import Forbidden, ReauthenticationRequired, Unauthorized, responses

router = APIRouter(prefix="/billing", tags=["subscriptions"], responses=responses(Unauthorized))


@router.post(
    "/subscriptions/subscribe",
    status_code=201,
    summary="Start a subscription: returns the Stripe Checkout URL to pay at",
    responses=responses(
        EmailNotVerified,
        AccountInactive,
        PlanNotFound,
        PlanNotAvailable,
        SubscriptionAlreadyActive,
        CheckoutInProgress,
        OrgBillingForbidden,
        OrgNotFound,
        SeatLimitExceeded,
        *PROMOTION_CODE_ERRORS,
        *STRIPE_ERRORS,
    ),
)
async def subscribe(
    body: SubscribeRequest, claims: WriterClaims, db: DbSession, stripe: StripeDep, settings: SettingsDep
) -> CheckoutOut:
    if body.org_id is not None:
        row = await checkout.subscribe_org(
            db, stripe, settings, claims, body.plan_code, body.org_id, body.promotion_code
        )
    else:
        row = await checkout.subscribe(db, stripe, settings, claims, body.plan_code, body.promotion_code)
    assert row.checkout_url is not None and row.stripe_checkout_session_id is not None
    return CheckoutOut(
        checkout_url=row.checkout_url, session_id=row.stripe_checkout_session_id, subscription_id=row.id
    )


@router.post(
    "/subscriptions/upgrade",
    summary="Move to another plan: upgrades now (prorated, charged now), downgrades at the period end",
    responses=responses(
        ReauthenticationRequired,
        PlanNotFound,
        PlanNotAvailable,
        SubscriptionNotFound,
        SubscriptionNotChangeable,
        SamePlan,
        IncompatiblePlan,
        InvalidProrationDate,
        PaymentDeclined,
        *STRIPE_ERRORS,
    ),
)
async def change_plan(
    body: ChangePlanRequest, claims: RecentClaims, db: DbSession, stripe: StripeDep, settings: SettingsDep
) -> SubscriptionOut:
    row = await changes.change_plan(
        db, stripe, claims, body.plan_code, proration_date=body.proration_date, when=body.when
    )
    return await access.describe(db, settings, row)


@router.delete(
    "/subscriptions/scheduled-change",
    status_code=204,
    summary="Withdraw the plan change waiting for the period end",
    responses=responses(
        ReauthenticationRequired,
        SubscriptionNotFound,
        ScheduledChangeNotFound,
        *STRIPE_ERRORS,
    ),
)
async def cancel_scheduled_change(claims: RecentClaims, db: DbSession, stripe: StripeDep) -> Response:
    await changes.cancel_scheduled_change(db, stripe, claims)
    return Response(status_code=204)


@router.get(
    "/subscriptions/upgrade/preview",
    summary="What moving to another plan would cost (Stripe's invoice preview)",
    responses=responses(
        PlanNotFound,
        PlanNotAvailable,
        SubscriptionNotFound,
        SubscriptionNotChangeable,
        SamePlan,
        IncompatiblePlan,
        *STRIPE_ERRORS,
    ),
)
async def preview_change(
    plan_code: Annotated[PlanCode, Query()],
    claims: ReaderClaims,
    db: DbSession,
    stripe: StripeDep,
    when: Annotated[ChangeTiming | None, Query()] = None,
) -> ChangePreviewOut:
    quote = await changes.preview_plan_change(db, stripe, claims, plan_code, when=when)
    preview = quote.invoice
    return ChangePreviewOut(
        plan_code=quote.plan.code,
        direction="upgrade" if quote.upgrade else "downgrade",
        proration_behavior=quote.proration_behavior,
        proration_date=quote.proration_date,
        effective_at=quote.effective_at,
        due_now=quote.proration_behavior == "always_invoice",
        amount_due=preview.amount_due,
        currency=preview.currency,
        lines=[PreviewLineOut(**line.__dict__) for line in preview.lines],
    )


@router.post(
    "/subscriptions/cancel",
    summary="Cancel at the end of the period (access runs until then)",
    responses=responses(
        ReauthenticationRequired, SubscriptionNotFound, SubscriptionNotChangeable, *STRIPE_ERRORS
    ),
)
async def cancel(
    claims: RecentClaims, db: DbSession, stripe: StripeDep, settings: SettingsDep
) -> SubscriptionOut:
    row = await changes.cancel_at_period_end(db, stripe, claims)
    return await access.describe(db, settings, row)


@router.post(
    "/subscriptions/resume",
    summary="Withdraw a scheduled cancellation",
    responses=responses(SubscriptionNotFound, SubscriptionNotChangeable, *STRIPE_ERRORS),
)
async def resume(
    claims: WriterClaims, db: DbSession, stripe: StripeDep, settings: SettingsDep
) -> SubscriptionOut:
    row = await changes.resume(db, stripe, claims)
    return await access.describe(db, settings, row)


@router.get(
    "/subscriptions/me",
    summary="My subscription (the live one, else the latest), with its entitlements",
    responses=responses(SubscriptionNotFound),
)
async def my_subscription(claims: ReaderClaims, db: DbSession, settings: SettingsDep) -> SubscriptionOut:
    return await access.current_subscription(db, settings, claims.sub)


@router.get(
    "/entitlements/me",
    summary="What I may use now (empty without access); acting in an organization, the org's",
)
async def my_entitlements(claims: ReaderClaims, db: DbSession, settings: SettingsDep) -> EntitlementsOut:
    if claims.org_id is not None:
        return await access.org_entitlements(db, settings, claims.org_id)
    return await access.entitlements(db, settings, claims.sub)


@router.get(
    "/admin/users/{user_id}/subscriptions",
    tags=["admin"],
    summary="A user's subscriptions, newest first",
    responses=responses(Forbidden, InvalidCursor),
)
async def user_subscriptions(
    user_id: uuid.UUID,
    _: AdminClaims,
    db: DbSession,
    settings: SettingsDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> SubscriptionPage:
    items, next_cursor = await access.subscriptions_page(db, settings, user_id, limit=limit, cursor=cursor)
    return SubscriptionPage(items=items, next_cursor=next_cursor)
