"""`GET /notifications/templates` and previews of each with sample data (not in production)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from gatehouse_platform.errors import responses
from notification_service.dependencies import LinksDep, RendererDep
from notification_service.email.catalogue import TEMPLATES
from notification_service.errors import TemplateNotFound
from notification_service.previews.service import render_sample

router = APIRouter(prefix="/notifications/templates", tags=["templates"])


class TemplateOut(BaseModel):
    name: str
    event_type: str = Field(description="The event that sends it.")
    description: str
    unsubscribable: bool = Field(description="Carries List-Unsubscribe (one-click) headers.")
    carries_secret: bool = Field(description="Holds a one-time link or code: never stored, never resent.")
    sample_subject: str


@router.get("", summary="Every email template")
async def list_templates(renderer: RendererDep, links: LinksDep) -> list[TemplateOut]:
    return [
        TemplateOut(
            name=spec.name,
            event_type=spec.event_type,
            description=spec.description,
            unsubscribable=spec.unsubscribe_category is not None,
            carries_secret=spec.event.carries_secret,
            sample_subject=render_sample(renderer, links, spec.name).subject,
        )
        for spec in TEMPLATES.values()
    ]


@router.get(
    "/{name}/preview",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            }
        },
        **responses(TemplateNotFound),
    },
    summary="A template rendered with sample data",
)
async def preview_template(
    name: str, renderer: RendererDep, links: LinksDep, format: Literal["html", "text"] = "html"
) -> Response:
    email = render_sample(renderer, links, name)
    if format == "text":
        return Response(email.text, media_type="text/plain; charset=utf-8")
    return Response(email.html, media_type="text/html; charset=utf-8")
