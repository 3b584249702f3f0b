"""Password-login rate against the Argon2 bound of this machine, refresh rate, and /healthz latency
while the logins run; then the CPU of a whole sign-in with a second factor (password + TOTP code)
and with a passkey alone, each against a password-only sign-in measured the same way. Starts
auth-service (production Argon2 parameters) on a throw-away database.

    uv run python bench/auth_login.py [--seconds 10] [--connections 8] [--sign-ins 160] [--tracing]

With --tracing, auth-service runs with OpenTelemetry on (every request sampled, spans exported over
OTLP/HTTP to a receiver this script holds); without it, with no OTEL_* variable at all. Run it both
ways to see what tracing costs a sign-in.

The Argon2 bound is cores ÷ the measured time of one verification. It is measured twice: one hash
alone (the textbook figure), and as many hashes at once as there are cores (what the machine can
really sustain, since parallel hashes share memory bandwidth and caches). wrk drives the logins;
a Python probe samples /healthz every 20 ms meanwhile.

Refreshes run under wrk too, one chain per wrk thread (each refresh rotates the token, so a Lua
script takes the successor from every answer). The CPU rows give, per sign-up, login and refresh,
all of auth-service's CPU (its event loop's in brackets) plus PostgreSQL's and Redis's (every such
process on the machine: other work there counts too); their sums go to `support.record_costs`.

Where a login's time went (December 2026, split of CPU by thread, statements counted with
SQLAlchemy's before_cursor_execute in auth-service/tests/test_statement_counts.py): besides the
Argon2 pool, the event loop spent ~13 ms per login on 7 statements (the pool's pre-ping added a
round trip to each checkout), a count of the user's whole sign-in history (it grows with every
sign-in), ORM flushes of four rows, and sync dependencies each hopping to the thread pool. A refresh
was 4 statements. Now: the pool pings only a connection idle over 1 s, the sign-in memory is three
EXISTS, a login's session, first refresh token and last-sign-in stamp go in one prebuilt Core
statement (5 in all: user, factors, memory, that one, the audit row), a refresh is its row lock and
one statement, and the dependencies are async. Measured with this script (`--seconds 5 --sign-ins
60` and 30), before and after in turns, load 1.6 to 2.5: refresh 304 and 373/s -> 727 and 738/s
(auth-service CPU 2.5-2.8 -> 1.3-1.4 ms each); event-loop CPU per login 7.0-7.9 -> 6.3 ms (13 ms at
load 4 before). A py-spy profile of the event loop during the login storm after these changes (`py-
spy record -r 200 -f raw` on auth-service, 12 s, 1,173 samples of the event-loop thread and its
greenlets, load ~2): uvloop's own loop (sockets, wake-ups) 19%, asyncpg executing the 5 statements
15%, SQLAlchemy's layers over them (session, compile cache, result) ~12%, Starlette/FastAPI
middleware and routing ~10%, writing the response 6.5%, RS256 signing 4.6%, the audit row 4.9%. No
one part is the 2.5 ms left to the 4 ms target: merging the user, factors and sign-in memory reads
would save about two statements (~0.7 ms).

What the Argon2 bound allows on 2 cores: two hashes at once take 2 / 113.7/s = 17.6 ms of CPU
each (one alone: 15.0-15.9 ms; they share memory bandwidth), so with no other work at all a login
could reach 0.91 of the bound; 0.85 of it leaves ~1.2 ms per login for the event loop, PostgreSQL
and Redis together. With the event loop at the 4 ms target the ceiling is about 0.70; at today's
6.2-6.5 ms, 0.58-0.60 (the measured 0.50-0.55 is that ceiling less queueing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pyotp
from argon2 import PasswordHasher, Type

from auth_service.settings import Settings
from gatehouse_platform import testing
from support import (
    ROOT,
    WrkResult,
    children,
    cpu_seconds,
    free_port,
    lua_request,
    new_account,
    percentile,
    pids_named,
    print_table,
    record_costs,
    run_wrk,
    thread_cpu_seconds,
    tracing_env,
    wait_ready,
)

sys.path.insert(0, str(ROOT / "tests-e2e"))
from otlp import Received, otlp_receiver  # the e2e tests' OTLP/HTTP receiver: one copy

sys.path.insert(0, str(ROOT / "auth-service" / "tests"))
from authenticator import SoftAuthenticator  # auth-service tests' software authenticator: one copy

PASSWORD = "benchmark passphrase of decent length"


def argon2_hasher() -> PasswordHasher:
    production = Settings()
    return PasswordHasher(
        time_cost=production.argon2_time_cost,
        memory_cost=production.argon2_memory_kib,
        parallelism=production.argon2_parallelism,
        type=Type.ID,
    )


def argon2_alone_seconds(samples: int = 30) -> float:
    """Median wall time of one verification with nothing else running."""
    hasher = argon2_hasher()
    hashed = hasher.hash(PASSWORD)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        hasher.verify(hashed, PASSWORD)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def argon2_parallel_rate(threads: int, hashes: int = 200) -> float:
    """Verifications per second with `threads` running at once (argon2-cffi releases the GIL)."""
    hasher = argon2_hasher()
    hashed = hasher.hash(PASSWORD)
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(pool.map(lambda _: hasher.verify(hashed, PASSWORD), range(hashes)))
        return hashes / (time.perf_counter() - start)


async def probe_health(base: str, stop: asyncio.Event) -> list[float]:
    samples: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=5) as probe:
        while not stop.is_set():
            start = time.perf_counter()
            (await probe.get("/healthz")).raise_for_status()
            samples.append(time.perf_counter() - start)
            await asyncio.sleep(0.02)
    return samples


def refresh_chains_lua(tokens: list[str]) -> str:
    """A wrk script for refreshes: refresh rotates the token on every call, so each wrk thread
    (one connection each) carries its own chain, taking the successor from every answer."""
    listed = ", ".join(f'"{token}"' for token in tokens)
    return f"""
