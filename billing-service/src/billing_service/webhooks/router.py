"""The Stripe webhook endpoint: verify the signature on the raw body, store the event once, answer.

Stripe posts here directly (no gateway, no token). A bad, missing or too old signature is a 400
problem, never a 200. A verified event is stored by its `evt_…` id (a duplicate changes nothing and
is answered 200 as well, so Stripe stops retrying) and the background processor is woken; nothing
else happens in the request, so Stripe gets its answer in milliseconds. Concurrent requests share
their INSERT and commit (webhooks/recorder.py); each is answered once its event is committed.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import Counter
from pydantic import BaseModel

from billing_service.dependencies import ProcessorDep, RecorderDep, SettingsDep
from billing_service.errors import WebhookPayloadInvalid, WebhookSignatureInvalid
from billing_service.integrations.stripe import verify_webhook
from gatehouse_platform.errors import responses

router = APIRouter(prefix="/billing/stripe", tags=["stripe"])

WEBHOOKS_RECEIVED = Counter(
    "billing_stripe_webhooks_received_total", "Verified Stripe webhooks, by whether they were new.", ["new"]
)


class WebhookAck(BaseModel):
    received: bool = True
    duplicate: bool


@router.post(
    "/webhook",
    summary="Stripe events (signed with the endpoint's secret)",
    responses=responses(WebhookSignatureInvalid, WebhookPayloadInvalid),
    openapi_extra={
        "parameters": [
            {
                "name": "Stripe-Signature",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "t=<unix time>,v1=<HMAC-SHA256 of '<t>.<raw body>'>",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "description": "A Stripe event"}}},
        },
    },
)
async def receive_stripe_event(
    request: Request, settings: SettingsDep, recorder: RecorderDep, processor: ProcessorDep
) -> WebhookAck:
    event = verify_webhook(
        await request.body(),
        request.headers.get("stripe-signature"),
        settings.webhook_secrets,
        settings.stripe_webhook_tolerance_seconds,
    )
    new = await recorder.record(event)
    WEBHOOKS_RECEIVED.labels("true" if new else "false").inc()
    if new:
        processor.wake()
    return WebhookAck(duplicate=not new)
