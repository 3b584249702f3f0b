"""Every URL an email carries, built from configuration only (never from a request's headers),
and the signed tokens of unsubscribe links."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

from notification_service.settings import Settings

UNSUBSCRIBE_PATH = "/notifications/unsubscribe"
_MAC_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Unsubscription:
    email: str
    category: str


class Links:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app_url = settings.app_url.rstrip("/")
        self._public_url = settings.public_url.rstrip("/")
        self._secret = settings.unsubscribe_secret.encode()

    def _fill(self, template: str, token: str = "") -> str:
        # Plain replacement, not str.format: a token can never inject another placeholder.
        return template.replace("{app_url}", self._app_url).replace("{token}", quote(token, safe=""))

    def verify(self, token: str) -> str:
        return self._fill(self._settings.verify_url_template, token)

    def reset_password(self, token: str) -> str:
        return self._fill(self._settings.reset_url_template, token)

    def accept_invitation(self, token: str) -> str:
        return self._fill(self._settings.invitation_url_template, token)

    @property
    def sign_in(self) -> str:
        return self._fill(self._settings.sign_in_url_template)

    @property
    def forgot_password(self) -> str:
        return self._fill(self._settings.forgot_password_url_template)

    @property
    def account(self) -> str:
        return self._fill(self._settings.account_url_template)

    @property
    def api_keys(self) -> str:
        return self._fill(self._settings.api_keys_url_template)

    @property
    def billing(self) -> str:
        return self._fill(self._settings.billing_url_template)

    @property
    def app(self) -> str:
        return self._app_url

    @property
    def admins(self) -> tuple[str, ...]:
        """Where admin notices go (NOTIFICATION_ADMIN_EMAILS, else the support address): configuration,
        like every link here, so the handlers stay pure functions of the event."""
        return tuple(self._settings.admin_emails) or (self._settings.support_email,)

    # Unsubscribe links: `<payload>.<mac>`, the payload naming the address and the category.
    def unsubscribe_token(self, email: str, category: str) -> str:
        payload = f"{category}\n{email.lower()}".encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def unsubscribe(self, email: str, category: str) -> str:
        return f"{self._public_url}{UNSUBSCRIBE_PATH}?token={self.unsubscribe_token(email, category)}"

    def read_unsubscribe_token(self, token: str) -> Unsubscription | None:
        """The address and category a token was made for, or None if we did not make it."""
        encoded, _, mac = token.partition(".")
        try:
            payload, given = _unb64(encoded), _unb64(mac)
        except ValueError:
            return None
        if not hmac.compare_digest(given, self._mac(payload)):
            return None
        category, _, email = payload.decode("utf-8", errors="replace").partition("\n")
        return Unsubscription(email=email, category=category) if email and category else None

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, b"unsubscribe\n" + payload, hashlib.sha256).digest()[:_MAC_BYTES]
