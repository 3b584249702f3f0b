"""The whole system as real processes: the `Procfile` that `make run` uses, started by honcho on
free ports, with databases, a RabbitMQ vhost, Redis key prefixes and a Maildir of this run's own.
Tests talk to it as clients and browsers do: through the gateway; Stripe's webhooks reach
billing-service directly; emails are read from the Maildir.

Used by tests-e2e (its conftest) and by web/tests (the browser journeys), one harness for both.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import httpx
from honcho.environ import parse_procfile

from gatehouse_emulators.smtp import read_maildir
from gatehouse_platform import testing
from gatehouse_platform.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("auth", "billing", "notification")
# Procfile processes run beside honcho rather than under it, so that a test can stop and restart
# one (honcho stops everything when one of its processes exits): billing-service for the drills,
# auth-service for the browser journeys that need other settings (System.configure).
RESTARTABLE = ("billing", "auth")
ADMIN_EMAIL = "admin@e2e.gatehouse.example"  # an address the contracts accept (not .test)
ADMIN_PASSWORD = "an admin passphrase for e2e"
PASSWORD = "a user passphrase for e2e"


@dataclass
class Process:
    """One Procfile process, started with its Procfile command line as honcho would."""

    name: str
    command: str
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    settings: dict[str, str] = field(default_factory=dict)  # what it runs with over the system's

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.popen = subprocess.Popen(
                ["/bin/sh", "-c", self.command],
                env=self.env,
                cwd=ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as a process manager sends it, then wait for the graceful exit of the whole
        process group: `uv run` may be gone while the server it started still finishes its
        requests (and still answers /readyz, and still holds its port)."""
        assert self.popen is not None and self.popen.poll() is None, f"{self.name} is not running"
        group = self.popen.pid
        os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        try:
            code = self.popen.wait(timeout=timeout)
            while _group_alive(group):
                if time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired(self.command, timeout)
                time.sleep(0.05)
            return code
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.popen.wait()
            raise

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.stop()


