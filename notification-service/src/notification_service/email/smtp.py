"""The only module that talks SMTP (aiosmtplib): composing the MIME message, sending it over a
small pool of connections, and sorting failures into transient (retry later) and permanent.

Composing builds the message's bytes directly (headers, then a multipart/alternative body in
quoted-printable UTF-8): the `email` package's header parsing and generator were a fifth of the
service's event-loop CPU in bench/notify_pipeline.py's profile. Anything that needs more than
that — a non-ASCII address or header, a header to fold, a line break in a header — still goes
through `email.message.EmailMessage`, and is sent with SMTPUTF8 when an address is not ASCII.

Sorting follows RFC 5321: a 5xx reply to MAIL, RCPT or DATA is permanent (the same message
will be refused again); 4xx replies, timeouts, refused or dropped connections are transient. A
failure to greet or authenticate is the relay's or our configuration's fault, not the
message's, so it is transient too: the consumer retries and, in the end, dead-letters.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import secrets
import socket
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

import aiosmtplib
from opentelemetry.trace import SpanKind
from prometheus_client import Histogram

from gatehouse_platform.tracing import span
from notification_service.email.render import RenderedEmail
from notification_service.settings import Settings

SEND_SECONDS = Histogram(
    "notification_smtp_send_seconds",
    "Time from handing a message to SMTP until the server accepted it.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IDLE_CONNECTION_SECONDS = 60.0  # idle pooled connections older than this are closed, not reused
# A pooled connection idle for longer than this is checked with NOOP before it carries a message.
NOOP_AFTER_IDLE_SECONDS = 2.0
_MAX_HEADER_LINE = 78  # RFC 5322's SHOULD; longer header lines are left to EmailMessage to fold


class SmtpError(Exception):
    """A failed send. `code` is the SMTP reply code when the server answered one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class SmtpTransientError(SmtpError):
    """Try again later: the server is unreachable, timed out, or answered 4xx."""


class SmtpPermanentError(SmtpError):
    """The server refused this message for good (5xx): sending it again will not help."""


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """What `SmtpSender.send` hands to the relay: the envelope, and the message as bytes (or, when
    it needs the `email` package, as an `EmailMessage`)."""

    sender: str
    recipients: tuple[str, ...]
    content: bytes | EmailMessage


def compose(email: RenderedEmail, *, settings: Settings, message_id: str) -> OutgoingEmail:
    """The MIME message: text and HTML alternatives, and the headers automated mail should carry."""
    headers = _headers(email, settings=settings, message_id=message_id)
    lines = [f"{name}: {value}" for name, value in headers]
    if all(_plain_header(line) for line in lines):
        return OutgoingEmail(
            settings.from_address, (email.recipient,), _mime_bytes(lines, email.text, email.html)
        )
    message = EmailMessage()
    for name, value in headers:
        message[name] = value
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return OutgoingEmail(settings.from_address, (email.recipient,), message)


def _headers(email: RenderedEmail, *, settings: Settings, message_id: str) -> list[tuple[str, str]]:
    headers = [
        ("From", formataddr((settings.from_name or settings.product_name, settings.from_address))),
        ("To", email.recipient),
        ("Subject", email.subject),
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", message_id),
        ("Reply-To", settings.support_email),
        # RFC 3834: machine-sent, so auto-responders (vacation replies) stay quiet.
        ("Auto-Submitted", "auto-generated"),
        ("X-Auto-Response-Suppress", "All"),
    ]
    if email.unsubscribe_url:
        # RFC 2369 + RFC 8058 one-click: mail clients POST "List-Unsubscribe=One-Click" to the URL.
        headers.append(("List-Unsubscribe", f"<{email.unsubscribe_url}>"))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return headers


def _plain_header(line: str) -> bool:
    """ASCII, no line break, and short enough not to need folding (or with nowhere to fold it,
    like a long URL, which EmailMessage would leave whole too)."""
    return (
        line.isascii()
        and "\r" not in line
        and "\n" not in line
        and (len(line) <= _MAX_HEADER_LINE or (" " not in line.partition(": ")[2] and len(line) <= 998))
    )


def _mime_bytes(header_lines: list[str], text: str, html: str) -> bytes:
    """The message's bytes, CRLF line ends. Both parts are quoted-printable, so the boundary
    (which starts with "=_") can never occur in them."""
    boundary = f"=_{secrets.token_hex(16)}"
    head = "\r\n".join(
        [
            *header_lines,
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
            "",
            "",
        ]
    ).encode("ascii")
    return b"".join(
        [
            head,
            _part(boundary, "plain", text),
            _part(boundary, "html", html),
            f"--{boundary}--\r\n".encode("ascii"),
        ]
    )


