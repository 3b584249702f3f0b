"""summary.py's arithmetic and how it reads the benches' cost files, whole, partial or broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import summary


def write(directory: Path, bench: str, costs: object, measured_at: float = 1_000.0) -> None:
    record = {"bench": bench, "command": f"python bench/{bench}.py", "measured_at": measured_at}
    (directory / f"{bench}.json").write_text(json.dumps({**record, "load": [1.0, 2.0, 3.0], "costs": costs}))


def test_the_profile_counts_each_paths_operations_a_month() -> None:
    per_month = {path: count for path, (_, count) in summary.PROFILE.items()}
    assert per_month == {
        "sign-up": 50_000,
        "login": 1_000_000 * 30,
        "refresh": 1_000_000 * 4 * 30,
        "gateway request": 1_000_000 * 200 * 30,
        "webhook applied": 1_000_000 * 4,
        "email sent": 50_000 + 1_000_000,
    }


def test_average_cores_spread_the_months_cpu_over_its_seconds() -> None:
    # 2,592,000 operations a month of 1,000 ms each: one a second, one core
    assert summary.average_cores(1000.0, 2_592_000) == pytest.approx(1.0)
    # 6 billion gateway requests of 0.5 ms: 3,000,000 CPU seconds over 2,592,000 s
    assert summary.average_cores(0.5, 6_000_000_000) == pytest.approx(1.1574, rel=1e-3)


def test_each_row_gives_average_and_peak_cores_and_the_total_adds_them(tmp_path: Path) -> None:
    write(tmp_path, "auth_login", {"login": 10.0, "refresh": 2.0, "sign-up": 30.0})
    write(tmp_path, "gateway", {"gateway request": 0.5})
    write(tmp_path, "billing_webhooks", {"webhook applied": 3.0})
    write(tmp_path, "notify_pipeline", {"email sent": 5.0})
    measured, problems = summary.load_costs(tmp_path)
    rows, sources = summary.table(measured)
    by_path = {row[0]: row for row in rows}

    assert problems == []
    login = by_path["password login"]
    assert login[1] == "10.00"
    assert float(login[3]) == pytest.approx(10 / 1000 * 30_000_000 / 2_592_000, abs=1e-3)
    assert float(login[4]) == pytest.approx(3 * float(login[3]), abs=2e-3)
    expected = sum(
        summary.average_cores(ms, summary.PROFILE[path][1])
        for path, ms in {
            "login": 10.0,
            "refresh": 2.0,
            "sign-up": 30.0,
            "gateway request": 0.5,
            "webhook applied": 3.0,
            "email sent": 5.0,
        }.items()
    )
    assert rows[-1][0] == "total"
    assert float(rows[-1][3]) == pytest.approx(expected, abs=1e-3)
    assert float(rows[-1][4]) == pytest.approx(3 * expected, abs=3e-3)
    assert len(sources) == 4
    assert any("`python bench/gateway.py`" in line and "load 1.00 2.00 3.00" in line for line in sources)


def test_a_path_no_bench_measured_shows_not_measured_and_the_total_says_so(tmp_path: Path) -> None:
    write(tmp_path, "gateway", {"gateway request": 0.5})
    rows, _ = summary.table(summary.load_costs(tmp_path)[0])
    by_path = {row[0]: row for row in rows}

    assert by_path["password login"][1] == summary.NOT_MEASURED
    assert by_path["password login"][3] == summary.NOT_MEASURED
    assert by_path["authenticated request through the gateway"][1] == "0.50"
    assert rows[-1][0] == "total (5 paths not measured)"
    assert float(rows[-1][3]) == pytest.approx(summary.average_cores(0.5, 6_000_000_000), abs=1e-3)


def test_no_cost_files_at_all_measure_nothing(tmp_path: Path) -> None:
    measured, problems = summary.load_costs(tmp_path / "never-made")
    rows, sources = summary.table(measured)

    assert (measured, problems, sources) == ({}, [], [])
    assert all(row[1] == summary.NOT_MEASURED for row in rows[:-1])
    assert rows[-1][3] == summary.NOT_MEASURED


def test_broken_files_and_values_are_named_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "truncated.json").write_text('{"bench": "auth_login", "costs": {"login": 1')
    (tmp_path / "no_costs.json").write_text('{"bench": "web"}')
    write(tmp_path, "notify_pipeline", {"email sent": "fast", "sign-up": -1, "login": 12.5})
    measured, problems = summary.load_costs(tmp_path)

    assert set(measured) == {"login"}
    assert measured["login"].ms == 12.5
    assert len(problems) == 4
    assert any(line.startswith("truncated.json: skipped") for line in problems)
    assert any(line.startswith("no_costs.json: skipped") for line in problems)
    assert any("'email sent'" in line for line in problems)
    assert any("'sign-up'" in line for line in problems)


def test_paths_outside_the_profile_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "web", {"page rendered": 4.0})
    assert summary.load_costs(tmp_path) == ({}, [])


def test_the_newer_figure_of_a_path_measured_twice_is_used(tmp_path: Path) -> None:
    write(tmp_path, "auth_login", {"sign-up": 30.0}, measured_at=2_000.0)
    write(tmp_path, "notify_pipeline", {"sign-up": 40.0}, measured_at=1_000.0)
    measured, _ = summary.load_costs(tmp_path)

    assert measured["sign-up"].ms == 30.0
    assert measured["sign-up"].bench == "auth_login"


def test_main_prints_one_table_with_the_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "gateway", {"gateway request": 0.5})
    summary.main(tmp_path)
    out = capsys.readouterr().out

    assert "1,000,000 monthly active users" in out
    assert out.count("| hot path") == 1
    assert "| authenticated request through the gateway | 0.50" in out
