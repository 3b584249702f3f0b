"""Step-up: an API call that answers 401 `…/reauthentication-required` (changing the password,
turning the authenticator app off, new recovery codes; later the email and deactivation) shows
"Confirm it's you" instead, which proves the password, an app code or a passkey at `POST /auth/reauthenticate`
(pages/security.py) and then finishes what the person was doing (`then`) or returns them (`return_to`)."""

from __future__ import annotations

from fastapi import Request, status
from fastapi.responses import Response

from gatehouse_web.api import ApiError
from gatehouse_web.web import Viewer, Web, client_of

REAUTHENTICATION_REQUIRED = "reauthentication-required"
# What the confirmation can finish by itself once it succeeds (a form's action, named)
THEN_RECOVERY_CODES = "recovery-codes"
THEN_TOTP_OFF = "totp-off"
THEN_REMOVE_PASSKEY = "remove-passkey"  # then="remove-passkey:<its id>"
THEN = (THEN_RECOVERY_CODES, THEN_TOTP_OFF, THEN_REMOVE_PASSKEY)
CONFIRMED = "confirmed"  # ?confirmed on the page returned to: confirmed, now do it again


def needs_reauthentication(error: ApiError) -> bool:
    return error.status == 401 and error.slug == REAUTHENTICATION_REQUIRED


def confirmed_notice(request: Request, web: Web) -> str | None:
    """On the page the confirmation returned to: say that the change can be made now."""
    _ = web.renderer.gettext_for(request)
    return _("Thank you. Now you can do it.") if CONFIRMED in request.query_params else None


async def confirm_page(
    request: Request,
    web: Web,
    viewer: Viewer,
    return_to: str,
    then: str = "",
    status_code: int = status.HTTP_200_OK,
    **context: object,
) -> Response:
    """The "confirm it's you" page: the password, or a code when the app is on, or a passkey."""
    mfa = await web.api.call("GET", "/auth/mfa", token=viewer.token, caller=client_of(request))
    return web.renderer.page(
        request,
        "reauthenticate.html",
        status_code,
        user=viewer.user,
        has_app=bool(mfa.get("totp")),
        has_passkey=bool(mfa.get("passkeys")),
        return_to=return_to if return_to.startswith("/") else "/account",
        then=then if then.split(":", 1)[0] in THEN else "",
        **context,
    )
