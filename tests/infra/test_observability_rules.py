"""The Prometheus rules and Grafana dashboard shipped in infra/observability/ read what a real
`aiaas serve` exposes: every metric and label they name is in a real scrape (two models, an
alias split, 401/404/422/5xx, an eviction, capture, shadow), checked without promtool; with
promtool (Debian's `prometheus` package) the rules also pass `promtool check rules` and their
unit tests, and every dashboard query parses as PromQL."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.infra.observability_promql import (
    RULE_TESTS,
    RULES,
    TARGET_LABELS,
    Exposition,
    as_promql,
    dashboard_exprs,
    labels_in,
    metrics_in,
    recorded_labels,
    rules,
)
from tests.infra.serve_exposition import served_exposition

pytestmark = pytest.mark.xdist_group("observability")  # one served scrape for the module
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (apt-get install prometheus); the rules' structure and "
    "names are still checked against a real scrape by the tests above",
)
_DURATION = re.compile(r"^\d+[smh]$")
_RECORD = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")  # level:metric:operations


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exposition]:
    root = tmp_path_factory.mktemp("observability")
    for _, text in served_exposition(root):  # one worker: every family is declared, even empty
        yield Exposition.parse(text)


def check_names(expr: str, exposition: Exposition, where: str) -> None:
    """Every metric `expr` reads is exposed (or recorded by our rules), with the labels used."""
    records = recorded_labels(exposition.labels)
    known = {**{n: set(labels) for n, labels in exposition.labels.items()}, **records}
    read = metrics_in(expr)
    for name in read:
        assert name in known, f"{where}: {name} is neither in a real /metrics nor recorded"
    available = set().union(*(known[name] for name in read)) | TARGET_LABELS | {"le"}
    for name, labels in labels_in(expr).items():
        own = available if name in ("", "up") else known[name] | TARGET_LABELS
        assert labels <= own, f"{where}: {name or 'grouping'} uses {labels - own}, not exposed"


def test_the_exposition_holds_samples_of_the_families_the_alerts_watch(
    exposition: Exposition,
) -> None:
    """So the name checks below are against real series, not only declarations."""
    for name in ("aiaas_requests_total", "aiaas_request_duration_seconds_bucket",
                 "aiaas_cold_starts_total", "aiaas_model_evictions_total",
                 "aiaas_model_loads_total", "aiaas_model_load_duration_seconds_bucket",
                 "aiaas_capture_lines_total", "aiaas_shadow_requests_total"):  # fmt: skip
        assert name in exposition.labels, name
    assert {"2xx", "4xx", "5xx"} <= exposition.values["status_class"]
    assert {"churn", "fraud", "-"} <= exposition.values["model"]
    assert {"1", "2", "-"} <= exposition.values["version"]  # the split's two versions


def test_every_metric_and_label_a_rule_names_is_in_a_real_scrape(exposition: Exposition) -> None:
    for rule in rules():
        check_names(rule["expr"], exposition, rule.get("record") or rule["alert"])


def test_every_dashboard_query_names_only_exposed_metrics_and_labels(
    exposition: Exposition,
) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    for expr in exprs:
        check_names(as_promql(expr), exposition, expr)


def test_the_rules_file_has_the_shape_prometheus_loads() -> None:
    """What `promtool check rules` would refuse, checked where promtool is not installed."""
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names))
    alerts = set()
    for rule in rules():
        assert ("record" in rule) != ("alert" in rule), rule
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule
        if "record" in rule:
            assert _RECORD.match(rule["record"]), rule["record"]
            assert set(rule) == {"record", "expr"}, rule
            continue
        alerts.add(rule["alert"])
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert _DURATION.match(rule["for"]), rule
        assert rule["labels"]["severity"] in ("critical", "warning"), rule
        assert set(rule["annotations"]) == {"summary", "description"}, rule
    tested = {case["alertname"] for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for case in t.get("alert_rule_test", [])}  # fmt: skip
    assert tested == alerts  # every alert has a promtool unit test


def test_the_unit_tests_input_series_are_shaped_like_a_real_scrape(
    exposition: Exposition,
) -> None:
    """Names, label names and the values of route, status_class and le as serve writes them."""
    series = re.compile(r"^(\w+)\{(.*)\}$")
    pair = re.compile(r'(\w+)="([^"]*)"')
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for given in test["input_series"]:
            name, body = series.match(given["series"]).groups()  # type: ignore[union-attr]
            labels = dict(pair.findall(body))
            assert set(labels) >= TARGET_LABELS, given
            if name == "up":
                continue
            assert set(labels) - TARGET_LABELS == exposition.labels[name], given
            for label in ("route", "status_class", "le", "model", "version"):
                if label in labels:
                    assert labels[label] in exposition.values[label], (label, given)


@needs_promtool
def test_promtool_checks_the_rules_and_passes_their_unit_tests() -> None:
    assert PROMTOOL is not None
    for command in (("check", "rules", RULES.name), ("test", "rules", RULE_TESTS.name)):
        done = subprocess.run(
            [PROMTOOL, *command], cwd=RULES.parent, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout, done.stdout


@needs_promtool
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each query, Grafana's variables given values, as a recording rule promtool parses."""
    assert PROMTOOL is not None
    queries = [
        {"record": f"dashboard:query_{i}:check", "expr": as_promql(expr)}
        for i, expr in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": queries}]}))
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(queries)} rules found" in done.stdout, done.stdout
