"""`testing.ServiceProcess`, the real service process tests start: its clean-up leaves nothing."""

from __future__ import annotations

import os
from pathlib import Path

from gatehouse_platform import testing

HERE = Path(__file__).resolve().parent


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # it ended meanwhile
        if int(text.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_kill_ends_every_worker_of_a_multi_worker_service() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    service = testing.ServiceProcess("multiworker_service", env, testing.free_port(), ["--workers", "2"])
    workers: list[int] = []
    try:
        await service.start(workers=2)
        assert service.process is not None
        workers += children(service.process.pid)
        assert len(workers) >= 2, service.tail()
    finally:
        service.kill()

    async def none_left() -> bool:
        return not any(running(pid) for pid in workers)

    await testing.eventually(none_left, "the workers to end with their parent", within=15)
