"""What the shipped rules and dashboard (infra/observability/) name, read without promtool:
the metric names and label names in a PromQL expression, and what a real `/metrics` exposes,
so tests can check every name a rule or panel uses against a real `aiaas serve`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from functions.predict import metric_names as m

OBSERVABILITY = Path(__file__).resolve().parents[2] / "infra" / "observability"
RULES = OBSERVABILITY / "aiaas-rules.yaml"
RULE_TESTS = OBSERVABILITY / "aiaas-rules.test.yaml"
DASHBOARD = OBSERVABILITY / "aiaas-dashboard.json"

# Labels Prometheus itself adds to every scraped series (target labels), and `le`.
TARGET_LABELS = frozenset({"job", "instance"})
# Families a real scrape declares (# TYPE) but holds no sample of after the traffic in
# tests/infra/serve_exposition.py (they need a failing shadow or store): their label names are
# the ones the code gives them.
UNSAMPLED_LABELS = {
    m.SHADOW_ERRORS: m.SHADOW_LABELS,
    m.SHADOW_DROPPED: m.SHADOW_LABELS,
    m.CAPTURE_DROPPED: m.CAPTURE_REASON_LABELS,
    m.CAPTURE_SKIPPED: m.CAPTURE_REASON_LABELS,
}
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
_METRIC = re.compile(r"\b(aiaas_[a-z0-9_]+|[a-z_]+:[a-z0-9_:]+)\b(?!\s*[=!~(])")
_SELECTOR = re.compile(r"\b(aiaas_[a-z0-9_]+|[a-z_]+:[a-z0-9_:]+|up)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_WITHOUT = re.compile(r"\bwithout\s*\(([^)]*)\)")
_GROUPING = re.compile(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)")


@dataclass
class Exposition:
    """Sample names and their label names and values, from a real `/metrics` text."""

    labels: dict[str, set[str]] = field(default_factory=dict)  # sample name -> label names
    values: dict[str, set[str]] = field(default_factory=dict)  # label name -> values seen
    declared: set[str] = field(default_factory=set)  # sample names a # TYPE line promises

    @classmethod
    def parse(cls, text: str) -> Exposition:
        found = cls()
        for family in text_string_to_metric_families(text):
            for suffix in _SUFFIXES.get(family.type, ()):
                found.declared.add(family.name + suffix)
            for sample in family.samples:
                found.labels.setdefault(sample.name, set()).update(sample.labels)
                for name, value in sample.labels.items():
                    found.values.setdefault(name, set()).add(value)
        for name, labels in UNSAMPLED_LABELS.items():
            if name in found.declared:
                found.labels.setdefault(name, set(labels))
        return found


def metrics_in(expr: str) -> set[str]:
    """The metric names (`aiaas_*` and recorded `level:metric:ops`) an expression reads."""
    return {name for name in _METRIC.findall(expr) if not name.startswith("__")}


def labels_in(expr: str) -> dict[str, set[str]]:
    """Label names per metric in the expression's selectors, and under '' those it groups or
    matches on (by/on/without/ignoring)."""
    found: dict[str, set[str]] = {"": set()}
    for name, matchers in _SELECTOR.findall(expr):
        found.setdefault(name, set()).update(_MATCHER.findall(matchers))
    for grouping in _GROUPING.findall(expr):
        found[""].update(label.strip() for label in grouping.split(",") if label.strip())
    return found


def rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def recorded() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def dashboard_exprs() -> list[str]:
    """Every query the dashboard runs: its panels' and its variables'."""
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(variable["query"]["query"])
    return exprs


def as_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables given values, as Prometheus would get it."""
    for variable, value in (("$__rate_interval", "5m"), ("$model", ".*"), ("$version", ".*")):
        expr = expr.replace(variable, value)
    if expr.startswith("label_values("):  # Grafana's, not PromQL: its series selector
        expr = expr.removeprefix("label_values(").rsplit(",", 1)[0]
    return expr


def recorded_labels(exposed: dict[str, set[str]]) -> dict[str, set[str]]:
    """Each recording rule's name -> the labels its series carry: those it groups `by`, or
    (`sum without (...)`) those of the series it reads, with the job's, less the ones named."""
    found: dict[str, set[str]] = {}
    for rule in rules():
        if "record" not in rule:
            continue
        expr = rule["expr"]
        dropped = {label.strip() for group in _WITHOUT.findall(expr) for label in group.split(",")}
        if not dropped:
            found[rule["record"]] = labels_in(expr)[""]
            continue
        read = set().union(*({**exposed, **found}[name] for name in metrics_in(expr)))
        found[rule["record"]] = (read | TARGET_LABELS) - dropped
    return found
