"""Services a bench starts, stopped with it however it ends.

Each service runs in a process group of its own (`start_new_session`), so stopping it signals the
group: uvicorn's worker processes too, not only their parent (a SIGKILL of the parent alone leaves
the workers running, connected to the bench's throw-away database). A small watcher process holds
the read end of a pipe from the bench and is told each group as it starts; when the pipe reaches
EOF (the bench ended: normally, by an exception, Ctrl-C, SIGTERM, or even SIGKILL, as the kernel
closes a dead process's pipes) it terminates, then kills, every group still there. The watcher is
in its own session, so a Ctrl-C at the terminal does not end it before it has done its work.

    with ServiceGroups() as services:
        process = services.start([sys.executable, "-m", "billing_service.cli", "serve", ...])
        ...
        services.stop()  # before the database and vhost they use are deleted
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any

GRACE_SECONDS = 40.0

WATCHER = f"""
import os, signal, sys, time
groups = [int(line) for line in sys.stdin if line.strip()]  # until the bench's end closes the pipe
def alive(group):
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
for group in groups:
    if alive(group):
        os.killpg(group, signal.SIGTERM)
deadline = time.monotonic() + {GRACE_SECONDS}
while any(alive(g) for g in groups) and time.monotonic() < deadline:
    time.sleep(0.1)
for group in groups:
    if alive(group):
        os.killpg(group, signal.SIGKILL)
"""


def _end_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """Wait up to `grace` for the signalled group's leader, then SIGKILL whatever of the group is
    left (the leader may be gone while its workers linger: the group is what must end)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class ServiceGroups:
    """Starts services each in its own process group; stops every group on `stop()` or on leaving
    the `with` block, and, through the watcher, whenever the bench process ends."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self._watcher: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServiceGroups:
        self._watcher = subprocess.Popen(
            [sys.executable, "-c", WATCHER], stdin=subprocess.PIPE, start_new_session=True
        )
        return self

    def start(self, command: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        assert self._watcher is not None and self._watcher.stdin is not None, "not entered"
        process: subprocess.Popen[bytes] = subprocess.Popen(command, start_new_session=True, **popen)
        self.processes.append(process)
        self._watcher.stdin.write(f"{process.pid}\n".encode())
        self._watcher.stdin.flush()
        return process

    def stop(self) -> None:
        """Terminate every group (all at once, then wait for each), SIGKILL what lingers."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            _end_group(process, GRACE_SECONDS)
        self.processes.clear()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            if self._watcher is not None:
                assert self._watcher.stdin is not None
                self._watcher.stdin.close()  # EOF: the watcher finds no group left and exits
                self._watcher.wait()
                self._watcher = None