local tokens = {{{listed}}}
local next_chain = 1
function setup(thread)
  thread:set("token", tokens[next_chain])
  next_chain = next_chain + 1
end
function request()
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json"}},
    '{{"refresh_token": "' .. token .. '"}}')
end
function response(status, headers, body)
  local successor = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if successor then token = successor end
end
"""


def backend_cpu() -> dict[int, float]:
    """CPU so far of each PostgreSQL and Redis process."""
    return cpu_by_pid(pids_named("postgres") + pids_named("redis-server"))


def backend_cpu_since(before: dict[int, float]) -> float:
    """What PostgreSQL and Redis spent since `before`: a backend that ended meanwhile is left out
    (its CPU can no longer be read: subtracting it made the figure go negative), one that started
    meanwhile counts whole."""
    after = backend_cpu()
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())


def auth_cpu(server: int) -> float:
    """All of auth-service's processes (uvicorn and any child)."""
    return cpu_seconds([server, *children(server)])


async def sign_up_cpu(base: str, server: int, count: int, connections: int) -> tuple[float, float]:
    """(auth-service CPU, PostgreSQL + Redis CPU) per sign-up (POST /auth/register)."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        limit = asyncio.Semaphore(connections)

        async def sign_up() -> None:
            async with limit:
                account = {
                    "email": f"bench-{uuid.uuid4().hex[:12]}@example.com",
                    "username": f"b{uuid.uuid4().hex[:12]}",
                    "password": PASSWORD,
                }
                (await http.post("/auth/register", json=account)).raise_for_status()

        own_before, others_before = auth_cpu(server), backend_cpu()
        await asyncio.gather(*(sign_up() for _ in range(count)))
        return (auth_cpu(server) - own_before) / count, backend_cpu_since(others_before) / count


async def refresh_storm(
    base: str, server: int, seconds: float, chains: int, email: str
) -> tuple[WrkResult, float, float, float]:
    """Refreshes under wrk, one chain per wrk thread: the result, and per refresh the CPU of
    auth-service, of its event loop, and of PostgreSQL + Redis."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        login = {"email": email, "password": PASSWORD}
        tokens = [(await http.post("/auth/login", json=login)).json()["refresh_token"] for _ in range(chains)]
    own_before, loop_before, others_before = auth_cpu(server), thread_cpu_seconds(server), backend_cpu()
    storm = await run_wrk(
        f"{base}/auth/refresh-token",
        seconds=seconds,
        connections=chains,
        threads=chains,
        script=refresh_chains_lua(tokens),
    )
    done = max(storm.requests, 1)
    own = (auth_cpu(server) - own_before) / done
    loop = (thread_cpu_seconds(server).get("main", 0.0) - loop_before.get("main", 0.0)) / done
    return storm, own, loop, backend_cpu_since(others_before) / done


