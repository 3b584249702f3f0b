"""Composing: every template's email, built as bytes, reads back (with the `email` package) as the
headers, text and HTML it was rendered with; what needs more than ASCII headers goes through
EmailMessage, as before. And a pooled connection is NOOP-checked only after sitting idle."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gatehouse_platform.testing import free_port
from notification_service.email import smtp
from notification_service.email.catalogue import TEMPLATES
from notification_service.email.links import Links
from notification_service.email.render import RenderedEmail, Renderer
from notification_service.email.smtp import SmtpSender, compose
from notification_service.previews.service import render_sample
from notification_service.settings import Settings

SETTINGS = Settings(environment="test", app_url="https://app.example.com")
MESSAGE_ID = "<42.abc@mail.example.com>"


def read_back(data: bytes) -> tuple[EmailMessage, str, str]:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    return message, str(text.get_content()), str(html.get_content())


def lines(body: str) -> list[str]:
    return body.replace("\r\n", "\n").rstrip("\n").split("\n")


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_built_as_bytes_reads_back_as_rendered(
    renderer_and_links: tuple[Renderer, Links], name: str
) -> None:
    renderer, links = renderer_and_links
    email = render_sample(renderer, links, name)
    outgoing = compose(email, settings=SETTINGS, message_id=MESSAGE_ID)

    assert isinstance(outgoing.content, bytes)
    assert (outgoing.sender, outgoing.recipients) == (SETTINGS.from_address, (email.recipient,))
    assert all(len(line) <= 998 for line in outgoing.content.split(b"\r\n"))
    message, text, html = read_back(outgoing.content)
    assert message["To"] == email.recipient
    assert message["Subject"] == email.subject
    assert message["Message-ID"] == MESSAGE_ID
    assert message["From"].addresses[0].addr_spec == SETTINGS.from_address
    assert message["Reply-To"] == SETTINGS.support_email
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"].datetime is not None
    if email.unsubscribe_url:
        assert message["List-Unsubscribe"] == f"<{email.unsubscribe_url}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert message["List-Unsubscribe"] is None
    assert lines(text) == lines(email.text)
    assert lines(html) == lines(email.html)


def test_awkward_bodies_survive_quoted_printable() -> None:
    text = (
        "Hi,\n.a line starting with a dot\nFrom here\ntrailing spaces   \n= signs =3D é “” 🎉\n" + "x" * 300
    )
    email = RenderedEmail("t", "someone@example.com", "Subject", text, "<p>" + "é" * 500 + "</p>")
    outgoing = compose(email, settings=SETTINGS, message_id=MESSAGE_ID)

    assert isinstance(outgoing.content, bytes)
    assert all(len(line) <= 78 for line in outgoing.content.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
    _, read_text, read_html = read_back(outgoing.content)
    assert lines(read_text) == lines(text)
    assert lines(read_html) == lines(email.html)


@pytest.mark.parametrize(
    "change",
    [
        {"recipient": "josé@example.com"},
        {"subject": "Grüße from the team"},
        {"subject": "A subject long enough that it has to be folded: " + "word " * 12},
    ],
)
def test_what_needs_more_than_plain_ascii_headers_goes_through_email_message(change: dict[str, str]) -> None:
    email = dataclasses.replace(
        RenderedEmail("t", "someone@example.com", "Subject", "text\n", "<p>html</p>\n"), **change
    )
    outgoing = compose(email, settings=SETTINGS, message_id=MESSAGE_ID)

    assert isinstance(outgoing.content, EmailMessage)
    assert outgoing.content["To"] == email.recipient
    assert outgoing.content["Subject"] == email.subject
    assert outgoing.recipients == (email.recipient,)


def test_a_line_break_in_a_header_is_refused_as_before() -> None:
    email = RenderedEmail("t", "someone@example.com\r\nBcc: x@example.com", "Subject", "text", "html")
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        compose(email, settings=SETTINGS, message_id=MESSAGE_ID)


class Counting:
    """aiosmtpd handler: which connection (session) carried each message, and how many NOOPs."""

    def __init__(self) -> None:
        self.sessions: list[object] = []
        self.noops = 0

    async def handle_NOOP(self, server: SMTP, session: Session, envelope: Envelope, arg: str) -> str:
        self.noops += 1
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.sessions.append(session.peer)
        return "250 OK"


@pytest.fixture
def counting() -> Iterator[tuple[Counting, int]]:
    handler, port = Counting(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


async def test_a_connection_just_used_carries_the_next_email_without_a_noop(
    counting: tuple[Counting, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, port = counting
    sender = SmtpSender(SETTINGS.model_copy(update={"smtp_port": port, "smtp_max_connections": 1}))
    email = RenderedEmail("t", "someone@example.com", "Subject", "text\n", "<p>html</p>\n")
    try:
        for _ in range(3):
            await sender.send(compose(email, settings=SETTINGS, message_id=MESSAGE_ID))
        assert handler.noops == 0
        # Idle for longer than the threshold (here: any time at all), it is checked first.
        monkeypatch.setattr(smtp, "NOOP_AFTER_IDLE_SECONDS", -1.0)
        await sender.send(compose(email, settings=SETTINGS, message_id=MESSAGE_ID))
        assert handler.noops == 1
    finally:
        await sender.aclose()
    assert len(handler.sessions) == 4
    assert len(set(handler.sessions)) == 1
