"""What the benchmark scripts share: wrk as the load generator, percentiles and the printed table
(plus, re-exported, `free_port` and `wait_ready` from the test helpers).

wrk (C, epoll) drives the load so the figures measure our services and not a Python client
competing with them for the same cores; it is installed from Debian's packages when missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from gatehouse_platform.testing import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]
__all__ = [
    "ROOT",
    "WrkResult",
    "children",
    "cpu_seconds",
    "ensure_debian_tool",
    "free_port",
    "lua_request",
    "new_account",
    "percentile",
    "pids_named",
    "print_table",
    "record_costs",
    "run_wrk",
    "thread_cpu_seconds",
    "wait_ready",
]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(path: Path) -> list[str]:
    """/proc/…/stat after the command name (which may itself hold spaces and parentheses)."""
    return path.read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (Linux /proc; 0 elsewhere)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(Path(f"/proc/{pid}/stat"))
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time so far of the process's threads, by OS thread name ("main" for its first thread),
    summed over threads of one name (Linux /proc)."""
    totals: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
            fields = _stat_fields(task / "stat")
        except OSError:
            continue  # the thread ended meanwhile
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return totals


def _processes() -> Iterator[tuple[int, str, int]]:
    """(pid, command name, parent pid) of every process now running (Linux /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # it ended meanwhile
        name = text[text.index("(") + 1 : text.rindex(")")]
        yield int(stat.parent.name), name, int(text.rsplit(")", 1)[1].split()[1])


def pids_named(command: str) -> list[int]:
    """Every process whose command name is `command` (e.g. all PostgreSQL backends)."""
    return [pid for pid, name, _ in _processes() if name == command]


def children(pid: int) -> list[int]:
    return [child for child, _, parent in _processes() if parent == pid]


COSTS_DIR = ROOT / "var" / "bench" / "costs"


def record_costs(bench: str, costs: dict[str, float], command: str) -> Path:
    """Keep what one operation of each hot path cost in CPU milliseconds (all processes of the
    system that did work for it), as this bench measured it, for `bench/summary.py`'s final table.
    `costs` maps a hot path ("sign-up", "login", "refresh", "gateway request", "webhook applied",
    "email sent") to CPU ms per operation; `command` is the command line that measured them."""
    COSTS_DIR.mkdir(parents=True, exist_ok=True)
    path = COSTS_DIR / f"{bench}.json"
    record = {"bench": bench, "command": command, "measured_at": time.time(), "load": os.getloadavg()}
    path.write_text(json.dumps({**record, "costs": costs}, indent=2) + "\n")
    return path


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def print_table(rows: Sequence[Sequence[str]], header: Sequence[str] = ("measure", "value")) -> None:
    """A Markdown table; every column but the last padded to its widest cell."""
    widths = [max(len(row[column]) for row in [*rows, header]) for column in range(len(header) - 1)]

    def line(cells: Sequence[str]) -> str:
        return (
            "| " + " | ".join([*(c.ljust(w) for c, w in zip(cells, widths, strict=False)), cells[-1]]) + " |"
        )

    print("\n" + line(header))
    print("|" + "|".join([*("-" * (w + 2) for w in widths), "-------"]) + "|")
    for row in rows:
        print(line(row))


def ensure_debian_tool(command: str, package: str | None = None) -> str:
    """The tool's path, installing its Debian package first if it is missing."""
    found = shutil.which(command)
    if found is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", package or command], check=True, capture_output=True
        )
        found = shutil.which(command)
    if found is None:
        raise RuntimeError(f"{command} is not installed and could not be installed")
    return found


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors and non-2xx/3xx answers

    @classmethod
    def parse(cls, output: str) -> WrkResult:
        def latency(pct: str) -> float:
            match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\b", output, re.MULTILINE)
            if match is None:
                raise RuntimeError(f"no {pct}% latency in wrk's output:\n{output}")
            value, unit = float(match.group(1)), match.group(2)
            return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

        errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
        if non_2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
            errors += int(non_2xx.group(1))
        requests = re.search(r"(\d+) requests in", output)
        rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
        if requests is None or rate is None:
            raise RuntimeError(f"unexpected wrk output:\n{output}")
        return cls(int(requests.group(1)), float(rate.group(1)), latency("50"), latency("99"), errors)


def lua_request(method: str, body: str | None = None, headers: dict[str, str] | None = None) -> str:
    """A wrk script sending the same request every time."""
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = [[{body}]]")
    for name, value in (headers or {}).items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    return "\n".join(lines) + "\n"


async def run_wrk(
    url: str, *, seconds: float, connections: int, threads: int = 1, script: str | None = None
) -> WrkResult:
    wrk = ensure_debian_tool("wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script or "")
        lua.flush()
        command = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            lua.name,
            url,
        ]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output, _ = await process.communicate()
    return WrkResult.parse(output.decode())


async def new_account(http: httpx.AsyncClient, password: str) -> tuple[str, dict[str, str]]:
    """A fresh account, through the API as a person makes one: its email and the bearer header of
    its first sign-in."""
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    account = {"email": email, "username": f"b{uuid.uuid4().hex[:12]}", "password": password}
    (await http.post("/auth/register", json=account)).raise_for_status()
    login = await http.post("/auth/login", json={"email": email, "password": password})
    login.raise_for_status()
    return email, {"Authorization": f"Bearer {login.json()['access_token']}"}


def tracing_env(endpoint: str, service: str) -> dict[str, str]:
    """What turns a process's OpenTelemetry on, every request sampled, exporting over OTLP/HTTP to
    `endpoint` (a receiver the bench holds: tests-e2e/otlp.py's)."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_SERVICE_NAME": service,
    }
