"""Control endpoints under /_emulator (no API key: a local tool for tests and people clicking through).

POST /_emulator/reset                                   forget everything (objects, events, deliveries, clock)
GET  /_emulator/clock                                   {"now", "iso", "mode"}
POST /_emulator/clock/advance {"seconds": N} | {"to": t} run what falls due, in order; move the clock
POST /_emulator/checkout/sessions/{id}/complete {"outcome": "paid"|"declined"|"requires_action", "email"?,
    "promotion_code"?}
GET|POST /_emulator/customers/{id}/payment_behavior {"outcome": "paid"|"declined"|"requires_action"}
POST /_emulator/charges/{id}/refund {"amount"?, "reason"?}   a refund made in Stripe's dashboard
POST /_emulator/charges/{id}/dispute {"reason"?, "amount"?}  the cardholder's bank opens a dispute
POST /_emulator/disputes/{id}/close {"outcome": "won"|"lost"}  the bank decides
GET|POST /_emulator/webhooks/chaos {"duplicates": 3, "shuffle": true, "max_delay": 0.05, "seed": 1}
GET  /_emulator/webhooks/deliveries?event_id=&event_type=&url=&succeeded=
POST /_emulator/webhooks/flush {"timeout": 10}         wait until no delivery is queued or retrying
GET  /_emulator/requests                                the last API calls (method, path, Stripe-Version, …)
GET|DELETE /_emulator/conformance                       schema violations found so far (check_schemas), clear
GET  /healthz"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from gatehouse_emulators.stripe.domain import charges, checkout, customers
from gatehouse_emulators.stripe.domain.lifecycle import Due, advance_to
from gatehouse_emulators.stripe.domain.state import RequestContext
from gatehouse_emulators.stripe.domain.store import Obj
from gatehouse_emulators.stripe.http.edge import Runtime
from gatehouse_emulators.stripe.http.webhooks import Chaos
from gatehouse_emulators.stripe.wire.errors import StripeError, invalid


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(raw.decode()))
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("The body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise invalid("The body must be a JSON object.")
    return data


def _error(exc: StripeError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def _chaos_view(chaos: Chaos) -> Obj:
    return {"duplicates": chaos.duplicates, "shuffle": chaos.shuffle, "max_delay": chaos.max_delay}


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"{key} must be an integer", param=key) from None


def build_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    emu = runtime.emu

    def context(request: Request) -> RequestContext:
        return RequestContext(base_url=runtime.base_url(request))

    def clock_view() -> Obj:
        now = emu.now()
        return {"now": now, "iso": datetime.fromtimestamp(now, UTC).isoformat(), "mode": emu.clock.mode}

    @router.get("/healthz")
    async def healthz() -> Obj:
        return {"status": "ok"}

    @router.post("/_emulator/reset")
    async def reset() -> Obj:
        async with emu.lock:
            emu.reset()
            runtime.dispatcher.reset()
        return {"reset": True, **clock_view()}

    @router.get("/_emulator/clock")
    async def clock() -> Obj:
        return clock_view()

    @router.post("/_emulator/clock/advance")
    async def advance(request: Request) -> JSONResponse:
        try:
            data = await _body(request)
            seconds, target = _int(data, "seconds"), _int(data, "to")
            if (seconds is None) == (target is None):
                raise invalid('Send {"seconds": N} or {"to": unix_time}.')
            moment = emu.now() + seconds if seconds is not None else target
            assert moment is not None
            if moment < emu.now():
                raise invalid("The clock only moves forward.")

            def work() -> tuple[list[Due], int]:
                before = emu.store.count("event")
                done = advance_to(emu, moment)
                return done, emu.store.count("event") - before

            done, events = await runtime.run(work, context(request))
        except StripeError as exc:
            return _error(exc)
        processed = [{"at": d.at, "kind": d.kind, "object": d.object_id} for d in done]
        return JSONResponse({**clock_view(), "processed": processed, "events": events})

    @router.post("/_emulator/checkout/sessions/{session_id}/complete")
    async def complete(session_id: str, request: Request) -> JSONResponse:
        try:
            data = await _body(request)
            outcome = str(data.get("outcome", "paid"))
            email = data.get("email")
            code = data.get("promotion_code")

            def work() -> Obj:
                session = emu.store.require(session_id, "checkout.session", "checkout.session", "session")
                result = checkout.complete(
                    emu, session, outcome, str(email) if email else None, str(code) if code else None
                )
                answer = {
                    key: (emu.render(value) if isinstance(value, dict) and "object" in value else value)
                    for key, value in result.items()
                }
                emu.check(answer, request.url.path)
                return answer

            return JSONResponse(await runtime.run(work, context(request)))
        except StripeError as exc:
            return _error(exc)

    @router.get("/_emulator/customers/{customer_id}/payment_behavior")
    async def get_behavior(customer_id: str) -> JSONResponse:
        try:
            customer = emu.store.require(customer_id, "customer", "customer")
        except StripeError as exc:
            return _error(exc)
        return JSONResponse({"customer": customer_id, "outcome": customer["_payment_outcome"]})

    @router.post("/_emulator/customers/{customer_id}/payment_behavior")
    async def set_behavior(customer_id: str, request: Request) -> JSONResponse:
        try:
            data = await _body(request)

            def work() -> None:
                customer = emu.store.require(customer_id, "customer", "customer")
                customers.set_payment_outcome(customer, str(data.get("outcome")))

            await runtime.run(work)
        except StripeError as exc:
            return _error(exc)
        return JSONResponse({"customer": customer_id, "outcome": data.get("outcome")})

    def money_answer(request: Request, obj: Obj, key: str) -> Obj:
        answer = {key: emu.render(obj)}
        emu.check(answer, request.url.path)
        return answer

    @router.post("/_emulator/charges/{charge_id}/refund")
    async def dashboard_refund(charge_id: str, request: Request) -> JSONResponse:
        """A refund made by a person in Stripe's dashboard: no API call of ours, only its events."""
        try:
            data = await _body(request)
            amount, reason = _int(data, "amount"), data.get("reason")
            if reason is not None and reason not in charges.REFUND_REASONS:
                raise invalid(f"reason must be one of {', '.join(charges.REFUND_REASONS)}", param="reason")

            def work() -> Obj:
                charge = emu.store.require(charge_id, "charge", "charge", "charge")
                return money_answer(request, charges.refund(emu, charge, amount, reason, {}), "refund")

            return JSONResponse(await runtime.run(work, context(request)))
        except StripeError as exc:
            return _error(exc)

    @router.post("/_emulator/charges/{charge_id}/dispute")
    async def open_dispute(charge_id: str, request: Request) -> JSONResponse:
        try:
            data = await _body(request)
            amount, reason = _int(data, "amount"), str(data.get("reason", "fraudulent"))

            def work() -> Obj:
                charge = emu.store.require(charge_id, "charge", "charge", "charge")
                return money_answer(request, charges.open_dispute(emu, charge, reason, amount), "dispute")

            return JSONResponse(await runtime.run(work, context(request)))
        except StripeError as exc:
            return _error(exc)

    @router.post("/_emulator/disputes/{dispute_id}/close")
    async def close_dispute(dispute_id: str, request: Request) -> JSONResponse:
        try:
            data = await _body(request)
            outcome = str(data.get("outcome", ""))

            def work() -> Obj:
                dispute = emu.store.require(dispute_id, "dispute", "dispute", "dispute")
                return money_answer(request, charges.close_dispute(emu, dispute, outcome), "dispute")

            return JSONResponse(await runtime.run(work, context(request)))
        except StripeError as exc:
            return _error(exc)

    @router.get("/_emulator/webhooks/chaos")
    async def get_chaos() -> Obj:
        return _chaos_view(runtime.dispatcher.chaos)

    @router.post("/_emulator/webhooks/chaos")
    async def set_chaos(request: Request) -> JSONResponse:
        try:
            data = await _body(request)
            duplicates = _int(data, "duplicates") or 1
            if not 1 <= duplicates <= 20:
                raise invalid("duplicates must be between 1 and 20", param="duplicates")
            chaos = Chaos(
                duplicates=duplicates,
                shuffle=bool(data.get("shuffle", False)),
                max_delay=float(data.get("max_delay", 0.0)),
                seed=_int(data, "seed"),
            )
        except (StripeError, ValueError, TypeError) as exc:
            return _error(exc if isinstance(exc, StripeError) else invalid(str(exc)))
        runtime.dispatcher.set_chaos(chaos)
        return JSONResponse(_chaos_view(chaos))

    @router.get("/_emulator/webhooks/deliveries")
    async def deliveries(
        event_id: str | None = None,
        event_type: str | None = None,
        url: str | None = None,
        succeeded: bool | None = None,
    ) -> Obj:
        rows = runtime.dispatcher.log(event_id=event_id, event_type=event_type, url=url, succeeded=succeeded)
        return {"data": rows, "outstanding": runtime.dispatcher.outstanding}

    @router.post("/_emulator/webhooks/flush")
    async def flush(request: Request) -> JSONResponse:
        try:
            data = await _body(request)
            timeout = float(data.get("timeout", 10.0))
        except (StripeError, ValueError, TypeError):
            return _error(invalid("timeout must be a number of seconds"))
        drained = await runtime.dispatcher.flush(timeout)
        return JSONResponse(
            {"drained": drained, "outstanding": runtime.dispatcher.outstanding},
            status_code=200 if drained else 504,
        )

    @router.get("/_emulator/requests")
    async def requests() -> Obj:
        return {"data": list(reversed(emu.requests))}

    @router.get("/_emulator/conformance")
    async def conformance() -> JSONResponse:
        if emu.conformance is None:
            return _error(invalid("The schema check is off (STRIPE_EMULATOR_CHECK_SCHEMAS=1 turns it on)."))
        return JSONResponse(emu.conformance.report())

    @router.delete("/_emulator/conformance")
    async def clear_conformance() -> Obj:
        if emu.conformance is not None:
            emu.conformance.clear()
        return {"cleared": True}

    return router
