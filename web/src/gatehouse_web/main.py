"""create_app(): the web front's composition root: settings, the API client, session cookies,
templates, the pages, security headers on everything, and HTML error pages for people (the
platform's problem+json stays for /healthz, /readyz and /metrics)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatehouse_platform.app import Lifespan
from gatehouse_platform.clientip import TrustedProxies
from gatehouse_platform.http import install_platform
from gatehouse_platform.logging import configure_logging
from gatehouse_platform.tracing import configure_tracing
from gatehouse_web.api import Api, ApiError, ApiUnavailable
from gatehouse_web.captcha import BotCheck
from gatehouse_web.pages import (
    account,
    admin,
    admin_catalogue,
    admin_email,
    admin_money,
    admin_system,
    admin_users,
    api_keys,
    billing,
    mfa,
    org_billing,
    orgs,
    passkeys,
    recovery,
    security,
    signin,
)
from gatehouse_web.rendering import Renderer, static_dir
from gatehouse_web.security import SecurityHeaders, content_security_policy
from gatehouse_web.session import REFRESH_PATH, Sessions
from gatehouse_web.settings import Settings, get_settings
from gatehouse_web.web import CsrfRefused, SignInNeeded, Web

log = logging.getLogger(__name__)


def _error_page(request: Request, web: Web, status_code: int) -> Response:
    _ = web.renderer.gettext_for(request)
    headings = {
        403: (_("This form has expired"), _("Go back, reload the page and send the form again.")),
        404: (
            _("Page not found"),
            _("There is nothing at this address. Check it, or start from the home page."),
        ),
        503: (
            _("We cannot reach our service right now"),
            _("This is on our side. Please try again in a minute."),
        ),
    }
    heading, message = headings.get(
        status_code, (_("Something went wrong"), _("This is on our side. Please try again in a minute."))
    )
    return web.renderer.page(
        request,
        "errors/error.html",
        status_code,
        heading=heading,
        message=message,
        request_id=request.headers.get("x-request-id") if status_code >= 500 else None,
    )


def _install_pages_errors(app: FastAPI, web: Web) -> None:
    async def sign_in_needed(request: Request, exc: Exception) -> Response:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        code = status.HTTP_307_TEMPORARY_REDIRECT if request.method == "POST" else status.HTTP_303_SEE_OTHER
        return RedirectResponse(f"{REFRESH_PATH}/refresh?{urlencode({'return_to': here})}", code)

    async def csrf_refused(request: Request, exc: Exception) -> Response:
        return _error_page(request, web, status.HTTP_403_FORBIDDEN)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            return _error_page(request, web, status.HTTP_404_NOT_FOUND)
        return _error_page(request, web, exc.status_code if exc.status_code in (403, 404) else 500)

    async def bad_query(request: Request, exc: Exception) -> Response:
        return _error_page(request, web, status.HTTP_404_NOT_FOUND)

    async def api_down(request: Request, exc: Exception) -> Response:
        log.warning("API unreachable", extra={"error": str(exc)})
        return _error_page(request, web, status.HTTP_503_SERVICE_UNAVAILABLE)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        log.warning("unexpected API answer", extra={"status": exc.status, "type": exc.type})
        return _error_page(request, web, status.HTTP_503_SERVICE_UNAVAILABLE if exc.status >= 500 else 500)

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("page failed")
        return _error_page(request, web, status.HTTP_500_INTERNAL_SERVER_ERROR)

    app.add_exception_handler(SignInNeeded, sign_in_needed)
    app.add_exception_handler(CsrfRefused, csrf_refused)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, bad_query)
    app.add_exception_handler(ApiUnavailable, api_down)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Exception, crash)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging("web", level=settings.log_level, json=settings.log_json)
    configure_tracing("web")
    sessions = Sessions(settings)
    api = Api(settings)
    web = Web(
        settings=settings,
        api=api,
        sessions=sessions,
        renderer=Renderer(settings, sessions),
        proxies=TrustedProxies(settings.trusted_proxies),
        captcha=BotCheck(settings),
    )

    app = FastAPI(
        title="Gatehouse web",
        lifespan=Lifespan(closers=[web.api.aclose]),
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = web

    # No readiness check of its own: it has no database, and its one dependency, the gateway, is
    # what routes people here (asking it would make each wait on the other at start).
    install_platform(app, {})
    _install_pages_errors(app, web)
    theme = f":root{{--primary:{settings.primary_color}}}\n"

    @app.get("/theme.css", include_in_schema=False)
    async def theme_css() -> Response:
        return PlainTextResponse(
            theme, media_type="text/css", headers={"Cache-Control": "public, max-age=86400"}
        )

    app.include_router(mfa.router)  # before signin's /login/{provider}, which would take /login/mfa
    app.include_router(passkeys.router)
    app.include_router(signin.router)
    app.include_router(recovery.router)
    app.include_router(account.router)
    app.include_router(api_keys.router)
    app.include_router(security.router)
    app.include_router(billing.router)
    app.include_router(org_billing.router)
    app.include_router(orgs.router)
    admin.install(app, web)  # /admin: who may open the console, and what the others see
    app.include_router(admin_users.router)
    app.include_router(admin_email.router)
    app.include_router(admin_catalogue.router)
    app.include_router(admin_money.router)
    app.include_router(admin_system.router)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    images = []
    if settings.logo_url and settings.logo_url.startswith("https://"):
        parts = urlsplit(settings.logo_url)
        images.append(f"{parts.scheme}://{parts.netloc}")
    # A form may end at the app a sign-in returns to, or (subscribe) at the payment page.
    csp = content_security_policy(
        [*settings.return_to_origins, *settings.checkout_origins], images, settings.captcha_sources
    )
    app.add_middleware(
        SecurityHeaders,
        csp=csp,
        hsts_max_age=settings.hsts_max_age_seconds if settings.is_production else None,
    )
    return app
