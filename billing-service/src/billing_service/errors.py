"""billing-service's domain errors: each carries its status and a stable problem type."""

from __future__ import annotations

from gatehouse_platform.errors import Conflict, DomainError, Forbidden, NotFound


class PlanNotFound(NotFound):
    slug = "plan-not-found"
    title = "Plan not found"


class SeatLimitsInvalid(DomainError):
    """The plan's seat settings contradict each other (after a PATCH merged them with the plan's)."""

    status = 422
    slug = "seat-limits-invalid"
    title = "Seat limits are not valid"


class PlanNotAvailable(Conflict):
    """The plan exists but is retired (soft-deleted): nobody can start or move to it."""

    slug = "plan-not-available"
    title = "Plan no longer offered"


class PlanCodeTaken(Conflict):
    slug = "plan-code-taken"
    title = "Plan code already in use"


class EmailNotVerified(Forbidden):
    slug = "email-not-verified"
    title = "Verify your email address first"


class AccountInactive(Forbidden):
    slug = "account-inactive"
    title = "Account deactivated"


class SubscriptionAlreadyActive(Conflict):
    slug = "subscription-exists"
    title = "You already have a subscription"


class CheckoutInProgress(Conflict):
    """A Checkout for the same plan is open: the problem body carries its `checkout_url` and
    `session_id` so the client can send the customer back there."""

    slug = "checkout-in-progress"
    title = "A checkout is already in progress"


class SubscriptionNotFound(NotFound):
    slug = "subscription-not-found"
    title = "No subscription"


class SubscriptionNotChangeable(Conflict):
    """The subscription is not in a state that allows this change (e.g. past due, still in
    Checkout, already ended, or not scheduled to cancel when resuming)."""

    slug = "subscription-not-changeable"
    title = "Subscription cannot be changed now"


class SamePlan(Conflict):
    slug = "same-plan"
    title = "Already on this plan"


class ScheduledChangeNotFound(NotFound):
    """No plan change is waiting for the period end."""

    slug = "scheduled-change-not-found"
    title = "No scheduled plan change"


class IncompatiblePlan(Conflict):
    slug = "incompatible-plan"
    title = "Cannot switch to a plan in another currency"


class StripeEventNotFound(NotFound):
    slug = "stripe-event-not-found"
    title = "No such Stripe event received"


class StripeEventNotFailed(Conflict):
    """Only a failed event waits for a retry; a processed or ignored one is done, a pending one due."""

    slug = "stripe-event-not-failed"
    title = "The Stripe event has not failed"


class PaymentMethodNotFound(NotFound):
    slug = "payment-method-not-found"
    title = "No payment method on file"


class BillingAccountNotFound(NotFound):
    """The person has never been a Stripe customer (never subscribed): there is nothing to manage."""

    slug = "billing-account-not-found"
    title = "No billing account yet"


class ReturnUrlNotAllowed(DomainError):
    """The URL is not on an origin billing may send a person back to (BILLING_RETURN_ORIGINS)."""

    status = 422
    slug = "return-url-not-allowed"
    title = "Return URL not allowed"


class PaymentNotFound(NotFound):
    slug = "payment-not-found"
    title = "Payment not found"


class PaymentNotRefundable(Conflict):
    """Only a paid payment without an open dispute can be refunded (a disputed charge is the bank's
    to return)."""

    slug = "payment-not-refundable"
    title = "This payment cannot be refunded"


class RefundExceedsPayment(DomainError):
    """The refund asked for is more than what is left of what was paid."""

    status = 422
    slug = "refund-exceeds-payment"
    title = "Refund larger than what remains of the payment"


class IdempotencyKeyReused(DomainError):
    """The Idempotency-Key was already used on this payment for a refund with other parameters."""

    status = 422
    slug = "idempotency-key-reused"
    title = "Idempotency key already used with other parameters"


class InvalidCursor(DomainError):
    status = 400
    slug = "invalid-cursor"
    title = "Invalid cursor"


