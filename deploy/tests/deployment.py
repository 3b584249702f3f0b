"""What the deployment files must agree with, read from the code itself: each service's settings
class, its port (docs/architecture.md), its probes, and which of its settings a deployment has to set.

The rule for "has to set": a setting whose default points at this machine (127.0.0.1, localhost,
gatehouse.localhost) or is a development secret that production refuses. Such a default is right
for `make run` and wrong in any container, so compose and Kubernetes must both set it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
LOCAL_MARKERS = ("127.0.0.1", "localhost")
# The ports are the ones docs/architecture.md names; the root README's table of parts repeats them,
# and the tests read that table.
README = ROOT / "README.md"


def readme_service_ports() -> dict[str, int]:
    """name → port from the README's table of parts (`| auth-service | 8001 | …`)."""
    rows = re.findall(r"^\|\s*([a-z-]+)\s*\|\s*(\d+)\s*\|", README.read_text(encoding="utf-8"), re.MULTILINE)
    return {name: int(port) for name, port in rows}


def readme_emulator_port(label: str) -> int:
    """The README's `12111 (Stripe)`, `8090 (OAuth)`, `1025 (SMTP)`."""
    match = re.search(rf"(\d+) \({label}\)", README.read_text(encoding="utf-8"))
    assert match, f"README.md no longer names the {label} emulator's port"
    return int(match.group(1))


@dataclass(frozen=True)
class Service:
    name: str  # the workspace member, image and compose/k8s name
    prefix: str  # environment variable prefix
    settings: str  # "module:Class"
    port: int  # docs/architecture.md's, as the README repeats it
    entrypoint: str  # the console script the image runs
    database: str | None = None
    celery: bool = False  # runs `worker` and `beat` too
    secrets: tuple[str, ...] = ()  # settings that hold secrets: a Secret in k8s, never a literal
    optional_secrets: tuple[str, ...] = ()  # secret settings a deployment may leave unset
    extra_settings: tuple[str, ...] = field(default=())  # more settings a deployment must set
    unused: tuple[str, ...] = ()  # inherited from the platform's base settings, never read here

    def settings_class(self) -> type[BaseSettings]:
        module, _, cls = self.settings.partition(":")
        settings_cls: type[BaseSettings] = getattr(import_module(module), cls)
        return settings_cls

    def env_names(self) -> set[str]:
        """Every environment variable this service reads."""
        return {f"{self.prefix}{name}".upper() for name in self.settings_class().model_fields}

    def unknown(self, names: Iterable[str]) -> set[str]:
        """Of `names` set for this service, those it never reads: a typo, another service's prefix,
        or a platform setting it inherits and has no use for."""
        real = self.env_names() - {f"{self.prefix}{name}".upper() for name in self.unused}
        return set(names) - real

    def must_set(self) -> set[str]:
        """The variables a deployment must set (see the module docstring)."""
        names = {f"{self.prefix}{name}".upper() for name in self.secrets + self.extra_settings}
        for name, info in self.settings_class().model_fields.items():
            if name in self.unused:
                continue
            default: Any = info.get_default(call_default_factory=True)
            if info.is_required() or any(marker in str(default) for marker in LOCAL_MARKERS):
                names.add(f"{self.prefix}{name}".upper())
        return names


SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service(
            "gateway",
            "GATEWAY_",
            "gateway.settings:Settings",
            8000,
            "gateway",
            unused=("database_url", "database_pool_size"),
        ),
        Service(
            "auth-service",
            "AUTH_",
            "auth_service.settings:Settings",
            8001,
            "auth-service",
            database="gatehouse_auth",
            celery=True,
            secrets=(
                "token_secret",
                "api_key_pepper",
                "key_encryption_key",
                "google_client_secret",
                "github_client_secret",
            ),
            optional_secrets=("signing_key_pem",),
        ),
        Service(
            "billing-service",
            "BILLING_",
            "billing_service.settings:Settings",
            8002,
            "billing-service",
            database="gatehouse_billing",
            celery=True,
            secrets=("stripe_api_key", "stripe_webhook_secret"),
            optional_secrets=("stripe_webhook_secret_previous",),
        ),
        Service(
            "notification-service",
            "NOTIFICATION_",
            "notification_service.settings:Settings",
            8003,
            "notification-service",
            database="gatehouse_notification",
            secrets=("unsubscribe_secret",),
            optional_secrets=("smtp_username", "smtp_password"),
            extra_settings=("from_address", "support_email", "message_id_domain"),
        ),
        Service(
            "web",
            "WEB_",
            "gatehouse_web.settings:Settings",
            8004,
            "web",
            secrets=("secret_key",),
            extra_settings=("support_email",),
            unused=("database_url", "database_pool_size", "amqp_url", "events_exchange", "redis_url"),
        ),
    )
}

# Database, broker and cache URLs carry credentials: Secrets too, in Kubernetes.
CREDENTIAL_URLS = ("DATABASE_URL", "AMQP_URL", "CELERY_BROKER_URL", "REDIS_URL")


def is_secret(service: Service, env_name: str) -> bool:
    names = service.secrets + service.optional_secrets
    secret_names = {f"{service.prefix}{name}".upper() for name in names}
    return env_name in secret_names or env_name.removeprefix(service.prefix) in CREDENTIAL_URLS
