"""What Gatehouse costs to run: one table of the CPU each hot path takes per operation, and what
that means in cores for a product with a million monthly active users. The last line of
`make bench`.

    uv run python bench/summary.py [--costs var/bench/costs]

Reads what the benches kept with `support.record_costs` (var/bench/costs/<bench>.json: CPU ms per
operation, summed over every process of the system that did work for it). Where two benches
measured the same path, the newer figure is used. A path no bench has measured yet shows
"not measured" and is left out of the total, which then says so; a file that cannot be read is
named under the table and skipped.

The usage profile (`PROFILE`) is stated under the table: every one of the 1,000,000 monthly active
users, every day of a 30-day month, signs in once, refreshes 4 times and makes 200 API requests
(each an authenticated request through the gateway); 50,000 sign-ups a month; one payment per
user a month, each bringing 4 Stripe webhooks; an email per sign-up and per payment. Average cores
spread the month's CPU evenly over its seconds; peak is 3 times the average.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from support import COSTS_DIR, ROOT, print_table

MONTHLY_ACTIVE_USERS = 1_000_000
DAYS_PER_MONTH = 30
SECONDS_PER_MONTH = DAYS_PER_MONTH * 24 * 3600
PEAK_FACTOR = 3.0
LOGINS_PER_USER_DAY = 1
REFRESHES_PER_USER_DAY = 4
API_REQUESTS_PER_USER_DAY = 200
SIGN_UPS_PER_MONTH = 50_000
PAYMENTS_PER_USER_MONTH = 1
WEBHOOKS_PER_PAYMENT = 4
EMAILS_PER_SIGN_UP = 1
EMAILS_PER_PAYMENT = 1


def _daily(per_user_day: int) -> int:
    return MONTHLY_ACTIVE_USERS * per_user_day * DAYS_PER_MONTH


# hot path (the key benches record under) → (what the row says, operations a month)
PROFILE: dict[str, tuple[str, int]] = {
    "sign-up": ("sign-up", SIGN_UPS_PER_MONTH),
    "login": ("password login", _daily(LOGINS_PER_USER_DAY)),
    "refresh": ("token refresh", _daily(REFRESHES_PER_USER_DAY)),
    "gateway request": ("authenticated request through the gateway", _daily(API_REQUESTS_PER_USER_DAY)),
    "webhook applied": (
        "Stripe webhook applied",
        MONTHLY_ACTIVE_USERS * PAYMENTS_PER_USER_MONTH * WEBHOOKS_PER_PAYMENT,
    ),
    "email sent": (
        "email sent",
        SIGN_UPS_PER_MONTH * EMAILS_PER_SIGN_UP
        + MONTHLY_ACTIVE_USERS * PAYMENTS_PER_USER_MONTH * EMAILS_PER_PAYMENT,
    ),
}
PROFILE_TEXT = (
    f"usage profile: {MONTHLY_ACTIVE_USERS:,} monthly active users, each every day of a "
    f"{DAYS_PER_MONTH}-day month: {LOGINS_PER_USER_DAY} login, {REFRESHES_PER_USER_DAY} refreshes, "
    f"{API_REQUESTS_PER_USER_DAY} API requests through the gateway; {SIGN_UPS_PER_MONTH:,} sign-ups "
    f"a month; {PAYMENTS_PER_USER_MONTH} payment per user a month with {WEBHOOKS_PER_PAYMENT} Stripe "
    f"webhooks each; {EMAILS_PER_SIGN_UP} email per sign-up and {EMAILS_PER_PAYMENT} per payment; "
    f"peak = {PEAK_FACTOR:g}x average"
)
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Measured:
    ms: float  # CPU milliseconds per operation
    bench: str
    command: str
    measured_at: float
    load: tuple[float, ...]  # the 1, 5 and 15 minute load averages as the bench ended


def average_cores(ms_per_operation: float, operations_per_month: int) -> float:
    """Cores kept busy on average by the month's operations, spread evenly over the month."""
    return ms_per_operation / 1000 * operations_per_month / SECONDS_PER_MONTH