def _part(boundary: str, subtype: str, body: str) -> bytes:
    normalised = body.replace("\r\n", "\n").replace("\r", "\n")
    if not normalised.endswith("\n"):
        normalised += "\n"
    encoded = binascii.b2a_qp(normalised.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return (
        (
            f"--{boundary}\r\n"
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n"
            "\r\n"
        ).encode("ascii")
        + encoded
        + b"\r\n"
    )  # this CRLF belongs to the boundary that follows


def new_message_id(settings: Settings) -> str:
    return make_msgid(domain=settings.message_id_domain)


@dataclass
class _Idle:
    client: aiosmtplib.SMTP
    since: float


class SmtpSender:
    """Sends messages over at most `smtp_max_connections` connections, reused between messages.

    A pooled connection idle for more than NOOP_AFTER_IDLE_SECONDS is checked with NOOP before use
    (relays drop idle connections), so a message is not attempted on a connection the relay has
    likely closed; one just used goes straight on, without the round trip. Any failure closes the
    connection it happened on (and, being transient, the consumer retries the email).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._slots = asyncio.Semaphore(settings.smtp_max_connections)
        self._idle: list[_Idle] = []
        self._local_hostname = settings.smtp_local_hostname or socket.getfqdn()

    async def send(self, message: OutgoingEmail) -> None:
        """Hand `message` to the relay; raises SmtpTransientError or SmtpPermanentError."""
        attributes: dict[str, str | int] = {
            "server.address": self._settings.smtp_host,
            "server.port": self._settings.smtp_port,
        }
        with span("smtp send", kind=SpanKind.CLIENT, attributes=attributes):
            await self._send(message)

    async def _send(self, message: OutgoingEmail) -> None:
        async with self._slots:
            client = await self._checkout()
            start = time.perf_counter()
            try:
                if isinstance(message.content, EmailMessage):
                    # Envelope from the headers, with SMTPUTF8 when an address needs it.
                    await client.send_message(message.content)
                else:
                    await client.sendmail(message.sender, message.recipients, message.content)
            except aiosmtplib.SMTPException as exc:
                _close(client)
                raise _classify(exc) from None
            except (OSError, TimeoutError) as exc:
                _close(client)
                raise SmtpTransientError(f"{type(exc).__name__}: {exc}") from None
            except BaseException:
                _close(client)
                raise
            SEND_SECONDS.observe(time.perf_counter() - start)
            self._idle.append(_Idle(client, time.monotonic()))

    async def check(self) -> None:
        """Readiness: connect, greet (EHLO, STARTTLS and AUTH as configured), NOOP, QUIT."""
        client = self._client()
        try:
            await client.connect()
            if client.last_ehlo_response is None:
                await client.ehlo()
            await client.noop()
            await client.quit()
        finally:
            _close(client)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for entry in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(entry.client.quit(), timeout=1)
            _close(entry.client)

    async def _checkout(self) -> aiosmtplib.SMTP:
        while self._idle:
            entry = self._idle.pop()
            idle = time.monotonic() - entry.since
            if idle > IDLE_CONNECTION_SECONDS or not entry.client.is_connected:
                _close(entry.client)
                continue
            if idle <= NOOP_AFTER_IDLE_SECONDS:
                return entry.client
            try:
                await entry.client.noop()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                _close(entry.client)
                continue
            return entry.client
        client = self._client()
        try:
            await client.connect()
        except aiosmtplib.SMTPException as exc:
            _close(client)
            raise _classify(exc, connecting=True) from None
        except (OSError, TimeoutError) as exc:
            _close(client)
            raise SmtpTransientError(f"{type(exc).__name__}: {exc}") from None
        return client

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password,
            use_tls=s.smtp_use_tls,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout,
            local_hostname=self._local_hostname,
        )


def _close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        client.close()


def _classify(exc: aiosmtplib.SMTPException, *, connecting: bool = False) -> SmtpError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = exc.recipients
        code = refusals[0].code if refusals else None
        text = refusals[0].message if refusals else str(exc)
        return _by_code(code, f"recipient refused: {code} {text}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        message = f"{type(exc).__name__}: {exc.code} {exc.message}"
        if connecting or isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPHeloError):
            return SmtpTransientError(message, code=exc.code)
        return _by_code(exc.code, message)
    return SmtpTransientError(f"{type(exc).__name__}: {exc}")


def _by_code(code: int | None, message: str) -> SmtpError:
    if code is not None and 500 <= code < 600:
        return SmtpPermanentError(message[:1000], code=code)
    return SmtpTransientError(message[:1000], code=code)
