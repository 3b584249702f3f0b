"""/v1 routes for customers, payment methods, products, prices, coupons, promotion codes, events and
webhook endpoints."""

from __future__ import annotations

import re

from gatehouse_emulators.stripe.domain import catalog, customers, discounts
from gatehouse_emulators.stripe.domain.billing import delete_customer
from gatehouse_emulators.stripe.domain.render import render_list
from gatehouse_emulators.stripe.domain.store import Obj, list_params, match_created, new_id, random_token
from gatehouse_emulators.stripe.http.edge import Call, Routes
from gatehouse_emulators.stripe.wire.errors import invalid, resource_missing
from gatehouse_emulators.stripe.wire.forms import read_metadata_update

routes = Routes()


# -- customers -------------------------------------------------------------------------------------


@routes.post("/v1/customers")
def create_customer(call: Call) -> Obj:
    return call.render(customers.create_customer(call.emu, call.params))


@routes.get("/v1/customers")
def list_customers(call: Call) -> Obj:
    list_params(call.params, "email", "created", "test_clock")
    email = call.params.text("email")
    created = call.params.timestamp_filter("created")
    items = call.emu.store.all(
        "customer", lambda c: customers.matches(c, email) and match_created(c, created)
    )
    return call.page(items, "/v1/customers", "customer")


@routes.get("/v1/customers/search")
def search_customers(call: Call) -> Obj:
    call.params.allow("query", "limit", "page", "expand")
    found = customers.search(call.emu, call.params.req_text("query"))
    limit = call.params.integer("limit") or 10
    offset = int(call.params.text("page") or 0)
    page = found[offset : offset + limit]
    more = len(found) > offset + limit
    listing = render_list(call.emu.store, page, more, "/v1/customers/search", call.expand)
    listing.update(object="search_result", next_page=str(offset + limit) if more else None, total_count=None)
    return listing


@routes.get("/v1/customers/{customer}")
def retrieve_customer(call: Call) -> Obj:
    call.params.allow("expand")
    customer = call.emu.store.get(call.path["customer"], "customer")  # a deleted one answers its stub
    if customer is None:
        raise resource_missing("customer", call.path["customer"])
    return call.render(customer)


@routes.post("/v1/customers/{customer}")
def update_customer(call: Call) -> Obj:
    return call.render(customers.update_customer(call.emu, call.require("customer", "customer"), call.params))


@routes.delete("/v1/customers/{customer}")
def remove_customer(call: Call) -> Obj:
    return delete_customer(call.emu, call.require("customer", "customer"))


# -- payment methods (the cards Checkout collected) ------------------------------------------------


routes.retrieve("/v1/payment_methods/{payment_method}", "payment_method", "PaymentMethod")


@routes.get("/v1/customers/{customer}/payment_methods")
def list_customer_payment_methods(call: Call) -> Obj:
    list_params(call.params, "type", "allow_redisplay")
    customer_id = call.require("customer", "customer")["id"]
    items = call.emu.store.all("payment_method", lambda p: p["customer"] == customer_id)
    return call.page(items, f"/v1/customers/{customer_id}/payment_methods", "payment_method")


# -- products --------------------------------------------------------------------------------------


@routes.post("/v1/products")
def create_product(call: Call) -> Obj:
    return call.render(catalog.create_product(call.emu, call.params))


@routes.get("/v1/products")
def list_products(call: Call) -> Obj:
    list_params(call.params, "active", "created", "ids", "shippable", "url")
    active = call.params.flag("active")
    ids = call.params.strings("ids")
    created = call.params.timestamp_filter("created")
    items = call.emu.store.all(
        "product",
        lambda p: (
            (active is None or p["active"] == active)
            and (not ids or p["id"] in ids)
            and match_created(p, created)
        ),
    )
    return call.page(items, "/v1/products", "product")


routes.retrieve("/v1/products/{product}", "product")


@routes.post("/v1/products/{product}")
def update_product(call: Call) -> Obj:
    return call.render(catalog.update_product(call.emu, call.require("product", "product"), call.params))


@routes.delete("/v1/products/{product}")
def delete_product(call: Call) -> Obj:
    return catalog.delete_product(call.emu, call.require("product", "product"))


# -- prices ----------------------------------------------------------------------------------------


@routes.post("/v1/prices")
def create_price(call: Call) -> Obj:
    return call.render(catalog.create_price(call.emu, call.params))


@routes.get("/v1/prices")
def list_prices(call: Call) -> Obj:
    list_params(call.params, "active", "created", "currency", "lookup_keys", "product", "recurring", "type")
    created = call.params.timestamp_filter("created")
    items = [p for p in catalog.price_filter(call.emu, call.params) if match_created(p, created)]
    return call.page(items, "/v1/prices", "price")


routes.retrieve("/v1/prices/{price}", "price")


@routes.post("/v1/prices/{price}")
def update_price(call: Call) -> Obj:
    return call.render(catalog.update_price(call.emu, call.require("price", "price"), call.params))


# -- coupons and promotion codes -------------------------------------------------------------------


def _coupon(call: Call) -> Obj:
    coupon = call.require("coupon", "coupon")
    if coupon.get("_deleted"):
        raise resource_missing("coupon", coupon["id"])
    return coupon


@routes.post("/v1/coupons")
def create_coupon(call: Call) -> Obj:
    return call.render(discounts.create_coupon(call.emu, call.params))


@routes.get("/v1/coupons")
def list_coupons(call: Call) -> Obj:
    list_params(call.params, "created")
    created = call.params.timestamp_filter("created")
    items = call.emu.store.all("coupon", lambda c: not c.get("_deleted") and match_created(c, created))
    return call.page(items, "/v1/coupons", "coupon")


