"""Stripe's error body, `{"error": {type, code, message, param, ...}}`, as one exception class.

The SDK picks its exception class from the HTTP status (400/404 InvalidRequestError, 401
AuthenticationError, 402 CardError, 409 and idempotency_error IdempotencyError), so each helper
below fixes status and type together."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, param=param, code=code)


def missing_param(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def unknown_param(param: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param)


def resource_missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
    )


def authentication(message: str) -> StripeError:
    return StripeError(401, message)


def card_declined(
    decline_code: str = "generic_decline", charge_or_intent: dict[str, Any] | None = None
) -> StripeError:
    extra: dict[str, Any] = {"decline_code": decline_code}
    if charge_or_intent is not None:
        extra["payment_intent"] = charge_or_intent
    return StripeError(402, "Your card was declined.", type="card_error", code="card_declined", extra=extra)


def idempotency_mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were first used "
        f"with. Try using a key other than '{key}' if you meant to execute a different request.",
        type="idempotency_error",
    )