class InvalidProrationDate(DomainError):
    status = 422
    slug = "invalid-proration-date"
    title = "Invalid proration date"


class WebhookSignatureInvalid(DomainError):
    """Missing, malformed, wrongly signed or too old: Stripe (or an attacker) gets a 400."""

    status = 400
    slug = "webhook-signature-invalid"
    title = "Invalid webhook signature"


class WebhookPayloadInvalid(DomainError):
    status = 400
    slug = "webhook-payload-invalid"
    title = "Invalid webhook payload"


# Stripe failures (raised by integrations/stripe/, the only package that knows Stripe's errors)


class PaymentDeclined(DomainError):
    status = 402
    slug = "payment-declined"
    title = "Payment declined"


class PaymentProviderUnavailable(DomainError):
    """Stripe could not be reached, timed out or answered 5xx. Safe to retry: every call we make
    carries an idempotency key."""

    status = 503
    slug = "payment-provider-unavailable"
    title = "Payment provider unavailable"


class PaymentProviderError(DomainError):
    """Stripe refused a request we should not have sent (a bug or a misconfiguration on our side)."""

    status = 502
    slug = "payment-provider-error"
    title = "Payment provider error"


# What a route that calls Stripe may answer besides its own errors (for its `responses=`).
STRIPE_ERRORS = (PaymentProviderError, PaymentProviderUnavailable)


# Coupons and promotion codes


class CouponNotFound(NotFound):
    slug = "coupon-not-found"
    title = "Coupon not found"


class CouponDeleted(Conflict):
    """The coupon was deleted: it takes no new promotion codes."""

    slug = "coupon-deleted"
    title = "Coupon deleted"


class PromotionCodeNotFound(NotFound):
    slug = "promotion-code-not-found"
    title = "Promotion code not found"


class PromotionCodeTaken(Conflict):
    slug = "promotion-code-taken"
    title = "An active promotion code already uses this code"


class UnknownCouponPlan(DomainError):
    status = 422
    slug = "coupon-plan-unknown"
    title = "The coupon names a plan that does not exist"


# Why a promotion code given at subscribe is refused: each its own stable type.


class PromotionCodeUnknown(DomainError):
    status = 422
    slug = "promotion-code-unknown"
    title = "Unknown promotion code"


class PromotionCodeExpired(DomainError):
    """Past its `expires_at`, its coupon past `redeem_by` or deleted, or the code deactivated."""

    status = 422
    slug = "promotion-code-expired"
    title = "Promotion code expired"


class PromotionCodeUsedUp(DomainError):
    """The code (or its coupon) reached its `max_redemptions`."""

    status = 422
    slug = "promotion-code-used-up"
    title = "Promotion code used up"


class PromotionCodeNotApplicable(DomainError):
    """The coupon is limited to other plans, or is an amount in another currency than the plan's."""

    status = 422
    slug = "promotion-code-not-applicable"
    title = "Promotion code does not apply to this plan"


class PromotionCodeFirstTimeOnly(DomainError):
    status = 422
    slug = "promotion-code-first-time-only"
    title = "Promotion code is for first-time customers only"


PROMOTION_CODE_ERRORS = (
    PromotionCodeUnknown,
    PromotionCodeExpired,
    PromotionCodeUsedUp,
    PromotionCodeNotApplicable,
    PromotionCodeFirstTimeOnly,
)


class OrgBillingForbidden(Forbidden):
    """Only an owner or admin acting in the organization (the token's org_id and org_role) may buy or
    manage its subscription."""

    slug = "org-billing-forbidden"
    title = "Only the organization's owners and admins manage its billing"


class OrgNotFound(NotFound):
    """Not an organization the caller acts in (members only; others learn nothing), or deleted."""

    slug = "org-not-found"
    title = "Organization not found"


class SeatLimitExceeded(Conflict):
    slug = "seat-limit-exceeded"
    title = "The organization has more members than the plan allows"
