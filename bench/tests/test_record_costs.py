"""support.record_costs: the file each bench leaves for summary.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import summary
import support


def test_record_costs_writes_the_bench_its_command_load_and_costs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(support, "COSTS_DIR", tmp_path / "costs")
    path = support.record_costs("gateway", {"gateway request": 0.42}, "python bench/gateway.py --rounds 2")
    record = json.loads(path.read_text())

    assert path == tmp_path / "costs" / "gateway.json"
    assert record["bench"] == "gateway"
    assert record["command"] == "python bench/gateway.py --rounds 2"
    assert record["costs"] == {"gateway request": 0.42}
    assert isinstance(record["measured_at"], float)
    assert len(record["load"]) == 3


def test_a_second_run_of_a_bench_replaces_its_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(support, "COSTS_DIR", tmp_path)
    support.record_costs("auth_login", {"login": 20.0, "refresh": 5.0}, "first")
    support.record_costs("auth_login", {"login": 15.0}, "second")
    measured, problems = summary.load_costs(tmp_path)

    assert problems == []
    assert {path: m.ms for path, m in measured.items()} == {"login": 15.0}
    assert measured["login"].command == "second"