def costs_rows(costs: dict[str, tuple[float, float | None, float]]) -> list[tuple[str, str]]:
    """Rows of CPU ms per operation: all of auth-service, its event loop, PostgreSQL + Redis."""
    return [
        (
            f"CPU per {operation}: auth-service (event loop) + PostgreSQL and Redis",
            f"{own * 1000:.1f} ms"
            + (f" ({loop * 1000:.1f} ms)" if loop is not None else "")
            + f" + {backends * 1000:.1f} ms",
        )
        for operation, (own, loop, backends) in costs.items()
    ]


async def with_totp(http: httpx.AsyncClient) -> tuple[str, pyotp.TOTP]:
    email, bearer = await new_account(http, PASSWORD)
    setup = await http.post("/auth/mfa/totp/setup", headers=bearer)
    setup.raise_for_status()
    app = pyotp.TOTP(setup.json()["secret"])
    (await http.post("/auth/mfa/totp/confirm", json={"code": app.now()}, headers=bearer)).raise_for_status()
    return email, app


async def with_passkey(http: httpx.AsyncClient) -> SoftAuthenticator:
    _email, bearer = await new_account(http, PASSWORD)
    options = await http.post("/auth/passkeys/register/options", headers=bearer)
    options.raise_for_status()
    authenticator = SoftAuthenticator()
    credential = authenticator.create(options.json())
    registered = await http.post(
        "/auth/passkeys/register/verify", json={"credential": credential, "name": "bench"}, headers=bearer
    )
    registered.raise_for_status()
    return authenticator


async def password_sign_in(http: httpx.AsyncClient, email: str) -> None:
    response = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    assert "access_token" in response.json()


async def password_step(http: httpx.AsyncClient, email: str) -> str:
    """The first step of a sign-in with a second factor: its mfa_token."""
    first = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
    first.raise_for_status()
    challenge = first.json()
    assert challenge["mfa_required"], challenge
    return str(challenge["mfa_token"])


async def code_step(http: httpx.AsyncClient, mfa_token: str, app: pyotp.TOTP) -> None:
    # the next time-step's code (accepted for clock drift): the current one confirmed the setup
    code = app.at(time.time() + 30)
    second = await http.post("/auth/login/mfa", json={"mfa_token": mfa_token, "code": code})
    second.raise_for_status()
    assert "access_token" in second.json()


async def passkey_sign_in(http: httpx.AsyncClient, authenticator: SoftAuthenticator) -> None:
    options = await http.post("/auth/passkeys/login/options")
    options.raise_for_status()
    response = await http.post(
        "/auth/passkeys/login/verify", json={"credential": authenticator.get(options.json())}
    )
    response.raise_for_status()
    assert "access_token" in response.json()


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


async def measure(server: int, chains: list[list[Any]]) -> tuple[float, float]:
    """(auth-service CPU, PostgreSQL + Redis CPU) while the chains run, each chain in order and
    the chains at once. A database backend that ends meanwhile is left out of both readings."""

    async def run(chain: list[Any]) -> None:
        for job in chain:
            await job()

    own_before, others_before = cpu_seconds([server]), backend_cpu()
    await asyncio.gather(*(run(chain) for chain in chains))
    return cpu_seconds([server]) - own_before, backend_cpu_since(others_before)


