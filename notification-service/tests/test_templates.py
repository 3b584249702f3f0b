"""Every template renders for its sample data, HTML escaped and text plain, with StrictUndefined;
previews show them outside production."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from jinja2 import UndefinedError

from conftest import make_settings
from notification_service.email.catalogue import TEMPLATES, Notice
from notification_service.email.formatting import format_date, format_datetime, format_money
from notification_service.email.links import Links
from notification_service.email.render import Renderer
from notification_service.events.handlers import HANDLERS
from notification_service.main import create_app
from notification_service.previews.samples import SAMPLE_EVENTS
from notification_service.previews.service import render_sample
from notification_service.settings import Settings


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_renders_its_sample_in_html_and_text(
    renderer_and_links: tuple[Renderer, Links], name: str
) -> None:
    renderer, links = renderer_and_links
    email = render_sample(renderer, links, name)
    assert email.subject and "\n" not in email.subject and "{" not in email.subject
    assert email.html.lstrip().startswith("<!DOCTYPE html>")
    assert email.html.rstrip().endswith("</html>")
    for body in (email.text, email.html):
        assert "Gatehouse" in body
        assert "None" not in body
        assert "{{" not in body and "{%" not in body
    assert "<" not in email.text.replace("<https", "")  # plain text, no markup


def test_templates_fail_loudly_on_a_missing_variable(renderer_and_links: tuple[Renderer, Links]) -> None:
    renderer, _ = renderer_and_links
    with pytest.raises(UndefinedError):
        renderer.render(Notice("login_code", "ada@example.com", {"code": "123456"}))  # no expires_at


def test_html_escapes_what_events_carry_and_text_does_not(renderer_and_links: tuple[Renderer, Links]) -> None:
    renderer, links = renderer_and_links
    data = SAMPLE_EVENTS["user.email_verification_requested"]
    hostile = type(data).model_validate({**data.model_dump(), "username": '<script>alert("x")</script>'})
    [notice] = HANDLERS[data.event_type](hostile, links)
    email = renderer.render(notice)
    assert "<script>" not in email.html
    assert "&lt;script&gt;" in email.html
    assert '<script>alert("x")</script>' in email.text


def test_every_template_has_its_files_and_every_handler_output_is_a_template(
    renderer_and_links: tuple[Renderer, Links],
) -> None:
    renderer, links = renderer_and_links
    for name in TEMPLATES:
        for part in ("subject.txt", "body.html", "body.txt"):
            renderer.env.get_template(f"{name}/{part}")
    produced = {n.template for t, build in HANDLERS.items() for n in build(SAMPLE_EVENTS[t], links)}
    assert produced == set(TEMPLATES)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1200, "usd", "$12.00"),
        (999, "eur", "€9.99 EUR"),
        (1200, "cad", "$12.00 CAD"),
        (123456789, "gbp", "£1,234,567.89 GBP"),
        (1200, "jpy", "¥1,200 JPY"),
        (1250, "chf", "12.50 CHF"),
        (5, "usd", "$0.05"),
        (0, "usd", "$0.00"),
        (1234, "kwd", "1.234 KWD"),
    ],
)
def test_money_is_formatted_from_minor_units(amount: int, currency: str, expected: str) -> None:
    assert format_money(amount, currency, home_currency="usd") == expected


def test_dates_are_shown_in_utc() -> None:
    moment = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert format_date(moment) == "1 March 2026"
    assert format_datetime(moment) == "1 March 2026, 23:30 UTC"


def test_links_come_from_configuration_only() -> None:
    settings = Settings(
        app_url="https://app.example.com/",
        verify_url_template="{app_url}/v/{token}",
        reset_url_template="https://reset.example.com/?t={token}",
    )
    links = Links(settings)
    assert links.verify("a b/{app_url}") == "https://app.example.com/v/a%20b%2F%7Bapp_url%7D"
    assert links.reset_password("x") == "https://reset.example.com/?t=x"
    assert links.billing == "https://app.example.com/billing"


@pytest.mark.parametrize("name", ["payment_failed", "subscription_past_due", "payment_recovered"])
def test_dunning_emails_link_to_where_the_card_is_updated(
    renderer_and_links: tuple[Renderer, Links], name: str
) -> None:
    renderer, links = renderer_and_links
    email = render_sample(renderer, links, name)
    for body in (email.text, email.html):
        assert "https://app.example.com/billing" in body


async def test_previews_list_and_render_templates(client: httpx.AsyncClient) -> None:
    listed = await client.get("/notifications/templates")
    assert listed.status_code == 200
    templates = {t["name"]: t for t in listed.json()}
    assert set(templates) == set(TEMPLATES)
    assert templates["login_code"]["carries_secret"] is True
    assert templates["payment_succeeded"]["unsubscribable"] is True
    assert templates["password_changed"]["unsubscribable"] is False

    html = await client.get("/notifications/templates/payment_failed/preview")
    assert html.status_code == 200
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert "What to do" in html.text
    text = await client.get("/notifications/templates/payment_failed/preview", params={"format": "text"})
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert "<" not in text.text
    missing = await client.get("/notifications/templates/nope/preview")
    assert missing.status_code == 404


async def test_previews_are_not_served_in_production(database_url: str, amqp_url: str, jwks_url: str) -> None:
    settings = make_settings(
        database_url,
        amqp_url,
        jwks_url,
        1025,
        environment="production",
        unsubscribe_secret="a-production-secret-of-some-length",
    )
    app = create_app(settings, run_consumer=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n.test") as client:
        assert (await client.get("/notifications/templates")).status_code == 404
        assert (await client.get("/notifications/templates/login_code/preview")).status_code == 404
    await app.state.services.engine.dispose()
    await app.state.services.verifier.aclose()
