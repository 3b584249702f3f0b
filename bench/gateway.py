"""What the gateway costs: an authenticated GET /auth/me straight to auth-service, through the
gateway (edge token check with the Redis denylist, Redis rate limits, streaming proxy), and
through nginx as a plain reverse proxy (keep-alive upstream), at the same concurrency in one run.
Starts auth-service, the gateway and nginx (Debian's, installed when missing) itself, a second
gateway that only proxies (no edge token check, no rate limits, so no Redis round trip): the
difference between the two gateway rows is what the edge's checks cost; and a third gateway like
the first with OpenTelemetry on (every request sampled, spans exported over OTLP/HTTP to a receiver
this script holds): the difference to the first is what tracing costs. The first gateway row is the
one with tracing off (no OTEL_* variable set). The "API key" row sends `Bearer gk_live_…` to the
first gateway: the key's exchange (with auth-service, once, in the warm-up) is remembered, so the
row is what a remembered key costs next to a JWT (target: at most 1.2x a JWT request's CPU, and
throughput at least 1/1.2 of it).

    uv run python bench/gateway.py [--seconds 8] [--rounds 8] [--connections 1,16]

wrk drives the load. Each round runs every target for seconds/rounds, back to back, in an order
that rotates from round to round; a proxy is compared with the direct run of the same round (a
paired comparison: this machine's speed drifts by tens of percent over a minute, far more than a
proxy costs). "vs direct" is the median over rounds of the proxy's req/s over direct's, "p50 added"
the median of its p50 minus direct's; req/s is over all rounds, p50 and p99 the medians of the
rounds'. "proxy CPU" is the CPU time the proxy process(es) spent per request (from /proc).

What one authenticated request through the gateway costs the system (the gateway's CPU and
auth-service's, per request at the last connection count run, 16 by default, over all its rounds) is kept
with `support.record_costs` as "gateway request" for `bench/summary.py`'s cost table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gatehouse_platform import testing
from support import (
    ROOT,
    WrkResult,
    children,
    cpu_seconds,
    ensure_debian_tool,
    free_port,
    lua_request,
    record_costs,
    run_wrk,
    tracing_env,
    wait_ready,
)

sys.path.insert(0, str(ROOT / "tests-e2e"))
from otlp import Received, otlp_receiver  # the e2e tests' OTLP/HTTP receiver: one copy

PASSWORD = "benchmark passphrase of decent length"
DIRECT, GATEWAY, NGINX = "direct (auth-service)", "through the gateway", "through nginx (plain proxy)"
PASS_THROUGH = "gateway, proxying only"  # no token check, no rate limits: no Redis on the path
TRACED = "through the gateway, tracing on"
API_KEY = "through the gateway, API key"
NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    upstream auth {{ server 127.0.0.1:{upstream}; keepalive 64; keepalive_requests 1000000; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


@dataclass
class Runs:
    results: list[WrkResult] = field(default_factory=list)
    seconds: float = 0.0
    proxy_cpu: float = 0.0
    system_cpu: float = 0.0  # the proxy's and auth-service's: what a request costs the system

    @property
    def requests_per_second(self) -> float:
        return sum(r.requests for r in self.results) / self.seconds

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in self.results)

    def paired(self, direct: Runs) -> tuple[float, float]:
        """Median over rounds of (req/s ÷ direct's, p50 − direct's), each against its own round."""
        pairs = list(zip(self.results, direct.results, strict=True))
        ratio = statistics.median(r.requests / d.requests for r, d in pairs)
        added = statistics.median(r.p50_ms - d.p50_ms for r, d in pairs)
        return ratio, added


def start_nginx(upstream_port: int, workdir: Path) -> tuple[subprocess.Popen[bytes] | None, int, str]:
    """nginx as a plain reverse proxy in front of auth-service, or why it is unavailable."""
    try:
        nginx = ensure_debian_tool("nginx")
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        return None, 0, f"nginx could not be installed: {str(exc)[:120]}"
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, upstream=upstream_port, port=port))
    process = subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(workdir), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port, ""


async def main(seconds: float, rounds: int, connection_counts: list[int], command: str) -> None:
    name = testing.unique_name("gh_bench_gateway")
    # queues and exchange go with the vhost afterwards
    with testing.rabbitmq_vhost(name) as amqp_url, otlp_receiver() as traces:
        await bench(name, amqp_url, traces, seconds, rounds, connection_counts, command)


async def bench(
    name: str,
    amqp_url: str,
    traces: Received,
    seconds: float,
    rounds: int,
    connection_counts: list[int],
    command: str,
) -> None:
    url = await testing.create_database(name)
    unlimited = "1000000000/minute"  # counted in Redis as usual, never reached
    auth_port, gateway_port, pass_through_port, traced_port = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    )
    limits = json.dumps(
        [{"name": "default", "paths": ["/**"], "ip": unlimited, "user": unlimited, "api_key": unlimited}]
    )
    processes: list[subprocess.Popen[bytes]] = []
    workdir = Path(tempfile.mkdtemp(prefix="gh-bench-gateway-"))
    gateway_env = {
        "GATEWAY_AUTH_URL": f"http://127.0.0.1:{auth_port}",
        "GATEWAY_AMQP_URL": amqp_url,
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_REDIS_KEY_PREFIX": name,
        "GATEWAY_CONSUMER_NAME": name,
    }
    services = [
        (
            "auth_service.cli",
            auth_port,
            {
                "AUTH_DATABASE_URL": url,
                "AUTH_AMQP_URL": amqp_url,
                "AUTH_RATE_LIMITS_ENABLED": "false",
                "AUTH_LOG_LEVEL": "WARNING",
                "AUTH_REDIS_KEY_PREFIX": name,
            },
        ),
        ("gateway.cli", gateway_port, {**gateway_env, "GATEWAY_RATE_LIMIT_RULES": limits}),
        (
            "gateway.cli",
            pass_through_port,
            {**gateway_env, "GATEWAY_ACCESS_RULES": "[]", "GATEWAY_RATE_LIMIT_RULES": "[]"},
        ),
        (
            "gateway.cli",
            traced_port,
            {
                **gateway_env,
                "GATEWAY_RATE_LIMIT_RULES": limits,
                "GATEWAY_CONSUMER_NAME": f"{name}-traced",
                **tracing_env(traces.endpoint, "gateway"),
            },
        ),
    ]
    # The bench's own environment must not turn tracing on where it is meant to be off.
    untraced = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    try:
        await testing.migrate(ROOT / "auth-service", url)
        for module, port, env in services:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", module, "serve", "--port", str(port)],
                    env={**untraced, **env},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        starting = 120.0  # four processes importing at once on a busy machine
        await wait_ready(f"http://127.0.0.1:{auth_port}", within=starting)
        await wait_ready(f"http://127.0.0.1:{gateway_port}", "/healthz", within=starting)
        await wait_ready(f"http://127.0.0.1:{pass_through_port}", "/healthz", within=starting)
        await wait_ready(f"http://127.0.0.1:{traced_port}", "/healthz", within=starting)

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{auth_port}") as http:
            email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
            registered = await http.post(
                "/auth/register",
                json={"email": email, "username": f"b{uuid.uuid4().hex[:10]}", "password": PASSWORD},
            )
            registered.raise_for_status()
            login = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
            login.raise_for_status()
            token = login.json()["access_token"]
            created = await http.post(
                "/auth/api-keys",
                json={"name": "bench", "scopes": ["profile:read"]},
                headers={"Authorization": f"Bearer {token}"},
            )
            created.raise_for_status()
            api_key = created.json()["key"]

        nginx, nginx_port, nginx_unavailable = start_nginx(auth_port, workdir)
        targets = {
            DIRECT: (auth_port, list[int]()),
            GATEWAY: (gateway_port, [processes[1].pid]),
            API_KEY: (gateway_port, [processes[1].pid]),
            PASS_THROUGH: (pass_through_port, [processes[2].pid]),
            TRACED: (traced_port, [processes[3].pid]),
        }
        if nginx is not None:
            processes.append(nginx)
            try:
                await wait_ready(f"http://127.0.0.1:{nginx_port}", "/healthz", within=10)
                targets[NGINX] = (nginx_port, [nginx.pid, *children(nginx.pid)])
            except AssertionError as exc:  # wait_ready's "timed out"
                nginx_unavailable = str(exc)

        script = lua_request("GET", headers={"Authorization": f"Bearer {token}"})
        key_script = lua_request("GET", headers={"Authorization": f"Bearer {api_key}"})
        scripts = {label: key_script if label == API_KEY else script for label in targets}
        for label, (port, _) in targets.items():  # warm up: JWKS fetch, pools, caches, the exchange
            await run_wrk(f"http://127.0.0.1:{port}/auth/me", seconds=1, connections=4, script=scripts[label])
        vs_jwt: list[str] = []
        request_cost_ms: float | None = None  # CPU ms per request through the gateway, whole system

        rows: list[tuple[str, ...]] = []
        for connections in connection_counts:
            runs = {label: Runs() for label in targets}
            per_run = max(1, round(seconds / rounds))
            labels = list(targets)
            for round_ in range(rounds):
                for label in labels[round_ % len(labels) :] + labels[: round_ % len(labels)]:
                    port, pids = targets[label]
                    system = [processes[0].pid, *pids]  # auth-service answers every target
                    before, system_before = cpu_seconds(pids), cpu_seconds(system)
                    result = await run_wrk(
                        f"http://127.0.0.1:{port}/auth/me",
                        seconds=per_run,
                        connections=connections,
                        script=scripts[label],
                    )
                    if result.errors:
                        raise RuntimeError(f"{label}: {result.errors} failed requests")
                    runs[label].results.append(result)
                    runs[label].seconds += per_run
                    runs[label].proxy_cpu += cpu_seconds(pids) - before
                    runs[label].system_cpu += cpu_seconds(system) - system_before
            direct = runs[DIRECT]
            for label, run in runs.items():
                requests = sum(r.requests for r in run.results)
                ratio, added = run.paired(direct)
                rows.append(
                    (
                        str(connections),
                        label,
                        f"{run.requests_per_second:.0f}",
                        f"{ratio:.2f}",
                        f"{run.median('p50_ms'):.2f}",
                        f"{added:+.2f}",
                        f"{run.median('p99_ms'):.2f}",
                        f"{run.proxy_cpu / requests * 1000:.2f}" if targets[label][1] else "-",
                    )
                )
            if NGINX not in targets:
                rows.append((str(connections), NGINX, "unavailable", "", "", "", "", ""))
            keyed, jwt = runs[API_KEY], runs[GATEWAY]
            request_cost_ms = jwt.system_cpu / sum(r.requests for r in jwt.results) * 1000
            throughput = statistics.median(
                k.requests / j.requests for k, j in zip(keyed.results, jwt.results, strict=True)
            )
            cpu = (keyed.proxy_cpu / sum(r.requests for r in keyed.results)) / (
                jwt.proxy_cpu / sum(r.requests for r in jwt.results)
            )
            vs_jwt.append(
                f"{connections} connections: API key vs JWT through the gateway: req/s x{throughput:.2f}, "
                f"gateway CPU per request x{cpu:.2f} (target: CPU <= x1.20)"
            )

        header = (
            "connections",
            "GET /auth/me",
            "req/s",
            "vs direct",
            "p50 ms",
            "p50 added ms",
            "p99 ms",
            "proxy CPU ms/req",
        )
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        print(f"\ncores: {os.cpu_count()}; {seconds:.0f} s per target and connection count, {rounds} rounds")
        print("targets: gateway >= 0.8x direct throughput, p50 added <= 1 ms")
        print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in rows:
            print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        for line in vs_jwt:
            print(line)
        if NGINX not in targets:
            print(f"nginx unavailable: {nginx_unavailable}")
        print(f"spans the traced gateway exported: {len(traces.all())}")
        if request_cost_ms is not None:
            kept = record_costs("gateway", {"gateway request": request_cost_ms}, command)
            print(
                f"CPU per authenticated request through the gateway (gateway + auth-service): "
                f"{request_cost_ms:.2f} ms, kept in {kept.relative_to(ROOT)}"
            )
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        await testing.drop_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--connections", default="1,16", help="comma-separated connection counts")
    args = parser.parse_args()
    command = shlex.join(["python", "bench/gateway.py", *sys.argv[1:]])
    asyncio.run(main(args.seconds, args.rounds, [int(c) for c in args.connections.split(",")], command))
