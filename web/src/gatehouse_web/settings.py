"""web settings: environment variables prefixed WEB_ (e.g. WEB_API_URL).

The web front owns no database, broker or Redis: of the platform's base settings it reads only
the environment and logging ones.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from gatehouse_platform.clientip import TrustedProxyCidrs
from gatehouse_platform.settings import ServiceSettings

DEV_SECRET_KEY = "dev-only-web-secret-key-change-me-0123456789"  # refused in production
LOCALES = ("en", "fr")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ValueError(f"{url!r} must be scheme://host[:port]")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{url!r} must be an origin, without a path")
    return f"{parts.scheme}://{parts.netloc}".lower()


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WEB_", extra="ignore")

    api_url: str = Field(
        default="http://127.0.0.1:8000", description="The gateway: every API call goes through it"
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where people reach these pages (the gateway's public address); OAuth returns here",
    )
    api_timeout_seconds: float = Field(default=10.0, gt=0)
    secret_key: str = Field(
        default=DEV_SECRET_KEY,
        min_length=32,
        description="Seals the session cookie and signs CSRF tokens (required in production)",
    )
    cookie_secure: bool | None = Field(
        default=None, description="Secure cookies; unset = outside development/test"
    )
    return_to_origins: list[str] = Field(
        default_factory=list,
        description="Origins (the product's own app) a sign-in may return to; anything else goes to /account",
    )
    checkout_origins: Annotated[list[str], NoDecode] = Field(
        default=["https://checkout.stripe.com"],
        description="Origins of the payment pages billing's Checkout URLs may send a person to "
        "(the Stripe emulator's locally), comma-separated; any other URL is refused",
    )
    oauth_providers: list[Literal["google", "github"]] = Field(
        default=["google", "github"],
        description="'Continue with …' buttons: providers configured at auth-service",
    )
    oauth_cookie_name: str = Field(
        default="gatehouse_refresh",
        description="auth-service's refresh cookie (AUTH_REFRESH_COOKIE_NAME), read once on /session/oauth "
        "(AUTH_OAUTH_REDIRECT_COOKIE_PATH=/session puts it there)",
    )
    trusted_proxies: TrustedProxyCidrs = Field(
        default_factory=list,
        description="CIDRs (the gateway's) whose X-Forwarded-For is believed: the person's address, "
        "passed on to the API so its limits count each person",
    )
    captcha_script_url: str = Field(
        default="",
        description="The bot-check widget's script, when auth-service's AUTH_CAPTCHA_MODE is on: "
        "https://challenges.cloudflare.com/turnstile/v0/api.js (Turnstile), https://js.hcaptcha.com/1/api.js "
        "(hCaptcha), or emulators/captcha's locally; the CSP allows its origin. Empty: no widget",
    )
    hsts_max_age_seconds: int = Field(
        default=31_536_000, ge=0, description="Strict-Transport-Security in production"
    )

    # Branding
    product_name: str = Field(default="Gatehouse", max_length=60)
    logo_url: str | None = Field(default=None, description="https URL (or a path on this site) of a logo")
    primary_color: str = Field(default="#1d4ed8", description="#rrggbb; buttons and links (keep AA contrast)")
    support_email: str = "support@gatehouse.localhost"
    template_dir: Path | None = Field(
        default=None, description="A folder whose templates override the built-in ones of the same name"
    )
    default_locale: str = "en"

    @field_validator("primary_color")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError("primary_color must be #rrggbb")
        return value.lower()

    @field_validator("checkout_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("return_to_origins", "checkout_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        return [_origin(o) for o in origins]

    @field_validator("captcha_script_url")
    @classmethod
    def _script(cls, url: str) -> str:
        parts = urlsplit(url)
        if url and (parts.scheme not in ("http", "https") or not parts.hostname or parts.username):
            raise ValueError("captcha_script_url must be an http(s) URL")
        return url

    @field_validator("api_url", "public_url")
    @classmethod
    def _base(cls, url: str) -> str:
        return _origin(url)

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        if value not in LOCALES:
            raise ValueError(f"default_locale must be one of {LOCALES}")
        return value

    @model_validator(mode="after")
    def _safe_in_production(self) -> Settings:
        if self.is_production:
            if self.secret_key == DEV_SECRET_KEY:
                raise ValueError("set WEB_SECRET_KEY in production")
            if not self.public_url.startswith("https://"):
                raise ValueError("WEB_PUBLIC_URL must be https in production")
            if self.cookie_secure is False:
                raise ValueError("WEB_COOKIE_SECURE cannot be false in production")
        return self

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment not in ("development", "test")

    @property
    def captcha_sources(self) -> list[str]:
        """The origins the bot-check widget loads from (hCaptcha's frames live on its subdomains)."""
        if not self.captcha_script_url:
            return []
        parts = urlsplit(self.captcha_script_url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        if origin.endswith(".hcaptcha.com"):
            return [origin, "https://hcaptcha.com", "https://*.hcaptcha.com"]
        return [origin]

    @property
    def allowed_origins(self) -> frozenset[str]:
        """Where a sign-in may send the browser: this site and the product's own app."""
        return frozenset([_origin(self.public_url), *self.return_to_origins])


@lru_cache
def get_settings() -> Settings:
    return Settings()