def load_costs(directory: Path) -> tuple[dict[str, Measured], list[str]]:
    """The newest figure of each hot path the benches kept, and what could not be read (a line
    each). Paths outside `PROFILE` are ignored."""
    found: dict[str, Measured] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = json.loads(path.read_text())
            costs = record["costs"]
            if not isinstance(costs, dict):
                raise TypeError("costs is not an object")
            bench = str(record.get("bench", path.stem))
            command = str(record.get("command", ""))
            measured_at = float(record.get("measured_at", 0.0))
            load = tuple(float(x) for x in record.get("load") or ())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path.name}: skipped, unreadable ({type(exc).__name__}: {exc})")
            continue
        for hot_path, ms in costs.items():
            if hot_path not in PROFILE:
                continue
            if isinstance(ms, bool) or not isinstance(ms, int | float) or not math.isfinite(ms) or ms < 0:
                problems.append(f"{path.name}: {hot_path!r} skipped, not a CPU time in ms: {ms!r}")
                continue
            earlier = found.get(hot_path)
            if earlier is None or measured_at >= earlier.measured_at:
                found[hot_path] = Measured(float(ms), bench, command, measured_at, load)
    return found, problems


def _cores(value: float) -> str:
    if value < 0.01:
        return f"{value:.2g}"  # two significant digits, not "0.000"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def table(measured: dict[str, Measured]) -> tuple[list[tuple[str, ...]], list[str]]:
    """The rows (one per hot path, then the total) and a line per bench naming its command and load."""
    rows: list[tuple[str, ...]] = []
    total = 0.0
    benches: dict[str, Measured] = {}
    for hot_path, (label, per_month) in PROFILE.items():
        figure = measured.get(hot_path)
        if figure is None:
            rows.append((label, NOT_MEASURED, f"{per_month:,}", NOT_MEASURED, NOT_MEASURED, ""))
            continue
        cores = average_cores(figure.ms, per_month)
        total += cores
        benches.setdefault(figure.bench, figure)
        rows.append(
            (
                label,
                f"{figure.ms:.2f}",
                f"{per_month:,}",
                _cores(cores),
                _cores(cores * PEAK_FACTOR),
                figure.bench,
            )
        )
    missing = len(PROFILE) - len([p for p in PROFILE if p in measured])
    label = "total" if not missing else f"total ({missing} path{'s' if missing > 1 else ''} not measured)"
    if missing == len(PROFILE):
        rows.append((label, "", "", NOT_MEASURED, NOT_MEASURED, ""))
    else:
        rows.append((label, "", "", _cores(total), _cores(total * PEAK_FACTOR), ""))
    sources = [
        f"{bench}: `{figure.command or '?'}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(figure.measured_at))}, "
        f"load {' '.join(f'{x:.2f}' for x in figure.load) or '?'}"
        for bench, figure in sorted(benches.items())
    ]
    return rows, sources


HEADER = (
    "hot path",
    "CPU ms/op",
    "ops a month",
    "cores, average",
    f"cores, peak ({PEAK_FACTOR:g}x)",
    "bench",
)


def main(directory: Path) -> None:
    measured, problems = load_costs(directory)
    rows, sources = table(measured)
    print(f"\nWhat Gatehouse costs to run, from the benches' figures in {_shown(directory)}")
    print(PROFILE_TEXT)
    print_table(rows, HEADER)
    for line in sources:
        print(f"  {line}")
    for line in problems:
        print(f"  {line}")


def _shown(directory: Path) -> str:
    try:
        return str(directory.resolve().relative_to(ROOT))
    except ValueError:
        return str(directory)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--costs", type=Path, default=COSTS_DIR, help="the benches' cost files")
    main(parser.parse_args().costs)
