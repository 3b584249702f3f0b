"""The current time for the rules that compare with it (TOTP time-steps, a recent sign-in), built
once by the composition root so tests can move it."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)
