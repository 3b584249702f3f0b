"""The house rules (docs/conventions.md), run on auth-service's source."""

from __future__ import annotations

from conftest import SERVICE_ROOT
from gatehouse_platform.structure import HouseRules


class TestHouseRules(HouseRules):
    package = "auth_service"
    source = SERVICE_ROOT / "src" / "auth_service"
    sdk_owners = {
        "argon2": ("security.py",),
        "zxcvbn": ("security.py",),
        "authlib": ("oauth/providers.py",),
        "celery": ("tasks.py",),
        "pyotp": ("mfa/totp.py",),
        "segno": ("mfa/totp.py",),
        "webauthn": ("passkeys/webauthn.py",),
        "maxminddb": ("geoip.py",),
    }
