"""deploy/observability: Prometheus rules and Grafana dashboards, checked like code.

promtool (Debian's, unpacked by scripts/promtool.sh) validates the rules and the configuration and
runs the alert unit tests: each alert fires on a synthetic series that should page and stays quiet
on the ones beside it that should not. The rest reads the files against the code: every metric a
rule or panel queries is one a service defines (or a recording rule), every label value that names
a template, an event type or a part names a real one, every alert links to a runbook section that
exists, and the committed dashboards are exactly what grafana/build.py writes.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from deployment import ROOT, readme_service_ports

from gatehouse_contracts.events import REGISTRY
from notification_service.email.catalogue import TEMPLATES

OBSERVABILITY = ROOT / "deploy" / "observability"
PROMETHEUS = OBSERVABILITY / "prometheus"
RULE_FILES = [PROMETHEUS / "recording.yml", PROMETHEUS / "alerts.yml"]
ALERT_TESTS = PROMETHEUS / "tests" / "alerts_test.yml"
SOURCES = ["shared-platform", "auth-service", "billing-service", "notification-service", "gateway", "web"]
METRIC_DEFINITION = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


@functools.cache
def promtool() -> str:
    return subprocess.run(
        [str(ROOT / "scripts" / "promtool.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, cwd=ROOT)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> Iterator[dict[str, Any]]:
    for path in RULE_FILES:
        for group in load(path)["groups"]:
            yield from group["rules"]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


@functools.cache
def grafana() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_build", OBSERVABILITY / "grafana" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def dashboard_files() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json"))
    }


def queries() -> Iterator[tuple[str, str]]:
    """(where, expr) for every rule and every dashboard panel."""
    for rule in rules():
        yield rule.get("alert") or rule["record"], rule["expr"]
    for name, dashboard in dashboard_files().items():
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                yield f"{name}: {panel['title']}", target["expr"]


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (strings, label matchers, ranges and grouping
    clauses removed; what is left and not called like a function is a metric name)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", bare):
        following = bare[match.end() :].lstrip()
        if match.group() not in PROMQL_WORDS and not following.startswith("("):
            names.add(match.group())
    return names


def label_values(expr: str, label: str) -> set[str]:
    """The values an expression's matchers give `label` (alternatives of a regex included)."""
    values = set()
    for value in re.findall(rf'\b{label}\s*=~?\s*"([^"]*)"', expr):
        values.update(value.split("|"))
    return values


@functools.cache
def defined_metrics() -> frozenset[str]:
    """Every series name our code can expose: counters with `_total`, histograms' `_bucket`,
    `_sum` and `_count`."""
    names: set[str] = set()
    for part in SOURCES:
        for source in (ROOT / part / "src").rglob("*.py"):
            for kind, name in METRIC_DEFINITION.findall(source.read_text(encoding="utf-8")):
                if kind == "Counter":
                    names.add(name if name.endswith("_total") else f"{name}_total")
                elif kind in ("Histogram", "Summary"):
                    names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
                else:
                    names.add(name)
    return frozenset(names)


def test_promtool_accepts_the_rules_and_the_configuration() -> None:
    checked = run_promtool("check", "rules", *map(str, RULE_FILES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = run_promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_alert_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_case_that_fires() -> None:
    cases = [case for test in load(ALERT_TESTS)["tests"] for case in test.get("alert_rule_test", [])]
    firing = {case["alertname"] for case in cases if case["exp_alerts"]}
    assert {alert["alert"] for alert in alerts()} <= firing
    assert firing <= {alert["alert"] for alert in alerts()}, "a test names an alert that does not exist"


def github_anchors(markdown: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", markdown.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_every_alert_says_how_urgent_what_and_where_to_look(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in {"page", "ticket"}
    assert alert["annotations"]["summary"]
    document, _, anchor = alert["annotations"]["runbook_url"].partition("#")
    assert anchor in github_anchors(ROOT / document), f"{document} has no section #{anchor}"
    runbook = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    assert f"`{alert['alert']}`" in runbook, "the runbook's alert table lists every alert"


def test_every_queried_metric_is_defined_by_our_code() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    known = defined_metrics() | recorded
    unknown = {
        f"{where}: {name}" for where, expr in queries() for name in metric_names(expr) if name not in known
    }
    assert not unknown, sorted(unknown)


def test_label_values_name_real_templates_event_types_and_parts() -> None:
    parts = set(readme_service_ports())
    for where, expr in queries():
        assert label_values(expr, "template") <= set(TEMPLATES), where
        assert label_values(expr, "event_type") <= set(REGISTRY), where
        assert label_values(expr, "job") <= parts, where
    for test in load(ALERT_TESTS)["tests"]:
        for series in test["input_series"]:
            assert label_values(series["series"], "job") <= parts, series["series"]
            assert label_values(series["series"], "template") <= set(TEMPLATES), series["series"]


def test_the_committed_dashboards_are_what_build_writes() -> None:
    built = grafana().rendered()
    committed = {
        path.name: path.read_text(encoding="utf-8")
        for path in (OBSERVABILITY / "grafana" / "dashboards").glob("*.json")
    }
    assert committed == built, "run: uv run python deploy/observability/grafana/build.py"


def test_promtool_parses_every_panel_query(tmp_path: Path) -> None:
    """Each panel's expression, checked by promtool as a recording rule's."""
    panels = [expr for where, expr in queries() if ".json: " in where]
    rules = {
        "groups": [
            {"name": "panels", "rules": [{"record": f"panel:{n}", "expr": e} for n, e in enumerate(panels)]}
        ]
    }
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    checked = run_promtool("check", "rules", str(tmp_path / "panels.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboards_have_unique_ids_and_panels_that_do_not_overlap() -> None:
    dashboards = dashboard_files()
    assert len({dashboard["uid"] for dashboard in dashboards.values()}) == len(dashboards)
    for name, dashboard in dashboards.items():
        cells = set()
        for panel in dashboard["panels"]:
            box = panel["gridPos"]
            assert box["x"] + box["w"] <= 24, f"{name}: {panel['title']} is wider than the grid"
            area = {
                (x, y)
                for x in range(box["x"], box["x"] + box["w"])
                for y in range(box["y"], box["y"] + box["h"])
            }
            assert not cells & area, f"{name}: {panel['title']} overlaps another panel"
            cells |= area
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"


def test_the_metric_name_reader_finds_series_and_skips_functions_labels_and_clauses() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (job, le) (rate(a_seconds_bucket{job="x",le!="1"}[5m])))'
        " / on (job) group_left b_total unless c == 0 and bool d offset 5m"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c", "d"}
    assert label_values('x{template=~"a|b", job="gateway"}', "template") == {"a", "b"}
