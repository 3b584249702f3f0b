"""The console's catalogue, from billing-service's admin API: plans (every one, retired included,
and whether Stripe has its product and price; create, edit, retire, offer again) and coupons with
their promotion codes (create, delete a coupon, add and deactivate a code). Every change is shown
first and made only when its confirmation is sent (`confirmed`); billing audits it with the admin's
id (billing_audit_events). Amounts are typed in the currency's units (12.50) and sent in minor
units (1250)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatehouse_web.api import ApiError
from gatehouse_web.i18n import currency_digits, moment, money, profile_zone
from gatehouse_web.pages.admin import Admin, admin_call, confirm_action
from gatehouse_web.pages.billing import price_of
from gatehouse_web.web import Form, Viewer, Web, WebDep, explain, field

router = APIRouter(include_in_schema=False)

PLANS = "/admin/billing/plans"
COUPONS = "/admin/billing/coupons"
PAGE_SIZE = 50
TIERS = ("free", "starter", "pro", "business", "enterprise")
INTERVALS = ("day", "week", "month", "year")
DURATIONS = ("once", "repeating", "forever")
PLAN_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
PROMOTION_CODE = re.compile(r"[A-Za-z0-9]{3,64}")
CURRENCY = re.compile(r"[a-z]{3}")
PLAN_FIELDS = (
    "code",
    "name",
    "description",
    "tier",
    "amount",
    "currency",
    "interval",
    "interval_count",
    "features",
    "trial_days",
)
COUPON_FIELDS = (
    "name",
    "percent_off",
    "amount_off",
    "currency",
    "duration",
    "duration_in_months",
    "max_redemptions",
    "applies_to",
)


def _not_found() -> StarletteHTTPException:
    return StarletteHTTPException(status.HTTP_404_NOT_FOUND)


def minor_units(text: str, currency: str) -> int | None:
    """`12.50` in eur → 1250; None for anything that is not a non-negative amount in that currency's
    units (a comma is read as the decimal point: `12,50`)."""
    try:
        value = Decimal(text.replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    scaled = value.scaleb(currency_digits(currency))
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def major_units(amount: int, currency: str) -> str:
    digits = currency_digits(currency)
    return str(Decimal(amount).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)))


def _whole(text: str, low: int, high: int) -> int | None:
    return int(text) if text.isdigit() and low <= int(text) <= high else None


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def plan_body(
    values: dict[str, str], _: Callable[..., str], *, creating: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """The API's body from the form, or the form's errors (checked here first, so the message is
    in the admin's language; billing checks again)."""
    errors: dict[str, str] = {}
    currency = values["currency"].lower()
    if creating and not PLAN_CODE.fullmatch(values["code"]):
        errors["code"] = _(
            "Use lower-case letters, digits, - and _ (up to 64), starting with a letter or digit."
        )
    if not values["name"]:
        errors["name"] = _("Give the plan a name.")
    if values["tier"] not in TIERS:
        errors["tier"] = _("Choose a tier.")
    if not CURRENCY.fullmatch(currency):
        errors["currency"] = _("Use a three-letter currency code, such as usd or eur.")
    amount = minor_units(values["amount"], currency) if "currency" not in errors else None
    if amount is None or amount > 99_999_999:
        errors["amount"] = _("Give the price as an amount of the currency, such as 12.50.")
    if values["interval"] not in INTERVALS:
        errors["interval"] = _("Choose how often it is billed.")
    count = _whole(values["interval_count"], 1, 12)
    if count is None:
        errors["interval_count"] = _("A whole number from 1 to 12.")
    trial = _whole(values["trial_days"] or "0", 0, 730)
    if trial is None:
        errors["trial_days"] = _("A whole number of days from 0 to 730.")
    features = _list(values["features"])
    if len(features) > 50 or any(len(feature) > 100 for feature in features):
        errors["features"] = _("Up to 50 features, each up to 100 characters.")
    if len(values["description"]) > 2000:
        errors["description"] = _("Up to 2,000 characters.")
    body = {
        **({"code": values["code"]} if creating else {}),
        "name": values["name"],
        "description": values["description"],
        "tier": values["tier"],
        "amount": amount,
        "currency": currency,
        "interval": values["interval"],
        "interval_count": count,
        "features": features,
        "trial_days": trial,
    }
    return body, errors


def _plan_values(plan: dict[str, Any]) -> dict[str, str]:
    return {
        **{name: str(plan.get(name) or "") for name in PLAN_FIELDS},
        "amount": major_units(int(plan["amount"]), str(plan["currency"])),
        "features": ", ".join(plan.get("features") or []),
        "interval_count": str(plan.get("interval_count") or 1),
        "trial_days": str(plan.get("trial_days") or 0),
    }


def _choices(_: Callable[..., str]) -> dict[str, list[tuple[str, str]]]:
    return {
        "tiers": [(tier, tier.capitalize()) for tier in TIERS],
        "intervals": [
            ("month", _("Monthly")),
            ("year", _("Yearly")),
            ("week", _("Weekly")),
            ("day", _("Daily")),
        ],
        "durations": [
            ("once", _("Once (the first invoice)")),
            ("repeating", _("For some months")),
            ("forever", _("Forever")),
        ],
    }


def stripe_alert(exc: ApiError, _: Callable[..., str]) -> str | None:
    """Billing's answers when Stripe is away or refuses (STRIPE_ERRORS), as a sentence."""
    if exc.slug == "payment-provider-error":
        return _("Stripe refused the change: %(detail)s", detail=exc.detail or exc.title)
    if exc.status in (status.HTTP_502_BAD_GATEWAY, status.HTTP_503_SERVICE_UNAVAILABLE, 504):
        return _("Stripe cannot be reached now, so nothing was changed. Please try again in a minute.")
    return None


# ---- plans ----


async def _plans(request: Request, web: Web, viewer: Viewer) -> list[dict[str, Any]]:
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    plans: list[dict[str, Any]] = []
    cursor = ""
    while True:  # every plan: a catalogue is short
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = await admin_call(request, web, viewer, "GET", "/billing/admin/plans", params=params)
        plans.extend(page["items"])
        cursor = page["next_cursor"] or ""
        if not cursor or len(plans) >= 1000:
            break
    return [{**plan, "price": price_of(plan, locale, _)} for plan in plans]


@router.get(PLANS)
async def plans_page(
    request: Request,
    web: WebDep,
    viewer: Admin,
    done: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    _ = web.renderer.gettext_for(request)
    notices = {
        "created": _("The plan is created, with its product and price in Stripe."),
        "updated": _(
            "The plan is changed. A new price applies to new subscriptions; subscribers keep theirs."
        ),
        "retired": _("The plan is retired: nobody new can subscribe; subscriptions on it run on."),
        "offered": _("The plan is offered again."),
        "unchanged": _("Nothing was changed."),
    }
    return web.renderer.page(
        request,
        "admin_plans.html",
        user=viewer.user,
        plans=await _plans(request, web, viewer),
        notice=notices.get(done),
    )


def _plan_form(
    request: Request,
    web: Web,
    viewer: Viewer,
    values: dict[str, str],
    plan: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = status.HTTP_200_OK,
    alert: str | None = None,
) -> Response:
    _ = web.renderer.gettext_for(request)
    return web.renderer.page(
        request,
        "admin_plan_form.html",
        status_code,
        user=viewer.user,
        plan=plan,
        values=values,
        errors=errors or {},
        alert=alert,
        **_choices(_),
    )


@router.get(PLANS + "/new")
async def new_plan(request: Request, web: WebDep, viewer: Admin) -> Response:
    values = {name: "" for name in PLAN_FIELDS} | {
        "tier": "pro",
        "currency": "usd",
        "interval": "month",
        "interval_count": "1",
        "trial_days": "0",
    }
    return _plan_form(request, web, viewer, values)


def _form_values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    return {name: field(form, name, 2000) for name in names}


def _api_errors(
    exc: ApiError, _: Callable[..., str], names: tuple[str, ...]
) -> tuple[dict[str, str], str | None]:
    errors, alert = explain(exc, _, {name: name for name in names})
    return errors, (stripe_alert(exc, _) or alert)


@router.post(PLANS)
async def create_plan(request: Request, web: WebDep, form: Form, viewer: Admin) -> Response:
    """The form's post checks it and asks to confirm; the confirmation's post creates the plan."""
    _ = web.renderer.gettext_for(request)
    values = _form_values(form, PLAN_FIELDS)
    body, errors = plan_body(values, _, creating=True)
    if errors:
        return _plan_form(request, web, viewer, values, errors=errors, status_code=422)
    if field(form, "confirmed", 10) != "yes":
        locale = getattr(request.state, "locale", "en")
        question = _(
            "Create the plan %(name)s (%(code)s) at %(price)s? Its product and price are made in Stripe, "
            "and it is offered at once.",
            name=body["name"],
            code=body["code"],
            price=price_of(body, locale, _),
        )
        return confirm_action(request, web, viewer, PLANS, PLANS + "/new", question, hidden=values)
    try:
        await admin_call(request, web, viewer, "POST", "/billing/plans", json=body)
    except ApiError as exc:
        if exc.slug == "plan-code-taken":
            errors, alert = {"code": _("A plan already has this code.")}, None
        elif exc.status == 422 or stripe_alert(exc, _):
            errors, alert = _api_errors(exc, _, PLAN_FIELDS)
        else:
            raise
        return _plan_form(request, web, viewer, values, errors=errors, status_code=exc.status, alert=alert)
    return RedirectResponse(f"{PLANS}?done=created", status.HTTP_303_SEE_OTHER)


async def _plan(request: Request, web: Web, viewer: Viewer, plan_id: uuid.UUID) -> dict[str, Any]:
    try:
        plan: dict[str, Any] = await admin_call(request, web, viewer, "GET", f"/billing/plans/{plan_id}")
    except ApiError as exc:
        if exc.status == status.HTTP_404_NOT_FOUND:
            raise _not_found() from exc
        raise
    _ = web.renderer.gettext_for(request)
    return {**plan, "price": price_of(plan, getattr(request.state, "locale", "en"), _)}


@router.get(PLANS + "/{plan_id}")
async def edit_plan(plan_id: uuid.UUID, request: Request, web: WebDep, viewer: Admin) -> Response:
    plan = await _plan(request, web, viewer, plan_id)
    return _plan_form(request, web, viewer, _plan_values(plan), plan=plan)


@router.post(PLANS + "/{plan_id}")
async def update_plan(
    plan_id: uuid.UUID, request: Request, web: WebDep, form: Form, viewer: Admin
) -> Response:
    """The form's post checks it and asks to confirm (naming a price change); the confirmation's
    post changes the plan."""
    _ = web.renderer.gettext_for(request)
    plan = await _plan(request, web, viewer, plan_id)
    values = {**_form_values(form, PLAN_FIELDS), "code": plan["code"]}
    body, errors = plan_body(values, _, creating=False)
    if errors:
        return _plan_form(request, web, viewer, values, plan=plan, errors=errors, status_code=422)
    changed = {name: value for name, value in body.items() if plan.get(name) != value}
    if not changed:
        return RedirectResponse(f"{PLANS}?done=unchanged", status.HTTP_303_SEE_OTHER)
    if field(form, "confirmed", 10) != "yes":
        locale = getattr(request.state, "locale", "en")
        if {"amount", "currency", "interval", "interval_count"} & changed.keys():
            question = _(
                "Change the plan %(name)s to %(price)s? A new price is made in Stripe for new "
                "subscriptions; subscribers keep the price they have.",
                name=plan["name"],
                price=price_of(body, locale, _),
            )
        else:
            question = _("Save the changes to the plan %(name)s?", name=plan["name"])
        return confirm_action(
            request, web, viewer, f"{PLANS}/{plan_id}", f"{PLANS}/{plan_id}", question, hidden=values
        )
    try:
        await admin_call(request, web, viewer, "PATCH", f"/billing/plans/{plan_id}", json=changed)
    except ApiError as exc:
        if exc.status != 422 and not stripe_alert(exc, _):
            raise
        errors, alert = _api_errors(exc, _, PLAN_FIELDS)
        return _plan_form(
            request, web, viewer, values, plan=plan, errors=errors, status_code=exc.status, alert=alert
        )
    return RedirectResponse(f"{PLANS}?done=updated", status.HTTP_303_SEE_OTHER)


@router.post(PLANS + "/{plan_id}/retire")
async def retire_plan(
    plan_id: uuid.UUID, request: Request, web: WebDep, form: Form, viewer: Admin
) -> Response:
    """Retire (DELETE, a soft delete) an offered plan or offer a retired one again (PATCH active)."""
    _ = web.renderer.gettext_for(request)
    plan = await _plan(request, web, viewer, plan_id)
    retiring = bool(plan["active"])
    if field(form, "confirmed", 10) != "yes":
        if retiring:
            question = _(
                "Retire the plan %(name)s (%(code)s)? Nobody new can subscribe to it; subscriptions on "
                "it run on.",
                name=plan["name"],
                code=plan["code"],
            )
        else:
            question = _("Offer the plan %(name)s (%(code)s) again?", name=plan["name"], code=plan["code"])
        return confirm_action(
            request, web, viewer, f"{PLANS}/{plan_id}/retire", f"{PLANS}/{plan_id}", question, danger=retiring
        )
    try:
        if retiring:
            await admin_call(request, web, viewer, "DELETE", f"/billing/plans/{plan_id}")
        else:
            await admin_call(
                request, web, viewer, "PATCH", f"/billing/plans/{plan_id}", json={"active": True}
            )
    except ApiError as exc:
        alert = stripe_alert(exc, _)
        if alert is None:
            raise
        return _plan_form(
            request, web, viewer, _plan_values(plan), plan=plan, status_code=exc.status, alert=alert
        )
    return RedirectResponse(f"{PLANS}?done={'retired' if retiring else 'offered'}", status.HTTP_303_SEE_OTHER)


# ---- coupons and promotion codes ----


def describe_coupon(coupon: dict[str, Any], locale: str, _: Callable[..., str]) -> str:
    """`20 % off for 3 months`, `€5.00 off once`."""
    if coupon.get("percent_off") is not None:
        off = _("%(percent)s%% off", percent=f"{float(coupon['percent_off']):g}")
    else:
        off = _("%(amount)s off", amount=money(int(coupon["amount_off"]), str(coupon["currency"]), locale))
    if coupon["duration"] == "once":
        return _("%(off)s, once", off=off)
    if coupon["duration"] == "forever":
        return _("%(off)s, forever", off=off)
    return _("%(off)s, for %(months)s months", off=off, months=coupon.get("duration_in_months"))


async def _coupons_page(
    request: Request,
    web: Web,
    viewer: Viewer,
    cursor: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = status.HTTP_200_OK,
    **context: Any,
) -> Response:
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    zone = profile_zone(viewer.user)
    params = {"limit": str(PAGE_SIZE), "include_deleted": "true", **({"cursor": cursor} if cursor else {})}
    try:
        page = await admin_call(request, web, viewer, "GET", "/billing/coupons", params=params)
    except ApiError as exc:
        if exc.status in (status.HTTP_400_BAD_REQUEST, 422):  # a cursor we never gave
            return RedirectResponse(COUPONS, status.HTTP_303_SEE_OTHER)
        raise
    codes = await asyncio.gather(
        *(
            admin_call(
                request,
                web,
                viewer,
                "GET",
                f"/billing/coupons/{c['id']}/promotion-codes",
                params={"limit": "100"},
            )
            for c in page["items"]
        )
    )
    coupons = [
        {
            **coupon,
            "offer": describe_coupon(coupon, locale, _),
            "created": moment(coupon["created_at"], locale, zone),
            "redeem_until": moment(coupon["redeem_by"], locale, zone) if coupon.get("redeem_by") else None,
            "codes": [
                {
                    **code,
                    "until": moment(code["expires_at"], locale, zone) if code.get("expires_at") else None,
                }
                for code in found["items"]
            ],
        }
        for coupon, found in zip(page["items"], codes, strict=True)
    ]
    return web.renderer.page(
        request,
        "admin_coupons.html",
        status_code,
        user=viewer.user,
        coupons=coupons,
        next_cursor=page["next_cursor"],
        values=values or {"duration": "once", "currency": "usd"},
        errors=errors or {},
        **_choices(_),
        **context,
    )


@router.get(COUPONS)
async def coupons_page(
    request: Request,
    web: WebDep,
    viewer: Admin,
    cursor: Annotated[str, Query(max_length=200)] = "",
    done: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    _ = web.renderer.gettext_for(request)
    notices = {
        "coupon-created": _("The coupon is created. Add a promotion code so customers can use it."),
        "coupon-deleted": _("The coupon is deleted and its codes deactivated. Discounts given run on."),
        "code-created": _("The promotion code is created: customers can type it now."),
        "code-deactivated": _(
            "The promotion code is deactivated. Subscriptions that used it keep their discount."
        ),
    }
    return await _coupons_page(request, web, viewer, cursor, notice=notices.get(done))


def coupon_body(values: dict[str, str], _: Callable[..., str]) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    body: dict[str, Any] = {"name": values["name"], "duration": values["duration"]}
    if not values["name"] or len(values["name"]) > 40:
        errors["name"] = _("Give the coupon a name of up to 40 characters.")
    percent, amount = values["percent_off"], values["amount_off"]
    if bool(percent) == bool(amount):
        errors["percent_off"] = _("Give either a percentage off or an amount off, not both.")
    elif percent:
        try:
            value = float(percent.replace(",", ".").rstrip("%").strip())
        except ValueError:
            value = -1.0
        if not 0 < value <= 100:
            errors["percent_off"] = _("A percentage above 0 and up to 100.")
        body["percent_off"] = value
    else:
        currency = values["currency"].lower()
        if not CURRENCY.fullmatch(currency):
            errors["currency"] = _("Use a three-letter currency code, such as usd or eur.")
        minor = minor_units(amount, currency) if "currency" not in errors else None
        if not minor or minor > 99_999_999:
            errors["amount_off"] = _("Give the amount off in the currency, such as 5.00.")
        body["amount_off"], body["currency"] = minor, currency
    if values["duration"] not in DURATIONS:
        errors["duration"] = _("Choose how long the discount lasts.")
    elif values["duration"] == "repeating":
        months = _whole(values["duration_in_months"], 1, 36)
        if months is None:
            errors["duration_in_months"] = _("For some months: a whole number from 1 to 36.")
        body["duration_in_months"] = months
    if values["max_redemptions"]:
        most = _whole(values["max_redemptions"], 1, 1_000_000)
        if most is None:
            errors["max_redemptions"] = _("A whole number from 1 to 1,000,000, or empty for no limit.")
        body["max_redemptions"] = most
    codes = _list(values["applies_to"])
    if any(not PLAN_CODE.fullmatch(code) for code in codes):
        errors["applies_to"] = _("Plan codes separated by commas, such as pro, business.")
    body["applies_to"] = codes
    return body, errors


@router.post(COUPONS)
async def create_coupon(request: Request, web: WebDep, form: Form, viewer: Admin) -> Response:
    _ = web.renderer.gettext_for(request)
    values = _form_values(form, COUPON_FIELDS)
    body, errors = coupon_body(values, _)
    if errors:
        return await _coupons_page(request, web, viewer, values=values, errors=errors, status_code=422)
    if field(form, "confirmed", 10) != "yes":
        locale = getattr(request.state, "locale", "en")
        question = _(
            "Create the coupon %(name)s: %(offer)s?",
            name=body["name"],
            offer=describe_coupon(body, locale, _),
        )
        return confirm_action(request, web, viewer, COUPONS, COUPONS, question, hidden=values)
    try:
        await admin_call(request, web, viewer, "POST", "/billing/coupons", json=body)
    except ApiError as exc:
        if exc.slug == "unknown-coupon-plan":
            errors, alert = {"applies_to": _("No plan has one of these codes.")}, None
        elif exc.status == 422 or stripe_alert(exc, _):
            errors, alert = _api_errors(exc, _, COUPON_FIELDS)
        else:
            raise
        return await _coupons_page(
            request, web, viewer, values=values, errors=errors, status_code=exc.status, alert=alert
        )
    return RedirectResponse(f"{COUPONS}?done=coupon-created", status.HTTP_303_SEE_OTHER)


async def _coupon(request: Request, web: Web, viewer: Viewer, coupon_id: uuid.UUID) -> dict[str, Any]:
    """The coupon, from the list (billing has no GET of one coupon)."""
    cursor = ""
    for _page in range(20):
        params = {"limit": "100", "include_deleted": "true", **({"cursor": cursor} if cursor else {})}
        page = await admin_call(request, web, viewer, "GET", "/billing/coupons", params=params)
        for coupon in page["items"]:
            if coupon["id"] == str(coupon_id):
                return dict(coupon)
        cursor = page["next_cursor"] or ""
        if not cursor:
            break
    raise _not_found()


@router.post(COUPONS + "/{coupon_id}/delete")
async def delete_coupon(
    coupon_id: uuid.UUID, request: Request, web: WebDep, form: Form, viewer: Admin
) -> Response:
    _ = web.renderer.gettext_for(request)
    coupon = await _coupon(request, web, viewer, coupon_id)
    if field(form, "confirmed", 10) != "yes":
        question = _(
            "Delete the coupon %(name)s? Nobody can redeem it any more and its promotion codes are "
            "deactivated; discounts already given run on.",
            name=coupon["name"],
        )
        url = f"{COUPONS}/{coupon_id}/delete"
        return confirm_action(request, web, viewer, url, COUPONS, question, danger=True)
    try:
        await admin_call(request, web, viewer, "DELETE", f"/billing/coupons/{coupon_id}")
    except ApiError as exc:
        alert = stripe_alert(exc, _)
        if alert is None:
            raise
        return await _coupons_page(request, web, viewer, status_code=exc.status, alert=alert)
    return RedirectResponse(f"{COUPONS}?done=coupon-deleted", status.HTTP_303_SEE_OTHER)


@router.post(COUPONS + "/{coupon_id}/promotion-codes")
async def create_promotion_code(
    coupon_id: uuid.UUID, request: Request, web: WebDep, form: Form, viewer: Admin
) -> Response:
    _ = web.renderer.gettext_for(request)
    coupon = await _coupon(request, web, viewer, coupon_id)
    code = field(form, "code", 100)
    most = field(form, "max_redemptions", 20)
    first_time_only = field(form, "first_time_only", 10) == "yes"
    body: dict[str, Any] = {"code": code, "first_time_only": first_time_only}
    alert = None
    if not PROMOTION_CODE.fullmatch(code):
        alert = _("A promotion code is 3 to 64 letters and digits, such as SPRING25.")
    elif most:
        body["max_redemptions"] = _whole(most, 1, 1_000_000)
        if body["max_redemptions"] is None:
            alert = _("The number of uses is a whole number from 1 to 1,000,000, or empty for no limit.")
    if alert is None and coupon.get("deleted_at"):
        alert = _("This coupon is deleted: it takes no new codes.")
    if alert is not None:
        return await _coupons_page(request, web, viewer, status_code=422, alert=alert)
    if field(form, "confirmed", 10) != "yes":
        question = _(
            "Add the promotion code %(code)s to the coupon %(name)s?", code=code, name=coupon["name"]
        )
        hidden = {
            "code": code,
            "max_redemptions": most,
            **({"first_time_only": "yes"} if first_time_only else {}),
        }
        return confirm_action(
            request, web, viewer, f"{COUPONS}/{coupon_id}/promotion-codes", COUPONS, question, hidden=hidden
        )
    try:
        await admin_call(
            request, web, viewer, "POST", f"/billing/coupons/{coupon_id}/promotion-codes", json=body
        )
    except ApiError as exc:
        alerts = {
            "promotion-code-taken": _(
                "An active promotion code is already %(code)s (in any case).", code=code
            ),
            "coupon-deleted": _("This coupon is deleted: it takes no new codes."),
        }
        alert = alerts.get(exc.slug) or stripe_alert(exc, _)
        if alert is None:
            raise
        return await _coupons_page(request, web, viewer, status_code=exc.status, alert=alert)
    return RedirectResponse(f"{COUPONS}?done=code-created", status.HTTP_303_SEE_OTHER)


@router.post(COUPONS + "/{coupon_id}/promotion-codes/{code_id}/deactivate")
async def deactivate_promotion_code(
    coupon_id: uuid.UUID, code_id: uuid.UUID, request: Request, web: WebDep, form: Form, viewer: Admin
) -> Response:
    _ = web.renderer.gettext_for(request)
    try:
        found = await admin_call(
            request,
            web,
            viewer,
            "GET",
            f"/billing/coupons/{coupon_id}/promotion-codes",
            params={"limit": "100"},
        )
    except ApiError as exc:
        if exc.status == status.HTTP_404_NOT_FOUND:
            raise _not_found() from exc
        raise
    code = next((c for c in found["items"] if c["id"] == str(code_id)), None)
    if code is None:
        raise _not_found()
    url = f"{COUPONS}/{coupon_id}/promotion-codes/{code_id}/deactivate"
    if field(form, "confirmed", 10) != "yes":
        question = _(
            "Deactivate the promotion code %(code)s? Nobody can type it any more; subscriptions that "
            "used it keep their discount.",
            code=code["code"],
        )
        return confirm_action(request, web, viewer, url, COUPONS, question, danger=True)
    try:
        await admin_call(request, web, viewer, "POST", f"/billing{url.removeprefix('/admin/billing')}")
    except ApiError as exc:
        alert = stripe_alert(exc, _)
        if alert is None:
            raise
        return await _coupons_page(request, web, viewer, status_code=exc.status, alert=alert)
    return RedirectResponse(f"{COUPONS}?done=code-deactivated", status.HTTP_303_SEE_OTHER)
