"""Rendering emails: the Jinja environment (HTML autoescaped, StrictUndefined) and the renderer.

Each template is a folder under `templates/` with `subject.txt`, `body.html` and `body.txt`;
the bodies extend `layouts/base.html` and `layouts/base.txt`. The catalogue of templates is
`email/catalogue.py`'s `TEMPLATES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notification_service.email.catalogue import TEMPLATES, Notice
from notification_service.email.formatting import format_date, format_datetime, format_money
from notification_service.email.links import Links
from notification_service.settings import Settings


@dataclass(frozen=True)
class RenderedEmail:
    template: str
    recipient: str
    subject: str
    text: str = field(repr=False)
    html: str = field(repr=False)
    unsubscribe_url: str | None = field(default=None, repr=False)


class Renderer:
    def __init__(self, settings: Settings, links: Links) -> None:
        self._links = links
        self.env = Environment(
            loader=PackageLoader("notification_service", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        home = settings.home_currency
        self.env.filters["money"] = lambda amount, currency: format_money(
            amount, currency, home_currency=home
        )
        self.env.filters["date"] = format_date
        self.env.filters["datetime"] = format_datetime
        self.env.globals.update(
            product_name=settings.product_name,
            support_email=settings.support_email,
            app_url=links.app,
            account_url=links.account,
            billing_url=links.billing,
        )

    def render(self, notice: Notice) -> RenderedEmail:
        spec = TEMPLATES[notice.template]
        category = spec.unsubscribe_category
        unsubscribe_url = self._links.unsubscribe(notice.recipient, category) if category else None
        context = {**notice.context, "recipient": notice.recipient, "unsubscribe_url": unsubscribe_url}
        subject = self.env.get_template(f"{spec.name}/subject.txt").render(context)
        return RenderedEmail(
            template=spec.name,
            recipient=notice.recipient,
            subject=" ".join(subject.split())[:998],
            text=self.env.get_template(f"{spec.name}/body.txt").render(context),
            html=self.env.get_template(f"{spec.name}/body.html").render(context),
            unsubscribe_url=unsubscribe_url,
        )
