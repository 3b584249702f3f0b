"""Template previews: every template rendered with its sample event, as an email would be."""

from __future__ import annotations

from notification_service.email.catalogue import TEMPLATES
from notification_service.email.links import Links
from notification_service.email.render import RenderedEmail, Renderer
from notification_service.errors import TemplateNotFound
from notification_service.events.handlers import HANDLERS
from notification_service.previews.samples import SAMPLE_EVENTS


def render_sample(renderer: Renderer, links: Links, name: str) -> RenderedEmail:
    spec = TEMPLATES.get(name)
    if spec is None:
        raise TemplateNotFound(f"No template {name!r}.")
    notices = HANDLERS[spec.event_type](SAMPLE_EVENTS[spec.event_type], links)
    return renderer.render(next(n for n in notices if n.template == name))
