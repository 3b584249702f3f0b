"""Time to ready and idle memory of each service, started as `make run` starts it.

    uv run python bench/startup.py [--rounds 5] [--idle 5]

The whole system runs first (the e2e harness: the Procfile on free ports, throw-away databases and
vhost), so every dependency a service waits for at start (PostgreSQL, RabbitMQ, Redis, the JWKS it
fetches from auth-service) is up. Then, one at a time, each service's own command line (the
`serve` of its Procfile entry, one uvicorn process) is started again on a free port: "ready" is
the time from spawning the process to its first 200 from /readyz (the gateway and web: the same),
and "idle RSS" is its resident memory after `--idle` seconds without traffic. The figures are the
median over `--rounds` starts. The Celery workers are measured for memory only (they answer no
HTTP): the system's own, idle by then, as each worker's process tree.

What the profiles said (`python -X importtime -c 'import <service>.cli, <service>.main'`, the
modules a service's `serve` imports; 4 December 2026, load 5–9 on 2 shared cores):
- Nothing was byte-compiled: PYTHONDONTWRITEBYTECODE is set here (and in the images), so every
  start compiled every module it imported. `make install` now compiles the dependencies
  (`uv sync --compile-bytecode`) and the workspace's editable sources (compileall).
- auth-service imported py_webauthn with pyOpenSSL (~230 ms of imports under that load), Authlib,
  zxcvbn's frequency lists and Celery at every start, each for a few requests or only the
  workers: they are imported where they are used now (`passkeys/webauthn.py`,
  `oauth/providers.py`, `security.py`, `gatehouse_platform.tasks.make_celery_app`).
- web compiled all of ua-parser's rules with its native matcher while it started (~0.2–0.5 s of
  CPU and its memory): `devices.py` uses the pure-Python lazy matchers at the first name asked for.
- What is left is the framework: SQLAlchemy (~0.3 s under that load, also in the gateway and web,
  which reach it through gatehouse_platform's app, http, errors and consumer modules), FastAPI and
  pydantic, and each service's own models and schemas being defined.

Before / after those changes, back to back (`python bench/startup.py --rounds 3 --idle 3`; the
"before" from a worktree at 5cb5507 with its own `make install`; load 5.8→4.6, then 4.6→4.4):
ready auth-service 4.57 → 1.37 s, billing 4.12 → 1.82, notification 2.66 → 1.06, gateway
3.99 → 1.56, web 3.24 → 2.45 (1.03 in an earlier run); idle RSS 148 → 123 MiB, 129 → 123,
114 → 114, 114 → 112, 143 → 112; the Celery workers 254 → 220 and 229 → 213 MiB. Under 120 MB
(114 MiB) is not reached yet by auth and billing (notification: just): what is left is the
framework. Two more runs of the new code (load 9.7→5.0 and 2.8→6.0): ready auth 1.94 and 3.01 s,
billing 1.44 and 2.59, notification 1.41 and 2.31, gateway 1.17 and 1.90, web 1.03 and 1.83; the
same RSS. The machine's load moves these by a factor of two.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from support import ROOT, children, free_port, print_table

sys.path.insert(0, str(ROOT / "tests-e2e"))
from harness import System, running_system  # the e2e tests' whole system: one copy

# service → (its CLI module, the port variable its Procfile entry reads)
SERVERS = {
    "auth-service": ("auth_service.cli", "AUTH_PORT"),
    "billing-service": ("billing_service.cli", "BILLING_PORT"),
    "notification-service": ("notification_service.cli", "NOTIFICATION_PORT"),
    "gateway": ("gateway.cli", "GATEWAY_PORT"),
    "web": ("gatehouse_web.cli", "WEB_PORT"),
}
WORKERS = {"auth-service worker": "auth_service.tasks", "billing-service worker": "billing_service.tasks"}


def rss_mib(pids: list[int]) -> float:
    """Resident memory of the processes (Linux /proc VmRSS), in MiB."""
    total_kib = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def tree(pid: int) -> list[int]:
    found = [pid]
    for child in children(pid):
        found.extend(tree(child))
    return found


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, as a process manager sends it; SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def start_once(system: System, module: str, port_variable: str, idle: float) -> tuple[float, float]:
    """(seconds to ready, idle RSS in MiB) of one fresh `serve` of the service."""
    port = free_port()
    env = {**system.env, port_variable: str(port)}
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", module, "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            ready = wait_ready(f"http://127.0.0.1:{port}/readyz", process, started)
            time.sleep(idle)
            return ready, rss_mib(tree(process.pid))
        except RuntimeError:
            log.seek(0)
            raise RuntimeError(f"{module} did not start:\n{log.read().decode()[-3000:]}") from None
        finally:
            stop(process)


def wait_ready(url: str, process: subprocess.Popen[bytes], started: float, timeout: float = 60) -> float:
    with httpx.Client(timeout=2) as http:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError("exited")
            try:
                if http.get(url).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.01)
    raise RuntimeError("not ready in time")


def worker_rss(system: System, celery_app: str) -> float:
    """Idle RSS of the system's own Celery worker of that app (its process tree: main process and
    pool children), found by its command line and this run's environment."""
    marker = f"VAR_DIR={system.env['VAR_DIR']}".encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            ours = marker in (proc / "environ").read_bytes()
            if celery_app.encode() in argv and b"worker" in argv and ours:
                return rss_mib(tree(int(proc.name)))
        except OSError:
            continue
    raise RuntimeError(f"no {celery_app} worker of this run found")


def main(rounds: int, idle: float) -> None:
    with (
        tempfile.TemporaryDirectory() as var,
        running_system(Path(var), run_prefix="gh_bench_start") as system,
    ):
        rows = []
        for name, (module, port_variable) in SERVERS.items():
            starts = [start_once(system, module, port_variable, idle) for _ in range(rounds)]
            readies = [ready for ready, _ in starts]
            memories = [memory for _, memory in starts]
            rows.append(
                [
                    name,
                    f"{statistics.median(readies):.2f} s",
                    f"{min(readies):.2f}–{max(readies):.2f} s",
                    f"{statistics.median(memories):.0f} MiB",
                ]
            )
        for name, celery_app in WORKERS.items():
            rows.append([name, "–", "–", f"{worker_rss(system, celery_app):.0f} MiB"])
    print_table(rows, header=("process", "ready (median)", "ready (range)", "idle RSS"))
    print(f"\n{rounds} starts each; RSS after {idle:.0f} s idle; targets: ready ≤ 2 s, idle RSS ≤ 120 MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0)
    args = parser.parse_args()
    main(args.rounds, args.idle)
