"""Pages from Jinja2 templates: the built-in ones, overridable one by one from WEB_TEMPLATE_DIR,
rendered in the person's language with the branding from settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape
from markupsafe import escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from gatehouse_web.i18n import choose_locale, translations
from gatehouse_web.session import Sessions
from gatehouse_web.settings import Settings

STATIC_VERSION = "2"  # bump with the CSS/JS so browsers fetch them again (they are cached a day)


def _translator(locale: str) -> tuple[Callable[..., str], Callable[..., str]]:
    catalogue = translations(locale)

    def gettext(message: str, **variables: Any) -> str:
        text = catalogue.gettext(message)
        return text % variables if variables else text

    def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
        return catalogue.ngettext(singular, plural, n) % {"num": n, **variables}

    return gettext, ngettext


class Renderer:
    def __init__(self, settings: Settings, sessions: Sessions) -> None:
        loaders: list[Any] = []
        if settings.template_dir is not None:
            loaders.append(FileSystemLoader(settings.template_dir))
        loaders.append(PackageLoader("gatehouse_web", "templates"))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(default=True),
            auto_reload=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            product_name=settings.product_name,
            logo_url=settings.logo_url,
            support_email=settings.support_email,
            static_version=STATIC_VERSION,
            oauth_providers=settings.oauth_providers,
        )
        self.env.filters["field_id"] = lambda name: escape(f"f-{name}")
        self._settings = settings
        self._sessions = sessions

    def locale_for(self, request: Request, profile_locale: str | None = None) -> str:
        return choose_locale(
            profile_locale, request.headers.get("accept-language"), self._settings.default_locale
        )

    def gettext_for(self, request: Request) -> Callable[..., str]:
        locale = getattr(request.state, "locale", None) or self.locale_for(request)
        return _translator(locale)[0]

    def page(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        locale = getattr(request.state, "locale", None) or self.locale_for(request)
        gettext, ngettext = _translator(locale)
        html = self.env.get_template(template).render(
            request=request,
            locale=locale,
            _=gettext,
            ngettext=ngettext,
            csrf_token=self._sessions.csrf_token(request),
            **{"errors": {}, "values": {}, "notice": None, "alert": None, **context},
        )
        response = HTMLResponse(html, status_code=status_code)
        response.headers["Content-Language"] = locale
        self._sessions.keep_csrf(request, response)
        return response


def static_dir() -> Path:
    return Path(__file__).parent / "static"
