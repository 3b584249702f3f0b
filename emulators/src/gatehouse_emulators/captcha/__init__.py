"""A stand-in for Cloudflare Turnstile's and hCaptcha's siteverify APIs and widgets, in memory."""

from .app import (
    ALWAYS_BLOCKS_SITE_KEY,
    ALWAYS_FAILS_SECRET,
    ALWAYS_PASSES_SECRET,
    ALWAYS_PASSES_SITE_KEY,
    DEV_SECRET_KEY,
    DEV_SITE_KEY,
    DUPLICATE_SECRET,
    CaptchaEmulatorConfig,
    create_app,
)

__all__ = [
    "ALWAYS_BLOCKS_SITE_KEY",
    "ALWAYS_FAILS_SECRET",
    "ALWAYS_PASSES_SECRET",
    "ALWAYS_PASSES_SITE_KEY",
    "DEV_SECRET_KEY",
    "DEV_SITE_KEY",
    "DUPLICATE_SECRET",
    "CaptchaEmulatorConfig",
    "create_app",
]
