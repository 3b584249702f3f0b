"""Stripe's errors translated into ours, so no SDK exception leaves this package:

| Stripe says                                   | we raise                          | status |
|-----------------------------------------------|-----------------------------------|--------|
| card declined / authentication required       | `PaymentDeclined`                 | 402    |
| unreachable, timeout, rate limited            | `PaymentProviderUnavailable`      | 503    |
| 5xx, authentication, anything unexpected      | `PaymentProviderError`            | 502    |
| 4xx invalid request (bad state, missing)      | `StripeRequestRejected` (a 502)   | 502    |

Callers that expect a particular refusal (expiring a Checkout session that completed meanwhile)
catch `StripeRequestRejected` and decide.
"""

from __future__ import annotations

import logging

import stripe
from prometheus_client import Counter

from billing_service.errors import PaymentDeclined, PaymentProviderError, PaymentProviderUnavailable

log = logging.getLogger(__name__)

STRIPE_API_ERRORS = Counter(
    "billing_stripe_api_errors_total",
    "Stripe API calls that failed, by kind: declined (a card refused), unreachable (connection, "
    "timeout, rate limit), rejected (a 4xx for our request), error (5xx, authentication, other).",
    ["kind"],
)


class StripeRequestRejected(PaymentProviderError):
    """Stripe refused the request (HTTP 4xx other than a card error). `code` is Stripe's error code
    (`resource_missing`, …) and `http_status` its status."""

    slug = "payment-provider-rejected"
    title = "Payment provider refused the request"

    def __init__(self, detail: str, *, code: str | None, http_status: int | None) -> None:
        super().__init__(detail)
        self.code = code
        self.http_status = http_status


def translate(exc: stripe.StripeError) -> PaymentProviderError | PaymentProviderUnavailable | PaymentDeclined:
    """Our error for one of the SDK's (logged here: the SDK's own message may name the request)."""
    if isinstance(exc, stripe.CardError):
        STRIPE_API_ERRORS.labels("declined").inc()
        return PaymentDeclined(exc.user_message or "The card was declined.")
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        STRIPE_API_ERRORS.labels("unreachable").inc()
        log.warning("stripe unreachable: %s", type(exc).__name__)
        return PaymentProviderUnavailable(
            "Stripe could not be reached; try again shortly.", headers={"Retry-After": "5"}
        )
    if isinstance(exc, stripe.InvalidRequestError):
        STRIPE_API_ERRORS.labels("rejected").inc()
        log.warning("stripe refused a request: %s (%s)", exc.code, exc.http_status)
        return StripeRequestRejected(
            exc.user_message or "Stripe refused the request.", code=exc.code, http_status=exc.http_status
        )
    STRIPE_API_ERRORS.labels("error").inc()
    log.error("stripe error %s (%s)", type(exc).__name__, exc.http_status)
    return PaymentProviderError("Stripe answered with an error.")
