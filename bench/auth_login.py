"""Password-login rate vs the Argon2 bound of this machine, refresh rate, and /healthz latency
while logins run. Starts auth-service (real Argon2 parameters) on a throw-away database.

    uv run python bench/auth_login.py [--seconds 10] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from argon2 import PasswordHasher, Type

from auth_service.settings import Settings
from gatehouse_platform import testing

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "benchmark passphrase of decent length"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def argon2_seconds(samples: int = 20) -> float:
    """Median wall time of one Argon2id verification with the production parameters."""
    defaults = Settings()
    hasher = PasswordHasher(
        time_cost=defaults.argon2_time_cost,
        memory_cost=defaults.argon2_memory_kib,
        parallelism=defaults.argon2_parallelism,
        type=Type.ID,
    )
    hashed = hasher.hash(PASSWORD)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        hasher.verify(hashed, PASSWORD)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def storm(base: str, seconds: float, concurrency: int, email: str) -> tuple[int, list[float]]:
    """Logins from `concurrency` clients while another polls /healthz; returns logins and latencies."""
    stop = time.monotonic() + seconds
    done = 0
    health: list[float] = []

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def login_loop() -> None:
            nonlocal done
            while time.monotonic() < stop:
                response = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
                response.raise_for_status()
                done += 1

        async def health_loop() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=5) as probe:
                while time.monotonic() < stop:
                    start = time.perf_counter()
                    (await probe.get("/healthz")).raise_for_status()
                    health.append(time.perf_counter() - start)
                    await asyncio.sleep(0.02)

        await asyncio.gather(health_loop(), *(login_loop() for _ in range(concurrency)))
    return done, health


async def refresh_rate(base: str, seconds: float, concurrency: int, email: str) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        tokens = [
            (await http.post("/auth/login", json={"email": email, "password": PASSWORD})).json()[
                "refresh_token"
            ]
            for _ in range(concurrency)
        ]
        stop = time.monotonic() + seconds
        done = 0

        async def loop(token: str) -> None:
            nonlocal done
            while time.monotonic() < stop:
                response = await http.post("/auth/refresh-token", json={"refresh_token": token})
                response.raise_for_status()
                token = response.json()["refresh_token"]
                done += 1

        await asyncio.gather(*(loop(t) for t in tokens))
    return done


async def main(seconds: float, concurrency: int) -> None:
    name = testing.unique_name("gh_bench_auth")
    url = await testing.create_database(name)
    port = free_port()
    env = {
        **os.environ,
        "AUTH_DATABASE_URL": url,
        "AUTH_RATE_LIMITS_ENABLED": "false",
        "AUTH_LOG_LEVEL": "WARNING",
    }
    server = None
    try:
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT / "auth-service",
            env=env,
            check=True,
            capture_output=True,
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "auth_service.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(200):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
            created = await http.post(
                "/auth/register",
                json={"email": email, "username": f"b{uuid.uuid4().hex[:10]}", "password": PASSWORD},
            )
            created.raise_for_status()

        hash_s = argon2_seconds()
        cores = os.cpu_count() or 1
        bound = cores / hash_s
        logins, health = await storm(base, seconds, concurrency, email)
        login_rate = logins / seconds
        refreshes = await refresh_rate(base, seconds, concurrency, email) / seconds
        rows = [
            ("cores", f"{cores}"),
            ("Argon2id verify (m=19 MiB, t=2, p=1), median", f"{hash_s * 1000:.1f} ms"),
            ("Argon2 bound = cores / hash time", f"{bound:.1f} logins/s"),
            (f"password logins ({concurrency} clients, {seconds:.0f} s)", f"{login_rate:.1f} logins/s"),
            ("login rate / Argon2 bound (target >= 0.9)", f"{login_rate / bound:.2f}"),
            (f"refreshes ({concurrency} clients)", f"{refreshes:.1f} refreshes/s"),
            ("/healthz during the login storm p50", f"{percentile(health, 50) * 1000:.2f} ms"),
            (
                "/healthz during the login storm p99 (target <= 10 ms)",
                f"{percentile(health, 99) * 1000:.2f} ms",
            ),
            ("/healthz samples", f"{len(health)}"),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"\n| {'measure'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|")
        for label, value in rows:
            print(f"| {label.ljust(width)} | {value} |")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        await testing.drop_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
