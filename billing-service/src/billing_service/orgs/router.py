"""An organization's billing, for its members (read) and its owners and admins (manage): the token
must act in the org (`org_id`); others are told it does not exist."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from billing_service.dependencies import CurrentClaims, DbSession, ReaderClaims, SettingsDep, StripeDep
from billing_service.errors import (
    STRIPE_ERRORS,
    BillingAccountNotFound,
    InvalidCursor,
    OrgBillingForbidden,
    OrgNotFound,
    ReturnUrlNotAllowed,
    SubscriptionNotFound,
)
from billing_service.orgs.service import require_member, require_org_admin
from billing_service.pagination import Cursor, Limit
from billing_service.payments import service as payments
from billing_service.payments.schemas import PaymentOut, PaymentPage
from billing_service.self_service import portal
from billing_service.self_service.schemas import PortalOut, PortalRequest
from billing_service.subscriptions import access
from billing_service.subscriptions.schemas import EntitlementsOut, SubscriptionOut
from gatehouse_platform.errors import Unauthorized, responses

router = APIRouter(prefix="/billing/orgs/{org_id}", tags=["organizations"], responses=responses(Unauthorized))


@router.get(
    "/subscription",
    summary="The organization's subscription (the live one, else the latest), with its seats",
    responses=responses(OrgNotFound, SubscriptionNotFound),
)
async def org_subscription(
    org_id: uuid.UUID, claims: ReaderClaims, db: DbSession, settings: SettingsDep
) -> SubscriptionOut:
    require_member(claims, org_id)
    return await access.current_org_subscription(db, settings, org_id)


@router.get(
    "/entitlements",
    summary="What the organization's members may use now",
    responses=responses(OrgNotFound),
)
async def org_entitlements(
    org_id: uuid.UUID, claims: ReaderClaims, db: DbSession, settings: SettingsDep
) -> EntitlementsOut:
    require_member(claims, org_id)
    return await access.org_entitlements(db, settings, org_id)


@router.get(
    "/payments",
    summary="The organization's payments, newest first",
    responses=responses(OrgNotFound, InvalidCursor),
)
async def org_payments(
    org_id: uuid.UUID, claims: ReaderClaims, db: DbSession, limit: Limit = 20, cursor: Cursor = None
) -> PaymentPage:
    require_member(claims, org_id)
    rows, next_cursor = await payments.org_payments_page(db, org_id, limit=limit, cursor=cursor)
    return PaymentPage(items=[PaymentOut.model_validate(p) for p in rows], next_cursor=next_cursor)


@router.post(
    "/portal",
    summary="Open Stripe's Customer Portal for the organization's billing (owners and admins)",
    responses=responses(OrgBillingForbidden, ReturnUrlNotAllowed, BillingAccountNotFound, *STRIPE_ERRORS),
)
async def org_portal(
    org_id: uuid.UUID,
    claims: CurrentClaims,
    db: DbSession,
    stripe: StripeDep,
    settings: SettingsDep,
    body: PortalRequest | None = None,
) -> PortalOut:
    require_org_admin(claims, org_id)
    return_url = body.return_url if body is not None else None
    return PortalOut(url=await portal.open_org_portal(db, stripe, settings, org_id, return_url))
