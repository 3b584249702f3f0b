"""Self-service endpoints: what a signed-in customer reads about their own billing."""

from __future__ import annotations

from fastapi import APIRouter, Response

from billing_service.dependencies import CurrentClaims, DbSession, ReaderClaims, SettingsDep, StripeDep
from billing_service.errors import (
    STRIPE_ERRORS,
    BillingAccountNotFound,
    InvalidCursor,
    PaymentMethodNotFound,
    ReturnUrlNotAllowed,
)
from billing_service.pagination import Cursor, Limit
from billing_service.self_service import export, portal, service
from billing_service.self_service.schemas import (
    BillingExport,
    InvoiceOut,
    InvoicePage,
    PaymentMethodOut,
    PortalOut,
    PortalRequest,
)
from gatehouse_platform.downloads import dated_filename, download_headers, download_responses
from gatehouse_platform.errors import Unauthorized, responses

router = APIRouter(prefix="/billing", tags=["self-service"], responses=responses(Unauthorized))


@router.get(
    "/payment-method/me",
    summary="My card on file: brand, last four digits, expiry",
    responses=responses(PaymentMethodNotFound, *STRIPE_ERRORS),
)
async def my_payment_method(claims: ReaderClaims, db: DbSession, stripe: StripeDep) -> PaymentMethodOut:
    return PaymentMethodOut.model_validate(await service.payment_method(db, stripe, claims.sub))


@router.get(
    "/invoices/me",
    summary="My invoices, newest first, with their hosted page and PDF",
    responses=responses(InvalidCursor, *STRIPE_ERRORS),
)
async def my_invoices(
    claims: ReaderClaims, db: DbSession, stripe: StripeDep, limit: Limit = 20, cursor: Cursor = None
) -> InvoicePage:
    invoices, next_cursor = await service.invoices_page(db, stripe, claims.sub, limit=limit, cursor=cursor)
    items = [InvoiceOut.model_validate(i) for i in invoices]
    return InvoicePage(items=items, next_cursor=next_cursor)


@router.post(
    "/portal",
    summary="Open Stripe's Customer Portal: update the card, see invoices, cancel, switch plan",
    responses=responses(ReturnUrlNotAllowed, BillingAccountNotFound, *STRIPE_ERRORS),
)
async def open_portal(
    claims: CurrentClaims,
    db: DbSession,
    stripe: StripeDep,
    settings: SettingsDep,
    body: PortalRequest | None = None,
) -> PortalOut:
    return_url = body.return_url if body is not None else None
    return PortalOut(url=await portal.open_portal(db, stripe, settings, claims.sub, return_url))


@router.get(
    "/me/export",
    summary="Download my billing data: subscriptions, payments, refunds, invoices, the card on file",
    responses={**download_responses("My billing data, as a JSON file"), **responses(*STRIPE_ERRORS)},
)
async def export_my_data(
    claims: CurrentClaims, db: DbSession, stripe: StripeDep, settings: SettingsDep, response: Response
) -> BillingExport:
    """The card appears as brand, last four digits and expiry only; nothing else about it is kept."""
    exported = await export.export(db, stripe, settings, claims.sub)
    response.headers.update(download_headers(dated_filename("gatehouse-billing", exported.exported_at)))
    return exported
