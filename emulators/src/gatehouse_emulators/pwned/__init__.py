"""A stand-in for Have I Been Pwned's Pwned Passwords range API (k-anonymity), in memory."""

from .app import DEFAULT_BREACHED, PwnedEmulatorConfig, create_app, sha1_hex

__all__ = ["DEFAULT_BREACHED", "PwnedEmulatorConfig", "create_app", "sha1_hex"]
