"""The emulator's notion of now, and Stripe's calendar arithmetic for billing periods."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from gatehouse_emulators.stripe.config import ClockMode

DAY = 86400
INTERVALS = ("day", "week", "month", "year")


class Clock:
    """Wall time plus the sum of advances ("wall"), or a time that moves only when advanced ("frozen").

    While due work is processed, `at(t)` pins now to the moment the work fell due, so the objects and
    events it makes carry that time."""

    def __init__(self, mode: ClockMode, start: int | None = None, wall: Callable[[], float] = time.time):
        self.mode = mode
        self._wall = wall
        self._offset = 0
        self._frozen = int(start if start is not None else wall())
        self._pinned: list[int] = []

    def now(self) -> int:
        if self._pinned:
            return self._pinned[-1]
        return self._frozen if self.mode == "frozen" else int(self._wall()) + self._offset

    def advance(self, seconds: int) -> int:
        if self.mode == "frozen":
            self._frozen += seconds
        else:
            self._offset += seconds
        return self.now()

    def snapshot(self) -> dict[str, int]:
        return {"offset": self._offset, "frozen": self._frozen}

    def restore(self, snapshot: dict[str, int]) -> None:
        self._offset, self._frozen = int(snapshot["offset"]), int(snapshot["frozen"])

    def reset(self, start: int | None = None) -> None:
        self._offset = 0
        self._frozen = int(start if start is not None else self._wall())
        self._pinned.clear()

    @contextmanager
    def at(self, moment: int) -> Iterator[None]:
        self._pinned.append(moment)
        try:
            yield
        finally:
            self._pinned.pop()


def _add_months(anchor: int, months: int) -> int:
    moment = datetime.fromtimestamp(anchor, UTC)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])  # Jan 31 + 1 month = Feb 28/29
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def add_interval(anchor: int, interval: str, count: int) -> int:
    """`anchor` moved forward by `count` intervals, clamping month days the way Stripe does."""
    if interval == "day":
        return anchor + count * DAY
    if interval == "week":
        return anchor + count * 7 * DAY
    if interval == "month":
        return _add_months(anchor, count)
    if interval == "year":
        return _add_months(anchor, 12 * count)
    raise ValueError(f"unknown interval {interval}")


def next_period_end(anchor: int, interval: str, interval_count: int, after: int) -> int:
    """The first period boundary counted from the billing cycle anchor that lies after `after`.

    Counting from the anchor (not from the previous end) keeps Jan 31 → Feb 28 → Mar 31."""
    periods = 1
    while True:
        end = add_interval(anchor, interval, periods * interval_count)
        if end > after:
            return end
        periods += 1
