"""pytest plugin (`-p gatehouse_emulators.stripe.pytest_plugin`, on for every suite): a test fails
when a Stripe emulator served in the test process, with `check_schemas=True`, answered or sent a body
that is not Stripe's shape for the pinned API version during it (wire/conformance.py).

The failure lists each distinct violation once: the object type, the path in the object, what is
wrong, and the call or event that carried it. Violations found outside any test (a session fixture
setting up) are listed at the end of the run and fail it too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gatehouse_emulators.stripe.wire.conformance import Violation, on_violation

_found: list[Violation] = []
_reported = 0  # violations up to here were already failed a test


def listing(violations: list[Violation]) -> str:
    distinct: dict[tuple[str, str, str], tuple[Violation, int]] = {}
    for violation in violations:
        first, count = distinct.get(violation.key(), (violation, 0))
        distinct[violation.key()] = (first, count + 1)
    lines = [f"  {v.line()}" + (f" (x{n})" if n > 1 else "") for v, n in distinct.values()]
    return "\n".join(lines)


def pytest_configure(config: pytest.Config) -> None:
    config.add_cleanup(on_violation(_found.append))


@pytest.fixture(autouse=True)
def stripe_conformance() -> Iterator[None]:
    """Fail the test if the emulator sent a body that breaks Stripe's schemas while it ran (or
    since the previous test ended: session fixtures, late webhooks)."""
    global _reported
    start = _reported
    yield
    new = _found[start:]
    _reported = len(_found)
    if new:
        pytest.fail(
            "The Stripe emulator sent bodies that break Stripe's schemas for the pinned API version:\n"
            + listing(new),
            pytrace=False,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if len(_found) > _reported and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _found:
        terminalreporter.section("Stripe schema conformance")
        terminalreporter.write_line(listing(_found))
