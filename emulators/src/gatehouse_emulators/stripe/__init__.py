"""A stateful Stripe API emulator that the official SDK talks to unmodified (only `api_base` and the
API key change). `create_app(config)` builds the ASGI app; `gatehouse-stripe-emulator` serves it.
Shapes follow the API version stripe-python 16.1.0 pins; see emulators/README.md for what is
simplified."""

from gatehouse_emulators.stripe.app import create_app, main
from gatehouse_emulators.stripe.config import PINNED_API_VERSION, StripeEmulatorConfig

__all__ = ["PINNED_API_VERSION", "StripeEmulatorConfig", "create_app", "main"]