@dataclass
class System:
    urls: dict[str, str]
    maildir: Path
    log: Path
    env: dict[str, str]
    processes: dict[str, Process]
    seen_mail: set[str] = field(default_factory=set)

    @property
    def gateway(self) -> str:
        return self.urls["gateway"]

    def configure(self, name: str, settings: Mapping[str, str]) -> None:
        """Have the restartable process `name` run with `settings` over the system's environment
        (none: the system's own), restarting it only when they differ from what it runs with, and
        waiting until it is ready again. What else runs (and every row and message) stays."""
        process = self.processes[name]
        if process.settings == dict(settings):
            return
        process.stop()
        process.settings = dict(settings)
        process.env = {**self.env, **settings}
        process.start()
        assert process.popen is not None
        _wait_ready(f"{self.urls[name]}/readyz", process.popen, process.log)

    def mail_to(self, address: str) -> list[EmailMessage]:
        return read_maildir(self.maildir, address)

    async def wait_for_mail(self, address: str, subject_contains: str, timeout: float = 20.0) -> EmailMessage:
        """The first email to `address` whose subject contains the text."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for message in self.mail_to(address):
                if subject_contains.lower() in str(message["Subject"]).lower():
                    return message
            await asyncio.sleep(0.1)
        subjects = [str(m["Subject"]) for m in self.mail_to(address)]
        raise AssertionError(f"no email to {address} about {subject_contains!r}; got {subjects}")


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link_in(message: EmailMessage, pattern: str = r"https?://\S+") -> str:
    match = re.search(pattern, text_of(message))
    assert match, f"no link matching {pattern} in {text_of(message)!r}"
    return match.group(0)


def _succeeded(process: subprocess.Popen[bytes], what: str) -> None:
    if process.wait() != 0:
        raise RuntimeError(f"{what} failed with exit code {process.returncode}")


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the system stopped while starting:\n{log.read_text()[-5000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready within {timeout:.0f} s:\n{log.read_text()[-5000:]}")


@contextmanager
def running_system(
    var: Path,
    run_prefix: str = "gh_e2e",
    settings: Mapping[str, str] | None = None,
    rewire: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
) -> Iterator[System]:
    """The whole system, started in `var` (logs, Maildir, state files); stopped on exit. Its
    databases, vhost and Redis key prefixes are named after `run_prefix` and a unique suffix;
    `settings` add to (or replace) the environment every process gets, and so does what `rewire`
    makes of that environment (`make chaos` puts the servers' addresses behind its proxies)."""
    run = testing.unique_name(run_prefix)
    ports = {
        name: free_port()
        for name in (
            "gateway",
            "auth",
            "billing",
            "notification",
            "web",
            "stripe",
            "oauth",
            "pwned",
            "captcha",
            "smtp",
        )
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    databases = {service: f"{run}_{service}" for service in SERVICES}
    with testing.rabbitmq_vhost(run) as amqp_url:
        db_urls = {s: asyncio.run(testing.create_database(name)) for s, name in databases.items()}
        try:
            env = {**_environment(run, urls, ports, db_urls, amqp_url, var), **(settings or {})}
            env.update(rewire(env) if rewire else {})
            # the services' migrations at once (each is a process of its own, mostly importing),
            # and the admin as soon as auth's schema stands
            migrations = {
                service: subprocess.Popen(
                    [sys.executable, "-m", f"{service}_service.cli", "migrate"], env=env, cwd=ROOT
                )
                for service in SERVICES
            }
            _succeeded(migrations.pop("auth"), "auth-service migrate")
            subprocess.run(
                [sys.executable, "-m", "auth_service.cli", "create-admin", ADMIN_EMAIL],
                env={**env, "AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD},
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            for service, migration in migrations.items():
                _succeeded(migration, f"{service}-service migrate")
            log = var / "system.log"
            commands = parse_procfile((ROOT / "Procfile").read_text()).processes
            apart = {name: Process(name, commands[name], env, var / f"{name}.log") for name in RESTARTABLE}
            under_honcho = [name for name in commands if name not in apart]
            with log.open("wb") as sink:
                honcho = subprocess.Popen(
                    [sys.executable, "-m", "honcho", "start", "-f", str(ROOT / "Procfile"), *under_honcho],
                    env=env,
                    cwd=ROOT,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                try:
                    for process in apart.values():
                        process.start()
                    for name in ("stripe", "oauth", "pwned", "captcha"):
                        _wait_ready(f"{urls[name]}/healthz", honcho, log)
                    for name in ("auth", "billing", "notification", "web", "gateway"):
                        own = apart.get(name)
                        if own is not None and own.popen is not None:
                            _wait_ready(f"{urls[name]}/readyz", own.popen, own.log)
                        else:
                            _wait_ready(f"{urls[name]}/readyz", honcho, log)
                    yield System(urls=urls, maildir=var / "mail", log=log, env=env, processes=apart)
                finally:
                    for process in apart.values():
                        process.kill()
                    honcho.send_signal(signal.SIGTERM)  # honcho stops every process
                    try:
                        honcho.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        os.killpg(honcho.pid, signal.SIGKILL)
                        honcho.wait()
        finally:
            for name in databases.values():
                asyncio.run(testing.drop_database(name))


def _environment(
    run: str, urls: dict[str, str], ports: dict[str, int], db_urls: dict[str, str], amqp_url: str, var: Path
) -> dict[str, str]:
    jwks = f"{urls['auth']}/auth/.well-known/jwks.json"
    issuer = f"{urls['gateway']}/auth"
    broker = amqp_url  # Celery reads the vhost from the URL path as aio-pika does
    values = {
        # where each process listens (the Procfile reads these)
        "GATEWAY_PORT": ports["gateway"],
        "AUTH_PORT": ports["auth"],
        "BILLING_PORT": ports["billing"],
        "NOTIFICATION_PORT": ports["notification"],
        "WEB_PORT": ports["web"],
        "STRIPE_EMULATOR_PORT": ports["stripe"],
        "OAUTH_EMULATOR_PORT": ports["oauth"],
        "PWNED_EMULATOR_PORT": ports["pwned"],
        "CAPTCHA_EMULATOR_PORT": ports["captcha"],
        "SMTP_PORT": ports["smtp"],
        "MAILDIR": var / "mail",
        "VAR_DIR": var,
        # auth-service
        "AUTH_ENVIRONMENT": "test",
        "AUTH_DATABASE_URL": db_urls["auth"],
        "AUTH_AMQP_URL": amqp_url,
        "AUTH_CELERY_BROKER_URL": broker,
        "AUTH_REDIS_KEY_PREFIX": f"{run}:auth",
        "AUTH_PUBLIC_URL": urls["gateway"],
        "AUTH_ISSUER": issuer,
        "AUTH_ARGON2_TIME_COST": 1,
        "AUTH_ARGON2_MEMORY_KIB": 8192,
        # every journey comes from 127.0.0.1: limits stay on, but well above what the suite sends
        "AUTH_CREDENTIAL_IP_LIMIT": "10000/minute",
        "AUTH_REQUEST_IP_LIMIT": "10000/minute",
        "AUTH_CREDENTIAL_ACCOUNT_LIMIT": "1000/minute",
        "AUTH_REQUEST_ACCOUNT_LIMIT": "1000/minute",
        "AUTH_GOOGLE_CLIENT_ID": "gatehouse-google-client",
        "AUTH_GOOGLE_CLIENT_SECRET": "gatehouse-google-secret",
        "AUTH_GOOGLE_DISCOVERY_URL": f"{urls['oauth']}/google/.well-known/openid-configuration",
        "AUTH_GITHUB_CLIENT_ID": "gatehouse-github-client",
        "AUTH_GITHUB_CLIENT_SECRET": "gatehouse-github-secret",
        "AUTH_GITHUB_AUTHORIZE_URL": f"{urls['oauth']}/github/login/oauth/authorize",
        "AUTH_GITHUB_TOKEN_URL": f"{urls['oauth']}/github/login/oauth/access_token",
        "AUTH_GITHUB_API_URL": f"{urls['oauth']}/github/api",
        "AUTH_OAUTH_REDIRECT_ALLOWLIST": f"https://app.e2e.gatehouse.test/,{urls['gateway']}/session/oauth/",
        "AUTH_OAUTH_REDIRECT_COOKIE_PATH": "/session",  # where the web front's landing reads it
        # passkeys: browsers refuse an IP address as RP ID, so a passkey journey browses localhost
        "AUTH_WEBAUTHN_RP_ID": "localhost",
        "AUTH_WEBAUTHN_ORIGINS": f"http://localhost:{ports['gateway']}",
        "AUTH_TRUSTED_PROXIES": '["127.0.0.1/32"]',  # as local.env: the person behind the gateway
        # breached passwords: on, as in production, against emulators/pwned
        "AUTH_PWNED_PASSWORDS_CHECK": "true",
        "AUTH_PWNED_PASSWORDS_URL": urls["pwned"],
        # bot checks: off (a journey turns them on with AUTH_CAPTCHA_MODE), against emulators/captcha
        "AUTH_CAPTCHA_SITE_KEY": "gatehouse-dev-site-key",
        "AUTH_CAPTCHA_SECRET_KEY": "gatehouse-dev-secret-key",
        "AUTH_CAPTCHA_SITEVERIFY_URL": f"{urls['captcha']}/turnstile/v0/siteverify",
        # billing-service
        "BILLING_ENVIRONMENT": "test",
        "BILLING_DATABASE_URL": db_urls["billing"],
        "BILLING_AMQP_URL": amqp_url,
        "BILLING_CELERY_BROKER_URL": broker,
        "BILLING_REDIS_KEY_PREFIX": f"{run}:billing",
        "BILLING_JWKS_URL": jwks,
        "BILLING_ISSUER": issuer,
        "BILLING_STRIPE_API_BASE": urls["stripe"],
        "BILLING_STRIPE_MAX_NETWORK_RETRIES": 0,
        "BILLING_STRIPE_WEBHOOK_SECRET": "whsec_gatehouse_e2e",
        # Checkout returns to the web front's pages, through the gateway
        "BILLING_CHECKOUT_SUCCESS_URL": urls["gateway"] + "/billing/success?session_id={CHECKOUT_SESSION_ID}",
        "BILLING_CHECKOUT_CANCEL_URL": f"{urls['gateway']}/billing/cancel",
        "BILLING_PORTAL_RETURN_URL": f"{urls['gateway']}/billing",
        # notification-service
        "NOTIFICATION_ENVIRONMENT": "test",
        "NOTIFICATION_DATABASE_URL": db_urls["notification"],
        "NOTIFICATION_AMQP_URL": amqp_url,
        "NOTIFICATION_JWKS_URL": jwks,
        "NOTIFICATION_REDIS_KEY_PREFIX": f"{run}:notification",
        "NOTIFICATION_ISSUER": issuer,
        "NOTIFICATION_SMTP_PORT": ports["smtp"],
        "NOTIFICATION_APP_URL": urls["gateway"],
        "NOTIFICATION_PUBLIC_URL": urls["gateway"],
        "NOTIFICATION_CONSUMER_RETRY_DELAYS": "[0.5, 1, 2]",
        # web: its API is the gateway, and people reach it through the gateway too
        "WEB_ENVIRONMENT": "test",
        "WEB_API_URL": urls["gateway"],
        "WEB_PUBLIC_URL": urls["gateway"],
        "WEB_LOG_JSON": "false",
        "WEB_CHECKOUT_ORIGINS": urls["stripe"],  # the emulator's Checkout page
        "WEB_CAPTCHA_SCRIPT_URL": f"{urls['captcha']}/turnstile/v0/api.js",  # the emulator's widget
        "WEB_TRUSTED_PROXIES": '["127.0.0.1/32"]',
        "GATEWAY_TRUSTED_PROXIES": '["127.0.0.1/32"]',
        # gateway
        "GATEWAY_ENVIRONMENT": "test",
        "GATEWAY_AUTH_URL": urls["auth"],
        "GATEWAY_BILLING_URL": urls["billing"],
        "GATEWAY_NOTIFICATIONS_URL": urls["notification"],
        "GATEWAY_WEB_URL": urls["web"],
        "GATEWAY_AMQP_URL": amqp_url,
        "GATEWAY_REDIS_KEY_PREFIX": f"{run}:gateway",
        "GATEWAY_JWKS_URL": jwks,
        "GATEWAY_RATE_LIMIT_RULES": json.dumps(
            [
                {"name": "credentials", "methods": ["POST"], "paths": ["/auth/**"], "ip": "5000/minute"},
                {"name": "default", "paths": ["/**"], "ip": "20000/minute", "user": "10000/minute"},
            ]
        ),
        "GATEWAY_ISSUER": issuer,
        # emulators
        "STRIPE_EMULATOR_WEBHOOK_URL": f"{urls['billing']}/billing/stripe/webhook",
        "STRIPE_WEBHOOK_SECRET": "whsec_gatehouse_e2e",
        # Stripe retries a failed delivery for three days; here 0.2 s doubling, 10 attempts (~100 s)
        "STRIPE_EMULATOR_WEBHOOK_RETRY_DELAY": 0.2,
        "STRIPE_EMULATOR_WEBHOOK_ATTEMPTS": 10,
        # every answer and event checked against Stripe's schemas (tests-e2e/conftest.py reads them)
        "STRIPE_EMULATOR_CHECK_SCHEMAS": 1,
    }
    return {**os.environ, **{key: str(value) for key, value in values.items()}}
