"""/v1 routes for the Customer Portal: configurations and sessions."""

from __future__ import annotations

from gatehouse_emulators.stripe.domain import portal
from gatehouse_emulators.stripe.domain.portal import CONFIGURATION
from gatehouse_emulators.stripe.domain.store import Obj, list_params
from gatehouse_emulators.stripe.http.edge import Call, Routes

routes = Routes()


@routes.post("/v1/billing_portal/configurations")
def create_configuration(call: Call) -> Obj:
    return call.render(portal.create_configuration(call.emu, call.params))


@routes.get("/v1/billing_portal/configurations")
def list_configurations(call: Call) -> Obj:
    list_params(call.params, "active", "is_default")
    active, is_default = call.params.flag("active"), call.params.flag("is_default")
    items = call.emu.store.all(
        CONFIGURATION,
        lambda c: (
            (active is None or c["active"] == active)
            and (is_default is None or c["is_default"] == is_default)
        ),
    )
    return call.page(items, "/v1/billing_portal/configurations", CONFIGURATION)


routes.retrieve(
    "/v1/billing_portal/configurations/{configuration}", CONFIGURATION, "configuration", param="configuration"
)


@routes.post("/v1/billing_portal/configurations/{configuration}")
def update_configuration(call: Call) -> Obj:
    config = call.require("configuration", CONFIGURATION, "configuration", param="configuration")
    return call.render(portal.update_configuration(call.emu, config, call.params))


@routes.post("/v1/billing_portal/sessions")
def create_session(call: Call) -> Obj:
    return call.render(portal.create_session(call.emu, call.params))
