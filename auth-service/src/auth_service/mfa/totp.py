"""Authenticator apps (RFC 6238): the only module that imports pyotp and segno.

Seeds are stored Fernet-encrypted under AUTH_KEY_ENCRYPTION_KEY, like the private signing keys.
"""

from __future__ import annotations

import hmac
import io

import pyotp
import segno
from cryptography.fernet import Fernet

from auth_service.settings import Settings

DIGITS = 6
PERIOD = 30  # seconds per time-step: what every authenticator app assumes


class TotpSeeds:
    """New seeds, their encryption at rest, the otpauth:// URI and its QR code."""

    def __init__(self, settings: Settings) -> None:
        self._fernet = Fernet(settings.key_encryption_key.encode())
        self._issuer = settings.totp_issuer

    def new_secret(self) -> str:
        """160 random bits in base32 (RFC 4226's recommended seed length)."""
        return pyotp.random_base32(length=32)

    def encrypt(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def decrypt(self, encrypted: bytes) -> str:
        return self._fernet.decrypt(encrypted).decode()

    def provisioning_uri(self, secret: str, account: str) -> str:
        return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
            name=account, issuer_name=self._issuer
        )


def qr_svg(uri: str) -> str:
    """The URI as a QR code: an SVG document (with its namespace, no XML declaration), for an
    <img src="data:image/svg+xml,…"> or inline in a page."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgclass=None, lineclass=None)
    return out.getvalue().decode()


def matching_step(secret: str, code: str, *, at: float, window: int) -> int | None:
    """The time-step whose code `code` is, within `window` steps either side of `at` (clock drift),
    or None. The caller refuses steps at or before the last one it accepted: no replay."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    current = int(at) // PERIOD
    for step in sorted(range(current - window, current + window + 1), key=lambda s: abs(s - current)):
        if step >= 0 and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
