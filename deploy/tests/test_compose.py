"""docker-compose.yml, checked without a Docker engine.

The file is read the way Compose reads it: YAML (anchors and merge keys), then ${VAR:-default}
interpolation, here with an empty environment (no .env) unless a test says otherwise. The checks:
every long-running container has a healthcheck and everything waits on health (one-shot commands
on successful completion), migrations run before anything uses a database, each service's
containers set every setting a deployment must set (deployment.py) and only real settings, the
settings classes load from that environment, URLs between containers point at ports something
listens on, only the gateway and the web UIs are published, and ports agree with docs/architecture.md.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deployment import ROOT, SERVICES, Service, readme_emulator_port, readme_service_ports
from pydantic import ValidationError
from typer.testing import CliRunner

from gatehouse_emulators.oauth.config import OAuthEmulatorConfig
from gatehouse_emulators.stripe.config import StripeEmulatorConfig

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# Ports the infrastructure images listen on (their defaults; compose does not change them).
INFRA_PORTS = {"postgres": {5432}, "rabbitmq": {5672, 15672}, "redis": {6379}, "mailpit": {1025, 8025}}
SCHEME_PORTS = {"http": 80, "https": 443, "amqp": 5672, "redis": 6379, "postgresql+asyncpg": 5432}
# What is published to the host: the front door, billing's Stripe webhook, and the web pages a
# browser must reach (Stripe Checkout, the OAuth consent page, RabbitMQ management, Mailpit's inbox).
PUBLISHED = {
    "gateway": 8000,
    "billing-service": 8002,
    "stripe-emulator": 12111,
    "oauth-emulator": 8090,
    "rabbitmq": 15672,
    "mailpit": 8025,
}
# Where a sign-in may return the browser: also a web app on the host (a dev server on :3000).
BROWSER_ORIGINS_OUTSIDE_COMPOSE = {"AUTH_OAUTH_REDIRECT_ALLOWLIST"}

# ----------------------------------------------------------------------------- reading the file

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str, env: Mapping[str, str], seen: list[tuple[str, str | None, str]]) -> str:
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err},
    ${VAR:+alternative}. Each reference is recorded as (name, operator, argument)."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("named")
        op, arg = match.group("op"), match.group("arg") or ""
        seen.append((name, op, arg))
        current = env.get(name)
        if op in (":-", "-"):
            use_default = current is None or (op == ":-" and current == "")
            return arg if use_default else str(current)
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise AssertionError(f"compose would refuse to start: {name} is required ({arg})")
            return current
        if op in (":+", "+"):
            present = current is not None and (op == "+" or current != "")
            return arg if present else ""
        return current or ""

    return _VARIABLE.sub(replace, value)


def _walk(node: Any, env: Mapping[str, str], seen: list[tuple[str, str | None, str]]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env, seen)
    if isinstance(node, list):
        return [_walk(item, env, seen) for item in node]
    if isinstance(node, dict):
        return {key: _walk(value, env, seen) for key, value in node.items()}
    return node


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), "docker-compose.yml is missing"
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    document: dict[str, Any] = _walk(raw, env or {}, [])
    return document


def variable_references() -> list[tuple[str, str | None, str]]:
    seen: list[tuple[str, str | None, str]] = []
    _walk(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")), {}, seen)
    return seen


def services(document: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = (document or load_compose())["services"]
    return found


def environment(container: dict[str, Any]) -> dict[str, str]:
    value = container.get("environment") or {}
    if isinstance(value, list):
        value = dict(item.split("=", 1) for item in value)
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def command(container: dict[str, Any]) -> list[str]:
    value = container.get("command") or []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def is_one_shot(container: dict[str, Any]) -> bool:
    return str(container.get("restart", "no")) == "no"


def containers_of(service: Service, document: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every container running `service`'s image: its API, worker, beat and one-shot commands."""
    dockerfile = f"{service.name}/Dockerfile"
    return {
        name: container
        for name, container in services(document).items()
        if (container.get("build") or {}).get("dockerfile") == dockerfile
    }


def option(argv: list[str], name: str) -> str | None:
    for index, token in enumerate(argv):
        if token == name and index + 1 < len(argv):
            return argv[index + 1]
    return None


def listening_ports(name: str, container: dict[str, Any]) -> set[int]:
    if name in INFRA_PORTS:
        return INFRA_PORTS[name]
    port = option(command(container), "--port")
    return {int(port)} if port else set()


