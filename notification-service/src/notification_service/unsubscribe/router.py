"""The target of List-Unsubscribe: mail clients POST to it (one click); people opening the link
in a browser get a page with a button, because link scanners follow GETs and must not unsubscribe."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from gatehouse_platform.errors import responses
from notification_service.dependencies import DbSession, LinksDep, SettingsDep
from notification_service.errors import InvalidUnsubscribeLink
from notification_service.unsubscribe import service

router = APIRouter(prefix="/notifications/unsubscribe", tags=["unsubscribe"])

Token = Annotated[str, Query(min_length=10, max_length=1000, description="From the email's link")]


class Unsubscribed(BaseModel):
    category: str
    unsubscribed: bool = True


@router.get(
    "",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}},
        **responses(InvalidUnsubscribeLink),
    },
    summary="Confirmation page (does not unsubscribe by itself)",
)
async def unsubscribe_page(token: Token, links: LinksDep, settings: SettingsDep) -> HTMLResponse:
    found = service.read_link(links, token)
    product = escape(settings.product_name)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribe · {product}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;">
<h1 style="font-size:1.3rem;">Stop these emails?</h1>
<p>{escape(found.email)} will no longer get {product} payment receipts and renewal confirmations.
Security emails and notices that need your action still arrive.</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form>
</body></html>"""
    return HTMLResponse(page, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


@router.post("", responses=responses(InvalidUnsubscribeLink), summary="Unsubscribe (RFC 8058 one-click)")
async def unsubscribe(token: Token, db: DbSession, links: LinksDep) -> Unsubscribed:
    found = await service.unsubscribe(db, links, token)
    return Unsubscribed(category=found.category)
