"""Helpers for tests: a throw-away Postgres database and RabbitMQ vhost per test run, a test
token issuer, and an ASGI app served over real HTTP from a thread (`serve_in_thread`).

Every test run creates its own names (random suffix) and drops them afterwards, so two runs on
one machine never collide and nothing is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, overload
from urllib.parse import quote

import asyncpg
import httpx
import jwt
import uvicorn
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from gatehouse_contracts.revocations import JWKS_PATH, REVOCATIONS_PATH, Revocations
from gatehouse_contracts.tokens import ACCESS_TOKEN_TYP, ALGORITHM
from gatehouse_platform.jwt import public_jwk

PG_ADMIN_DSN = os.environ.get("GATEHOUSE_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOST = os.environ.get("GATEHOUSE_TEST_PG_HOST", "postgres@127.0.0.1:5432")
AMQP_HOST = os.environ.get("GATEHOUSE_TEST_AMQP_HOST", "guest:guest@127.0.0.1:5672")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, *, port: int | None = None, startup_timeout: float = 15.0) -> Iterator[str]:
    """Serve the ASGI `app` on 127.0.0.1 from a background thread and yield its base URL; stop the
    server on exit. How tests start an emulator or a stand-in over real HTTP without a process."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


async def create_database(name: str) -> str:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{PG_HOST}/{name}"


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def rows_mentioning(database_url: str, *needles: str) -> dict[str, int]:
    """How many rows of each table of the database (every column, as text) contain any of
    `needles`, case-insensitively: the tables where an erased person's data is still found."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        patterns = [
            "%" + n.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for n in needles
        ]
        found: dict[str, int] = {}
        for (table,) in tables:
            count = await conn.fetchval(
                f'SELECT count(*) FROM "{table}" AS r WHERE r::text ILIKE ANY($1::text[])',  # noqa: S608
                patterns,
            )
            if count:
                found[table] = int(count)
        return found
    finally:
        await conn.close()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)  # noqa: S603, S607


@contextmanager
def rabbitmq_vhost(name: str) -> Iterator[str]:
    """A fresh vhost with full rights for guest; yields its AMQP URL, deletes it afterwards."""
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://{AMQP_HOST}/{quote(name, safe='')}"
    finally:
        _rabbitmqctl("delete_vhost", name)


class TestIssuer:
    """Mints access tokens the way auth-service does, with a key of its own, for services that
    verify tokens through a JWKS (`JWKSVerifier`).

    Serve `jwks()` over HTTP (a tiny ASGI app in a thread) and point the service's JWKS URL at it;
    `token()` returns an RS256 JWT with header `kid` and `typ: at+jwt` whose claims are an
    `AccessTokenClaims` (`iss`, `aud`, `sub`, `iat`, `nbf`, `exp`, `jti`, `sid`, `email`,
    `email_verified`, `roles`). Any claim can be overridden or added, e.g. `exp=` for an expired
    token or `iss=` for a foreign one; overrides are not validated, so broken tokens can be made too.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        *,
        issuer: str = "http://127.0.0.1:8000/auth",
        audience: str = "gatehouse",
        kid: str | None = None,
        ttl_seconds: int = 900,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = kid or f"test-{secrets.token_hex(4)}"
        self.ttl_seconds = ttl_seconds
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.revocations = Revocations(since=datetime.now(UTC), sessions=[], users=[])

    def jwks_app(self) -> FastAPI:
        """An app publishing `jwks()` where auth-service publishes its keys (`JWKS_PATH`), and the
        revocation list (`revocations`, empty unless a test adds to it) where auth-service serves
        it; serve it over HTTP (e.g. `serve_in_thread`) for verifiers to fetch."""
        app = FastAPI()
        app.add_api_route(JWKS_PATH, self.jwks, methods=["GET"])
        app.add_api_route(REVOCATIONS_PATH, lambda: self.revocations, methods=["GET"])
        return app

    def jwks(self) -> dict[str, Any]:
        """The JWKS document publishing this issuer's public key."""
        return {"keys": [public_jwk(self.private_key.public_key(), self.kid)]}

    def token(
        self,
        sub: uuid.UUID | str | None = None,
        *,
        roles: Iterable[str] = (),
        email: str = "ada@example.com",
        email_verified: bool = True,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(sub or uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "sid": str(uuid.uuid4()),
            "email": email,
            "email_verified": email_verified,
            "roles": list(roles),
        }
        payload.update(claims)
        return jwt.encode(
            payload, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": ACCESS_TOKEN_TYP}
        )

    def bearer(self, sub: uuid.UUID | str | None = None, **kwargs: Any) -> dict[str, str]:
        """`Authorization` header carrying `token(sub, **kwargs)`."""
        return {"Authorization": f"Bearer {self.token(sub, **kwargs)}"}


def alembic_config(service_root: Path, url: str) -> Config:
    """A service's Alembic config aimed at `url`, as `alembic -x url=...` would be."""
    config = Config(str(service_root / "alembic.ini"))
    config.attributes["configure_logger"] = False  # keep pytest's logging as it is
    config.cmd_opts = argparse.Namespace(x=[f"url={url}"])
    return config


@asynccontextmanager
async def migrated_database(name: str, service_root: Path) -> AsyncIterator[str]:
    """A database of this name with the service's migrations applied; dropped afterwards."""
    url = await create_database(name)
    try:
        await migrate(service_root, url)
        yield url
    finally:
        await drop_database(name)


async def migrate(service_root: Path, url: str) -> None:
    """Bring a test database to the service's newest schema, through its real migrations."""
    await asyncio.to_thread(command.upgrade, alembic_config(service_root, url), "head")


T = TypeVar("T")


@overload
async def eventually(
    check: Callable[[], Awaitable[T]], what: str, *, within: float = ..., every: float = ...
) -> T: ...


@overload
async def eventually(check: Callable[[], T], what: str, *, within: float = ..., every: float = ...) -> T: ...


async def eventually(
    check: Callable[[], Any], what: str, *, within: float = 10.0, every: float = 0.05
) -> Any:
    """Poll `check` (plain or async) until it returns something truthy, and return that; fail the
    test with `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        outcome = check()
        result = await outcome if inspect.isawaitable(outcome) else outcome
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(every)


async def wait_ready(base_url: str, path: str = "/readyz", *, within: float = 30.0) -> None:
    """Until the service at `base_url` answers 200 on `path` (a process that is still starting)."""

    async def ready() -> bool:
        try:
            return (await http.get(f"{base_url}{path}")).status_code == 200
        except httpx.TransportError:
            return False

    async with httpx.AsyncClient(timeout=5) as http:
        await eventually(ready, f"{base_url}{path} to answer 200", within=within, every=0.1)


# How a service that drained gracefully on SIGTERM exits (uvicorn re-raises the signal it caught).
GRACEFUL_EXITS = (0, -signal.SIGTERM)
STARTUP_COMPLETE = "Application startup complete."  # what each uvicorn worker logs once started


class ServiceProcess:
    """A service run as a real process, `python -m <cli_module> serve --port N [serve_args]`, as it
    runs in production: for tests that signal it (SIGTERM mid-load) or restart it. Its output goes
    to a temporary file, whose end a `wait` that times out shows."""

    def __init__(
        self, cli_module: str, env: dict[str, str], port: int, serve_args: Sequence[str] = ()
    ) -> None:
        self.cli_module, self.env, self.port = cli_module, env, port
        self.serve_args = list(serve_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.output = tempfile.NamedTemporaryFile(prefix=f"{cli_module}-", suffix=".log")  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, *, within: float = 60.0, workers: int = 1) -> None:
        """Start it and wait (up to `within` seconds) until /readyz answers 200 and each of its
        uvicorn `workers` has finished its startup (one answering says nothing of the others)."""
        # Popen only spawns (the service runs on beside the test); S603: our interpreter and module
        self.process = subprocess.Popen(  # noqa: S603, ASYNC220
            [sys.executable, "-m", self.cli_module, "serve", "--port", str(self.port), *self.serve_args],
            env=self.env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own, which `kill` ends with its workers
        )
        await wait_ready(self.url, within=within)
        await eventually(
            lambda: self.log().count(STARTUP_COMPLETE) >= workers, f"{workers} workers started", within=within
        )

    def sigterm(self) -> None:
        assert self.process is not None, "not started"
        self.process.send_signal(signal.SIGTERM)

    async def wait(self, *, within: float = 60) -> int:
        """Its exit status (one of GRACEFUL_EXITS when it drained as it should)."""
        assert self.process is not None, "not started"
        try:
            return await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            ends = self.tail()
            raise AssertionError(f"still running after {within:.0f} s; its output ends:\n{ends}") from None

    def log(self) -> str:
        """All the process wrote so far."""
        return Path(self.output.name).read_text(errors="replace")

    def tail(self, lines: int = 80) -> str:
        """The last `lines` lines the process wrote."""
        return "\n".join(self.log().splitlines()[-lines:])

    async def terminate(self, *, within: float = 60) -> int:
        """SIGTERM, then its exit status."""
        self.sigterm()
        return await self.wait(within=within)

    def kill(self) -> None:
        """Clean-up: whatever still runs of its process group is killed (uvicorn's worker processes
        too: killing their parent alone would leave them running)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.output.close()