@routes.get("/v1/coupons/{coupon}")
def retrieve_coupon(call: Call) -> Obj:
    call.params.allow("expand")
    coupon = _coupon(call)
    discounts.refresh_validity(call.emu, coupon)
    return call.render(coupon)


@routes.post("/v1/coupons/{coupon}")
def update_coupon(call: Call) -> Obj:
    return call.render(discounts.update_coupon(call.emu, _coupon(call), call.params))


@routes.delete("/v1/coupons/{coupon}")
def delete_coupon(call: Call) -> Obj:
    return discounts.delete_coupon(call.emu, _coupon(call))


@routes.post("/v1/promotion_codes")
def create_promotion_code(call: Call) -> Obj:
    return call.render(discounts.create_promotion_code(call.emu, call.params))


@routes.get("/v1/promotion_codes")
def list_promotion_codes(call: Call) -> Obj:
    list_params(call.params, "active", "code", "coupon", "created", "customer", "customer_account")
    created = call.params.timestamp_filter("created")
    items = [p for p in discounts.promotion_code_filter(call.emu, call.params) if match_created(p, created)]
    return call.page(items, "/v1/promotion_codes", "promotion code")


routes.retrieve("/v1/promotion_codes/{promotion_code}", "promotion_code", "promotion code")


@routes.post("/v1/promotion_codes/{promotion_code}")
def update_promotion_code(call: Call) -> Obj:
    promo = call.require("promotion_code", "promotion_code", "promotion code")
    return call.render(discounts.update_promotion_code(call.emu, promo, call.params))


# -- events ----------------------------------------------------------------------------------------


def _visible(call: Call, event: Obj) -> bool:
    return event["created"] >= call.emu.now() - call.emu.config.events_retention


@routes.get("/v1/events")
def list_events(call: Call) -> Obj:
    list_params(call.params, "created", "delivery_success", "type", "types")
    wanted = call.params.strings("types")
    single = call.params.text("type")
    if single and wanted:
        raise invalid("You may only specify one of these parameters: type, types.")
    patterns = [
        re.compile("^" + re.escape(t).replace(r"\*", "[^.]*") + "$") for t in ([single] if single else wanted)
    ]
    created = call.params.timestamp_filter("created")
    items = call.emu.store.all(
        "event",
        lambda e: (
            _visible(call, e)
            and match_created(e, created)
            and (not patterns or any(p.match(e["type"]) for p in patterns))
        ),
    )
    return call.page(items, "/v1/events", "event")


@routes.get("/v1/events/{event}")
def retrieve_event(call: Call) -> Obj:
    call.params.allow("expand")
    event = call.require("event", "event")
    if not _visible(call, event):
        raise resource_missing("event", event["id"])
    return call.render(event)


# -- webhook endpoints -----------------------------------------------------------------------------

_EVENT_TYPE = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)+)$")


def _enabled_events(call: Call) -> list[str]:
    events = call.params.strings("enabled_events")
    for index, name in enumerate(events):
        if not _EVENT_TYPE.match(name):
            raise invalid(f"Invalid event type: {name}", param=f"enabled_events[{index}]")
    return events


@routes.post("/v1/webhook_endpoints")
def create_webhook_endpoint(call: Call) -> Obj:
    call.params.allow("url", "enabled_events", "description", "metadata", "api_version", "connect", "expand")
    url = call.params.req_text("url")
    call.params.require("enabled_events")
    endpoint: Obj = {
        "id": new_id("we_"),
        "object": "webhook_endpoint",
        "api_version": call.params.text("api_version"),
        "application": None,
        "created": call.emu.now(),
        "description": call.params.text("description"),
        "enabled_events": _enabled_events(call),
        "livemode": False,
        "metadata": read_metadata_update(call.params, {}),
        "status": "enabled",
        "url": url,
        "_secret": "whsec_" + random_token(32),
    }
    call.emu.store.add(endpoint)
    return {**call.render(endpoint), "secret": endpoint["_secret"]}


@routes.get("/v1/webhook_endpoints")
def list_webhook_endpoints(call: Call) -> Obj:
    list_params(call.params)
    return call.page(call.emu.store.all("webhook_endpoint"), "/v1/webhook_endpoints", "webhook endpoint")


def _webhook_endpoint(call: Call) -> Obj:
    return call.require("endpoint", "webhook_endpoint", "webhook endpoint")


routes.retrieve("/v1/webhook_endpoints/{endpoint}", "webhook_endpoint", "webhook endpoint")


@routes.post("/v1/webhook_endpoints/{endpoint}")
def update_webhook_endpoint(call: Call) -> Obj:
    call.params.allow("url", "enabled_events", "description", "metadata", "disabled", "expand")
    endpoint = _webhook_endpoint(call)
    if "url" in call.params:
        endpoint["url"] = call.params.req_text("url")
    if "enabled_events" in call.params:
        endpoint["enabled_events"] = _enabled_events(call)
    if "description" in call.params:
        endpoint["description"] = call.params.text("description")
    disabled = call.params.flag("disabled")
    if disabled is not None:
        endpoint["status"] = "disabled" if disabled else "enabled"
    endpoint["metadata"] = read_metadata_update(call.params, endpoint["metadata"])
    return call.render(endpoint)


@routes.delete("/v1/webhook_endpoints/{endpoint}")
def delete_webhook_endpoint(call: Call) -> Obj:
    endpoint = _webhook_endpoint(call)
    call.emu.store.remove(endpoint["id"])
    return {"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True}