async def sign_in_cpu(
    base: str, server: int, kind: str, count: int, connections: int
) -> tuple[float, float, float]:
    """(auth-service CPU, PostgreSQL + Redis CPU, auth-service CPU of the second step) per sign-in
    of one kind. Accounts are made first, outside the measure: one per TOTP sign-in (a code is
    accepted once per account and time-step), one per connection for passkeys (each
    authenticator's counter moves on in order: one chain of sign-ins per connection)."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        limit = asyncio.Semaphore(connections)

        async def made(factory: Any) -> Any:
            async with limit:
                return await factory(http)

        chains: list[list[Any]] = [[] for _ in range(connections)]
        second_step: tuple[float, float] = (0.0, 0.0)
        if kind == "password":
            email, _bearer = await new_account(http, PASSWORD)
            for i in range(count):
                chains[i % connections].append(lambda: password_sign_in(http, email))
            await asyncio.sleep(1)  # let the account's events and emails settle out of the measure
            own, shared = await measure(server, chains)
        elif kind == "totp":
            accounts = await asyncio.gather(*(made(with_totp) for _ in range(count)))
            await asyncio.sleep(1)
            tokens: dict[int, str] = {}

            async def first(i: int, email: str) -> None:
                tokens[i] = await password_step(http, email)

            for i, (email, _app) in enumerate(accounts):
                chains[i % connections].append(lambda i=i, e=email: first(i, e))
            own, shared = await measure(server, chains)
            seconds: list[list[Any]] = [[] for _ in range(connections)]
            for i, (_email, app) in enumerate(accounts):
                seconds[i % connections].append(lambda i=i, a=app: code_step(http, tokens[i], a))
            second_step = await measure(server, seconds)
            own, shared = own + second_step[0], shared + second_step[1]
        else:
            keys = await asyncio.gather(*(made(with_passkey) for _ in range(connections)))
            for i in range(count):
                chains[i % connections].append(lambda k=keys[i % connections]: passkey_sign_in(http, k))
            await asyncio.sleep(1)
            own, shared = await measure(server, chains)
    return own / count, shared / count, second_step[0] / count


async def main(seconds: float, connections: int, sign_ins: int, tracing: bool) -> None:
    if not tracing:
        await bench(seconds, connections, sign_ins, tracing=None)
        return
    with otlp_receiver() as traces:
        await bench(seconds, connections, sign_ins, tracing=traces)
        print(f"spans auth-service exported: {len(traces.all())}")


async def bench(seconds: float, connections: int, sign_ins: int, *, tracing: Received | None) -> None:
    name = testing.unique_name("gh_bench_auth")
    url = await testing.create_database(name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        **(tracing_env(tracing.endpoint, "auth-service") if tracing else {}),
        "AUTH_DATABASE_URL": url,
        "AUTH_RATE_LIMITS_ENABLED": "false",
        "AUTH_LOG_LEVEL": "WARNING",
        "AUTH_REDIS_KEY_PREFIX": name,
    }
    server = None
    try:
        await testing.migrate(ROOT / "auth-service", url)
        server = subprocess.Popen(
            [sys.executable, "-m", "auth_service.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await wait_ready(base, within=120)  # a loaded machine starts it slowly
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        async with httpx.AsyncClient(base_url=base) as http:
            created = await http.post(
                "/auth/register",
                json={"email": email, "username": f"b{uuid.uuid4().hex[:10]}", "password": PASSWORD},
            )
            created.raise_for_status()

        cores = os.cpu_count() or 1
        alone = argon2_alone_seconds()
        parallel = argon2_parallel_rate(cores)
        login = lua_request(
            "POST", json.dumps({"email": email, "password": PASSWORD}), {"Content-Type": "application/json"}
        )
        stop = asyncio.Event()
        probe = asyncio.create_task(probe_health(base, stop))
        threads_before, postgres_before = thread_cpu_seconds(server.pid), backend_cpu()
        own_before = auth_cpu(server.pid)
        try:
            storm = await run_wrk(
                f"{base}/auth/login", seconds=seconds, connections=connections, script=login
            )
        finally:
            stop.set()
            health = await probe
        threads_after, own_after = thread_cpu_seconds(server.pid), auth_cpu(server.pid)
        threads = {name: spent - threads_before.get(name, 0.0) for name, spent in threads_after.items()}
        postgres = backend_cpu_since(postgres_before)
        refreshes, refresh_own, refresh_loop, refresh_backends = await refresh_storm(
            base, server.pid, seconds, connections, email
        )
        sign_up_own, sign_up_backends = await sign_up_cpu(base, server.pid, 2 * connections, connections)

        bound_alone = cores / alone
        logins = storm.requests_per_second * seconds
        # Python names its threads for itself only: the OS sees the event loop ("main") and the rest,
        # which while logins run are the Argon2 pool's threads.
        hashing = sum(spent for name, spent in threads.items() if name != "main")
        per_login = {
            "other threads (the Argon2 pool)": hashing / logins,
            "event loop (HTTP, SQLAlchemy + asyncpg, JWT, JSON)": threads.get("main", 0.0) / logins,
            "PostgreSQL + Redis": postgres / logins,
        }
        login_own = (own_after - own_before) / logins
        needed = sum(per_login.values())
        rows = [
            ("cores", f"{cores}"),
            ("Argon2id verify alone (m=19 MiB, t=2, p=1), median", f"{alone * 1000:.1f} ms"),
            ("Argon2 bound = cores / hash time", f"{bound_alone:.1f} logins/s"),
            (
                f"Argon2 verifies with {cores} threads at once (the machine's real capacity)",
                f"{parallel:.1f} /s",
            ),
            (
                f"password logins (wrk, {connections} connections, {seconds:.0f} s)",
                f"{storm.requests_per_second:.1f} /s",
            ),
            ("login p50 / p99", f"{storm.p50_ms:.1f} ms / {storm.p99_ms:.1f} ms"),
            ("failed logins (non-2xx or socket errors)", f"{storm.errors}"),
            ("login rate / Argon2 bound (target >= 0.85)", f"{storm.requests_per_second / bound_alone:.2f}"),
            ("login rate / parallel Argon2 capacity", f"{storm.requests_per_second / parallel:.2f}"),
            *((f"CPU per login: {part}", f"{spent * 1000:.1f} ms") for part, spent in per_login.items()),
            (
                "most logins/s that CPU allows = cores / CPU per login",
                f"{cores / needed:.1f} /s ({cores / needed / bound_alone:.2f} of the bound)",
            ),
            (
                f"refreshes (wrk, {connections} chains, {seconds:.0f} s; target >= 400/s)",
                f"{refreshes.requests_per_second:.1f} /s, p50 {refreshes.p50_ms:.1f} ms, "
                f"{refreshes.errors} failed",
            ),
            *costs_rows(
                {
                    "sign-up": (sign_up_own, None, sign_up_backends),
                    "login": (login_own, threads.get("main", 0.0) / logins, postgres / logins),
                    "refresh": (refresh_own, refresh_loop, refresh_backends),
                }
            ),
            ("/healthz during the login storm p50", f"{percentile(health, 50) * 1000:.2f} ms"),
            (
                "/healthz during the login storm p99 (target <= 10 ms)",
                f"{percentile(health, 99) * 1000:.2f} ms",
            ),
            ("/healthz samples", f"{len(health)}"),
        ]
        print_table(rows)
        record_costs(
            "auth_login",
            {
                "sign-up": (sign_up_own + sign_up_backends) * 1000,
                "login": (login_own + postgres / logins) * 1000,
                "refresh": (refresh_own + refresh_backends) * 1000,
            },
            " ".join(["uv run python bench/auth_login.py", *sys.argv[1:]]),
        )

        # the kinds take turns, a few rounds each, so a shared machine's busy spells fall on all
        rounds, totals = 6, {kind: (0.0, 0.0, 0.0) for kind in ("password", "totp", "passkey")}
        for _ in range(rounds):
            for kind, (own_sum, shared_sum, step_sum) in totals.items():
                own, shared, step = await sign_in_cpu(base, server.pid, kind, sign_ins // rounds, connections)
                totals[kind] = (
                    own_sum + own / rounds,
                    shared_sum + shared / rounds,
                    step_sum + step / rounds,
                )
        measured = totals
        password_cpu = measured["password"][0]
        labels = {
            "password": "password only (POST /auth/login)",
            "totp": "password + TOTP code (login, then login/mfa)",
            "passkey": "passkey alone (login/options, then login/verify)",
        }
        kinds = [
            (
                f"CPU per sign-in: {labels[kind]}",
                f"{own * 1000:.1f} ms = {own / password_cpu:.2f}x password only (target <= 1.2x); "
                f"PostgreSQL + Redis {shared * 1000:.1f} ms",
            )
            for kind, (own, shared, _step) in measured.items()
        ]
        kinds.insert(
            2,
            ("  of which the code step (POST /auth/login/mfa)", f"{measured['totp'][2] * 1000:.1f} ms"),
        )
        print(f"\n{sign_ins} sign-ins of each kind in {rounds} turns, {connections} at once:")
        print_table(kinds)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        await testing.drop_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--sign-ins", type=int, default=180, help="of each kind, for the CPU table")
    parser.add_argument("--tracing", action="store_true", help="OpenTelemetry on, every request sampled")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.connections, args.sign_ins, args.tracing))
