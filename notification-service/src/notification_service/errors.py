"""notification-service's domain errors: each carries its status and a stable problem type."""

from __future__ import annotations

from typing import ClassVar

from gatehouse_platform.errors import Conflict, DomainError, NotFound, ServiceUnavailable


class DeliveryNotFound(NotFound):
    slug = "delivery-not-found"
    title = "Delivery not found"


class TemplateNotFound(NotFound):
    slug = "template-not-found"
    title = "Template not found"


class InvalidCursor(DomainError):
    status = 400
    slug = "invalid-cursor"
    title = "Invalid cursor"


class SecretNotStored(Conflict):
    """The email carried a one-time secret (link or code), which is never stored: it cannot be
    rendered again. The user asks for a new link or code instead."""

    slug = "resend-needs-new-secret"
    title = "This email cannot be resent"


class NotResendable(Conflict):
    slug = "not-resendable"
    title = "This email cannot be resent"


class RecipientRejected(Conflict):
    """The SMTP server refused the message for good; the failed attempt is kept."""

    slug = "recipient-rejected"
    title = "The SMTP server refused the message"
    keeps_changes: ClassVar[bool] = True


class SmtpUnavailable(ServiceUnavailable):
    """The SMTP server could not be reached or deferred the message; the attempt is kept."""

    slug = "smtp-unavailable"
    title = "SMTP server unavailable"
    keeps_changes: ClassVar[bool] = True

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "30"})


class BrokerUnavailable(ServiceUnavailable):
    slug = "broker-unavailable"
    title = "Message broker unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "10"})


class InvalidUnsubscribeLink(DomainError):
    status = 400
    slug = "invalid-unsubscribe-link"
    title = "Invalid unsubscribe link"