def published_ports(container: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each `ports:` entry."""
    result = []
    for entry in container.get("ports", []):
        parts = str(entry).split(":")
        assert len(parts) == 3, f"publish as address:host:container, found {entry!r}"
        result.append((parts[0], int(parts[1]), int(parts[2].split("/")[0])))
    return result


def aliases() -> dict[str, str]:
    """Network alias → the compose service it names."""
    found = {}
    for name, container in services().items():
        for network in (container.get("networks") or {}).values():
            for alias in (network or {}).get("aliases", []):
                found[alias] = name
    return found


def read_env_example() -> list[tuple[str, str, bool]]:
    """(name, value, documented) per variable: documented = a comment opens its block of lines."""
    assert ENV_EXAMPLE.is_file(), ".env.example is missing"
    entries, commented = [], False
    for raw in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            commented = False
        elif line.startswith("#"):
            commented = True
        else:
            name, sep, value = line.partition("=")
            assert sep, f".env.example: not NAME=value: {line!r}"
            entries.append((name.strip(), value.strip(), commented))
    return entries


@pytest.fixture
def clean_settings_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No service setting from the developer's shell leaks into a settings class."""
    prefixes = tuple(service.prefix for service in SERVICES.values())
    for key in list(os.environ):
        if key.startswith(prefixes):
            monkeypatch.delenv(key)
    return monkeypatch


# ----------------------------------------------------------------------------- the components


def test_redis_persists_what_it_holds_on_a_volume() -> None:
    """The token denylist lives in Redis: a restart that lost it would accept revoked tokens (the
    verifiers fail closed and rebuild, but the outage is avoidable). Append-only file, on a volume."""
    redis = services()["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert any(str(volume).endswith(":/data") for volume in redis.get("volumes", [])), "redis: mount /data"


def test_compose_runs_every_component_design_names() -> None:
    found = services()
    for name in ("postgres", "rabbitmq", "redis", "mailpit", "stripe-emulator", "oauth-emulator", *SERVICES):
        assert name in found, f"docker-compose.yml has no `{name}` service"
    assert "management" in found["rabbitmq"]["image"], "RabbitMQ with its management plugin"
    for name, container in found.items():
        if "build" not in container:
            image, _, tag = str(container.get("image", "")).partition(":")
            assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: pin {image} by version tag"
        else:
            dockerfile = ROOT / container["build"]["context"] / container["build"]["dockerfile"]
            assert container["build"]["context"] == ".", f"{name}: build from the workspace root"
            assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"


def test_every_variable_has_a_default_and_is_documented_in_env_example() -> None:
    references = variable_references()
    assert references, "docker-compose.yml reads no variables at all?"
    defaults: dict[str, set[str]] = {}
    for name, op, arg in references:
        assert op in (":-", "-"), f"${{{name}}} needs a default (${{{name}:-…}}) so compose runs without .env"
        defaults.setdefault(name, set()).add(arg)
    for name, values in defaults.items():
        assert len(values) == 1, f"{name} has different defaults in docker-compose.yml: {sorted(values)}"
    documented = read_env_example()
    names = [name for name, _, _ in documented]
    assert len(names) == len(set(names)), ".env.example lists a variable twice"
    assert set(names) == set(defaults), (
        f"read by compose but not in .env.example: {sorted(set(defaults) - set(names))}; "
        f"in .env.example but unused: {sorted(set(names) - set(defaults))}"
    )
    for name, value, commented in documented:
        assert commented, f".env.example: explain {name} in a comment above it"
        assert {value} == defaults[name], (
            f".env.example: {name}={value} differs from compose's default {defaults[name].pop()}"
        )


# ----------------------------------------------------------------------------- health and order


def test_long_running_containers_have_healthchecks() -> None:
    for name, container in services().items():
        health = container.get("healthcheck") or {}
        if is_one_shot(container):
            assert health.get("disable") is True, f"{name}: a one-shot is waited on by completion, not health"
            continue
        assert not health.get("disable") and health.get("test"), f"{name}: needs a healthcheck"
        assert health["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test {health['test']}"
        for key in ("interval", "timeout", "retries"):
            assert key in health, f"{name}: set the healthcheck's {key}"


def test_dependencies_wait_on_health_or_completion() -> None:
    found = services()
    for name, container in found.items():
        depends = container.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: use depends_on with conditions, not a list"
        for target, spec in depends.items():
            assert target in found, f"{name} depends on unknown service {target}"
            expected = "service_completed_successfully" if is_one_shot(found[target]) else "service_healthy"
            assert spec.get("condition") == expected, f"{name} → {target}: condition should be {expected}"
    for name, container in found.items():
        if is_one_shot(container):
            waiting = [n for n, c in found.items() if name in (c.get("depends_on") or {})]
            assert waiting, f"{name}: a one-shot nothing waits for"
    order: list[str] = []  # compose starts nothing in a dependency cycle
    remaining = {n: set(c.get("depends_on") or {}) for n, c in found.items()}
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if deps <= set(order))
        assert ready, f"dependency cycle among {sorted(remaining)}"
        order += ready
        for n in ready:
            del remaining[n]


@pytest.mark.parametrize("name", [s.name for s in SERVICES.values() if s.database])
def test_migrations_run_before_anything_uses_the_database(name: str) -> None:
    containers = containers_of(SERVICES[name])
    migrations = [n for n, c in containers.items() if command(c) == ["migrate"]]
    assert len(migrations) == 1, f"{name}: one one-shot `migrate` container, found {migrations}"
    migrate = migrations[0]
    assert migrate == f"{name}-migrate", f"name it {name}-migrate, as the runbook and Kubernetes do"
    assert is_one_shot(containers[migrate]), f'{migrate}: must run once (restart: "no")'
    assert containers[migrate]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for other, container in containers.items():
        if other != migrate:
            assert (container.get("depends_on") or {}).get(migrate) == {
                "condition": "service_completed_successfully"
            }, f"{other}: wait for {migrate} to complete"
            assert (container.get("depends_on") or {}).get("postgres") or other.endswith("-beat"), (
                f"{other}: wait for postgres"
            )


def test_billing_seeds_its_plans_after_migrating_and_reaching_stripe() -> None:
    found = services()
    seeds = [
        n for n, c in containers_of(SERVICES["billing-service"]).items() if command(c)[:1] == ["seed-plans"]
    ]
    assert len(seeds) == 1, f"billing: one seed-plans one-shot, found {seeds}"
    seed = found[seeds[0]]
    assert is_one_shot(seed)
    assert option(command(seed), "--wait"), "seed-plans --wait: Stripe may still be starting"
    assert seed["depends_on"].get("stripe-emulator") == {"condition": "service_healthy"}
    assert seed["depends_on"].get("billing-service-migrate") == {
        "condition": "service_completed_successfully"
    }
    assert found["billing-service"]["depends_on"].get(seeds[0]) == {
        "condition": "service_completed_successfully"
    }


def _celery_argv(service: Service, args: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Celery command line the service's CLI execs for `args` (worker or beat)."""
    module = service.settings.partition(":")[0].rsplit(".", 1)[0] + ".cli"
    app = __import__(module, fromlist=["app"]).app
    captured: list[str] = []

    def fake_execv(path: str, argv: list[str]) -> None:
        captured.extend(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", fake_execv)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and captured, f"{service.name} {args}: {result.output}"
    return captured


@pytest.mark.parametrize("name", list(SERVICES))
def test_celery_worker_and_beat_run_where_there_is_periodic_work(
    name: str, clean_settings_env: pytest.MonkeyPatch
) -> None:
    service = SERVICES[name]
    containers = containers_of(service)
    workers = {n: c for n, c in containers.items() if command(c)[:1] == ["worker"]}
    beats = {n: c for n, c in containers.items() if command(c)[:1] == ["beat"]}
    if not service.celery:
        assert not workers and not beats, f"{name} has no Celery app"
        return
    assert len(workers) == 1, f"{name}: one worker container, found {sorted(workers)}"
    assert len(beats) == 1, (
        f"{name}: exactly one beat (two would send every task twice), found {sorted(beats)}"
    )
    assert set(workers) == {f"{name}-worker"} and set(beats) == {f"{name}-beat"}, (
        "name them <service>-worker and <service>-beat, as Kubernetes does"
    )

    # The worker's probe pings the node name the CLI gives it, through the same Celery app.
    (worker,) = workers.values()
    argv = _celery_argv(service, command(worker), clean_settings_env)
    celery_app, hostname = option(argv, "-A"), option(argv, "--hostname")
    assert celery_app and hostname and hostname.endswith("@%h"), argv
    probe = " ".join(worker["healthcheck"]["test"][1:])
    expected = f"celery -A {celery_app} inspect ping -d {hostname.replace('%h', '$HOSTNAME')}"
    assert expected in probe, f"{name} worker: probe `{expected}`, found `{probe}`"

    # Beat's probe watches the schedule file beat was told to keep.
    (beat,) = beats.values()
    argv = _celery_argv(service, command(beat), clean_settings_env)
    schedule = option(argv, "--schedule")
    assert schedule and schedule.startswith("/tmp/"), f"{name} beat: schedule {schedule} (writable /tmp)"
    probe = " ".join(beat["healthcheck"]["test"])
    assert f"glob.glob('{schedule}*')" in probe and "getmtime" in probe, (
        f"{name} beat: the probe should check that {schedule} is fresh: {probe}"
    )


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_required_setting_is_set_and_every_set_one_exists(name: str) -> None:
    service = SERVICES[name]
    containers = containers_of(service)
    assert containers, f"no container runs {name}"
    for container_name, container in containers.items():
        env = environment(container)
        missing = service.must_set() - set(env)
        assert not missing, f"{container_name}: set {sorted(missing)} (their defaults point at this machine)"
        unknown = sorted(service.unknown(env))
        assert not unknown, f"{container_name}: {unknown} are not settings {service.settings} reads (typo?)"


@pytest.mark.parametrize("name", list(SERVICES))
def test_containers_of_a_service_share_its_settings(name: str) -> None:
    containers = containers_of(SERVICES[name])
    first, *others = containers.items()
    for other, container in others:
        assert environment(container) == environment(first[1]), (
            f"{other} and {first[0]} read different settings"
        )


@pytest.mark.parametrize("name", list(SERVICES))
def test_settings_load_from_the_compose_environment(
    name: str, clean_settings_env: pytest.MonkeyPatch
) -> None:
    service = SERVICES[name]
    env = environment(services()[name])
    for key, value in env.items():
        clean_settings_env.setenv(key, value)
    settings = service.settings_class()()
    assert getattr(settings, "environment") == "development"  # noqa: B009 - any settings class
    for field in ("database_url", "amqp_url", "redis_url"):
        variable = f"{service.prefix}{field}".upper()
        if variable in env:
            host = urlsplit(getattr(settings, field)).hostname
            assert host in services(), f"{name}: {variable} points at {host}, not a compose service"


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("auth-service", "AUTH_TOKEN_SECRET"),
        ("billing-service", "BILLING_STRIPE_API_KEY"),
        ("notification-service", "NOTIFICATION_UNSUBSCRIBE_SECRET"),
    ],
)
def test_production_refuses_the_development_defaults(
    name: str, refused: str, clean_settings_env: pytest.MonkeyPatch
) -> None:
    """The compose defaults are development values: a production start without a .env fails."""
    env = environment(services(load_compose({"GATEHOUSE_ENVIRONMENT": "production"}))[name])
    for key, value in env.items():
        clean_settings_env.setenv(key, value)
    with pytest.raises(ValidationError, match=refused):
        SERVICES[name].settings_class()()


def test_emulators_read_every_variable_compose_gives_them() -> None:
    """Each variable changes the emulator's configuration when its value changes (no typos)."""
    loaders: dict[str, Callable[[Mapping[str, str]], object]] = {
        "stripe-emulator": lambda env: StripeEmulatorConfig.from_env(env),
        "oauth-emulator": lambda env: OAuthEmulatorConfig.from_env(env),
    }
    for name, load in loaders.items():
        env = environment(services()[name])
        assert env, f"{name}: configure it by environment"
        configured = load(env)
        for key, value in env.items():
            assert load({**env, key: value + "-changed"}) != configured, f"{name} does not read {key}"


# ----------------------------------------------------------------------------- ports and wiring


def test_ports_agree_with_design() -> None:
    design = readme_service_ports()
    found = services()
    for name, service in SERVICES.items():
        assert design.get(name) == service.port, f"README.md gives {name} port {design.get(name)}"
        argv = command(found[name])
        assert argv[:1] == ["serve"] and option(argv, "--host") == "0.0.0.0", (
            f"{name}: serve on 0.0.0.0 (the CLI's default 127.0.0.1 is unreachable from other containers)"
        )
        assert option(argv, "--port") == str(service.port), (
            f"{name}: serve on docs/architecture.md's port {service.port}"
        )
        assert f"http://127.0.0.1:{service.port}/readyz" in " ".join(found[name]["healthcheck"]["test"]), (
            f"{name}: probe readiness on its own port"
        )
    for name, label in (("stripe-emulator", "Stripe"), ("oauth-emulator", "OAuth")):
        port = readme_emulator_port(label)
        argv = command(found[name])
        assert option(argv, "--host") == "0.0.0.0" and option(argv, "--port") == str(port), f"{name}: {argv}"
        assert f"http://127.0.0.1:{port}/healthz" in " ".join(found[name]["healthcheck"]["test"])


def test_only_the_gateway_and_web_uis_are_published() -> None:
    published = {}
    for name, container in services().items():
        for address, host_port, container_port in published_ports(container):
            assert address == "127.0.0.1", f"{name}: publish on 127.0.0.1 only, not {address}"
            assert host_port == container_port, (
                f"{name}: host port {host_port} ≠ container port {container_port}"
            )
            assert name not in published, f"{name}: publishes more than one port"
            published[name] = host_port
    assert published == PUBLISHED, f"published ports {published}, expected {PUBLISHED}"


def _urls(container: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in environment(container).items():
        for url in re.findall(r"[a-z][a-z0-9+]*://[^\s,]+", value):
            yield key, url


def test_urls_between_containers_point_at_listening_ports() -> None:
    found, alias_of = services(), aliases()
    host_ports = {port for container in found.values() for _, port, _ in published_ports(container)}
    checked = 0
    for name, container in found.items():
        for key, url in _urls(container):
            parts = urlsplit(url)
            host, port = parts.hostname or "", parts.port or SCHEME_PORTS.get(parts.scheme)
            assert host not in ("127.0.0.1", "::1"), f"{name}: {key}={url} is the container's own loopback"
            target = host if host in found else alias_of.get(host)
            if target:
                listening = listening_ports(target, found[target])
                assert port in listening, f"{name}: {key}={url}, but {target} listens on {sorted(listening)}"
                checked += 1
            if key in BROWSER_ORIGINS_OUTSIDE_COMPOSE:
                continue
            if host == "localhost" or host.endswith(".localhost"):
                assert port in host_ports, (
                    f"{name}: {key}={url} is for a browser, but {port} is not published"
                )
                checked += 1
    assert checked > 20, f"only {checked} URLs checked: is the environment read?"


def test_services_are_wired_to_each_other() -> None:
    found = services()
    auth, billing = environment(found["auth-service"]), environment(found["billing-service"])
    notification, gateway = environment(found["notification-service"]), environment(found["gateway"])
    stripe, oauth = environment(found["stripe-emulator"]), environment(found["oauth-emulator"])
    public = auth["AUTH_PUBLIC_URL"]

    # Tokens: one issuer; verifiers fetch auth-service's JWKS; the gateway routes to the services.
    for variable, env in (
        ("BILLING_ISSUER", billing),
        ("NOTIFICATION_ISSUER", notification),
        ("GATEWAY_ISSUER", gateway),
    ):
        assert env[variable] == auth["AUTH_ISSUER"] == f"{public}/auth", f"{variable} ≠ AUTH_ISSUER"
    for env, variable in ((billing, "BILLING_JWKS_URL"), (notification, "NOTIFICATION_JWKS_URL")):
        assert (
            env[variable] == f"http://auth-service:{SERVICES['auth-service'].port}/auth/.well-known/jwks.json"
        )
    for variable, target in (
        ("GATEWAY_AUTH_URL", "auth-service"),
        ("GATEWAY_BILLING_URL", "billing-service"),
        ("GATEWAY_NOTIFICATIONS_URL", "notification-service"),
    ):
        assert gateway[variable] == f"http://{target}:{SERVICES[target].port}", variable
    assert public == f"http://localhost:{PUBLISHED['gateway']}", "the browser reaches the gateway here"
    for variable in ("BILLING_CHECKOUT_SUCCESS_URL", "BILLING_CHECKOUT_CANCEL_URL"):
        assert billing[variable].startswith(f"{public}/billing/"), variable
    assert "{CHECKOUT_SESSION_ID}" in billing["BILLING_CHECKOUT_SUCCESS_URL"]
    assert notification["NOTIFICATION_APP_URL"] == notification["NOTIFICATION_PUBLIC_URL"] == public

    # Stripe: billing calls the emulator with a key it accepts; webhooks come back signed with the
    # secret billing verifies, to billing's webhook route.
    assert billing["BILLING_STRIPE_API_BASE"] == "http://stripe-emulator:12111"
    assert stripe["STRIPE_EMULATOR_API_KEYS"] == billing["BILLING_STRIPE_API_KEY"]
    assert billing["BILLING_STRIPE_API_KEY"].startswith("sk_test_")
    assert stripe["STRIPE_WEBHOOK_SECRET"] == billing["BILLING_STRIPE_WEBHOOK_SECRET"]
    assert stripe["STRIPE_EMULATOR_WEBHOOK_URL"] == "http://billing-service:8002/billing/stripe/webhook"
    assert stripe["STRIPE_EMULATOR_PUBLIC_URL"] == f"http://localhost:{PUBLISHED['stripe-emulator']}"
    assert stripe["STRIPE_EMULATOR_STATE_FILE"].startswith("/data/") and any(
        str(v).endswith(":/data") for v in found["stripe-emulator"].get("volumes", [])
    ), "the emulator's state file lives on a volume"

    # OAuth: the same clients on both sides. auth-service calls the emulator inside the network; the
    # browser opens the consent pages on the published port.
    for provider in ("GOOGLE", "GITHUB"):
        for part in ("CLIENT_ID", "CLIENT_SECRET"):
            assert auth[f"AUTH_{provider}_{part}"] == oauth[f"OAUTH_EMULATOR_{provider}_{part}"]
    base = oauth["OAUTH_EMULATOR_BASE_URL"]
    assert auth["AUTH_GOOGLE_DISCOVERY_URL"] == f"{base}/google/.well-known/openid-configuration"
    assert urlsplit(base).hostname == "oauth-emulator", f"{base}: auth-service reaches the emulator by name"
    browser = oauth["OAUTH_EMULATOR_BROWSER_URL"]
    assert browser == f"http://localhost:{PUBLISHED['oauth-emulator']}", "Google's consent page, for browsers"
    assert urlsplit(auth["AUTH_GITHUB_AUTHORIZE_URL"]).hostname == "localhost", "the browser opens this one"
    for variable in ("AUTH_GITHUB_TOKEN_URL", "AUTH_GITHUB_API_URL"):
        assert urlsplit(auth[variable]).hostname == "oauth-emulator", f"auth-service calls {variable} itself"
    assert auth["AUTH_OAUTH_REDIRECT_ALLOWLIST"].split(",")[0] == f"{public}/"

    # Email: Mailpit's SMTP port, inside the network.
    assert notification["NOTIFICATION_SMTP_HOST"] == "mailpit"
    assert int(notification["NOTIFICATION_SMTP_PORT"]) in INFRA_PORTS["mailpit"] - {PUBLISHED["mailpit"]}


def test_postgres_init_script_creates_one_database_per_service(tmp_path: Path) -> None:
    postgres = services()["postgres"]
    mounts = [str(v) for v in postgres.get("volumes", [])]
    script_mount = next((m for m in mounts if "/docker-entrypoint-initdb.d/" in m), None)
    assert script_mount, "postgres: mount the init script into /docker-entrypoint-initdb.d"
    script = ROOT / script_mount.split(":")[0]
    assert script.is_file() and os.access(script, os.X_OK), f"{script} must exist and be executable"

    # Run it with a psql that records what it is asked to do.
    log = tmp_path / "psql.log"
    fake = tmp_path / "bin" / "psql"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" >> "$PSQL_LOG"; cat >> "$PSQL_LOG"; echo "==" >> "$PSQL_LOG"\n'
    )
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "PSQL_LOG": str(log), **environment(postgres)}
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    calls = [call for call in log.read_text().split("==\n") if call.strip()]
    created = {}
    for call in calls:
        name = re.search(r"^--set=name=(.*)$", call, re.MULTILINE)
        password = re.search(r"^--set=password=(.*)$", call, re.MULTILINE)
        assert name and password and 'CREATE DATABASE :"name" OWNER :"name"' in call, call
        created[name.group(1)] = password.group(1)

    wanted = {s.database for s in SERVICES.values() if s.database}
    assert set(created) == wanted, f"databases made: {sorted(created)}, services need {sorted(wanted)}"
    for service in SERVICES.values():
        if service.database:
            url = urlsplit(environment(services()[service.name])[f"{service.prefix}DATABASE_URL"])
            assert (url.hostname, url.path.lstrip("/")) == ("postgres", service.database), url.geturl()
            assert url.username == service.database, f"{service.name}: connect as its own role"
            assert url.password == created[service.database], f"{service.name}: its role's password"
