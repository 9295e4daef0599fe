"""Every alarm on an `aiaas` metric watches a series the code really writes.

A CloudWatch alarm matches a metric by namespace, name and the exact set of dimensions; one
that names a metric, a dimension or a namespace no EMF document carries is silent forever
(`TreatMissingData: notBreaching`), and no deploy says so. So: parse the template as SAM reads
it (a second model added, as `infra.model_resources --write` does), run the code that writes
the EMF (the predict function's metrics, with the function's environment from the template;
the drift job over a real store), and check each alarm against what came out.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from functions.drift.job import DriftSettings, run
from functions.predict.shadow_copy import MARKER
from functions.predict.telemetry import RequestMetrics
from functions.runtime.store import LocalStore
from infra.template import load_template
from tests.functions.test_drift_handler import serve_shifted
from tests.infra.test_template_iam import expanded_resources

ROUTE = "POST /models/{name}/predict"


def environment(function: str) -> dict[str, str]:
    """A function's environment as Lambda sets it: the Globals, then its own (literals only)."""
    template = load_template()
    merged = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    props = template["Resources"][function]["Properties"]
    merged.update(props.get("Environment", {}).get("Variables", {}))
    return {k: v for k, v in merged.items() if isinstance(v, str)}


def watched(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(alarm, metric) for every alarm metric outside the AWS/* namespaces."""
    found = []
    for logical, r in resources.items():
        if r["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = r["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        for metric in [props, *stats] if "MetricName" in props else stats:
            if not str(metric["Namespace"]).startswith("AWS/"):
                found.append((logical, metric))
    return found


def series(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of every series an EMF document writes."""
    out = []
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        for names in directive["Dimensions"]:
            for metric in directive["Metrics"]:
                dims = {n: str(doc[n]) for n in names}
                out.append((directive["Namespace"], metric["Name"], dims))
    return out


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, dict[str, str]]]:
    """The series the predict function and the drift job write, as deployed."""
    out = io.StringIO()
    deployed = RequestMetrics.from_env(environment("Predictdigitsmlp"))
    assert deployed.emf  # the template does not turn EMF off
    metrics = RequestMetrics(deployed.namespace, emf=True, out=out)  # out: Lambda's stdout
    metrics.cold_start("digits-mlp", "1", 0.5)
    for status in (200, 422, 500, 503):
        metrics.record("digits-mlp", "1", ROUTE, status, 0.001)
    metrics.capture("written", "digits-mlp", "1", 3)
    metrics.capture("full", "digits-mlp", "1", 1)
    metrics.flush()
    docs = [json.loads(line) for line in out.getvalue().splitlines() if '"_aws"' in line]
    root = tmp_path_factory.mktemp("alarms")
    store = LocalStore(root / "store")
    serve_shifted(store, root, "1", 2.0)
    job = environment("DriftJob")
    settings = DriftSettings(namespace=job.get("POWERTOOLS_METRICS_NAMESPACE", "aiaas"))
    docs += run(store, settings, time.time())
    return [s for doc in docs for s in series(doc)]


def test_every_aiaas_alarm_watches_a_series_the_code_writes(
    emitted: list[tuple[str, str, dict[str, str]]],
) -> None:
    # As written (what `sam deploy` reads), and with a model added by the generator.
    alarms = watched(load_template()["Resources"]) + watched(expanded_resources())
    assert {a for a, _ in alarms} >= {"Predictdigitsmlp5xx", "PredictirisDrift"}
    for alarm, metric in alarms:
        dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
        assert "model" in dims, alarm  # every aiaas series is per model
        matches = [
            (ns, name, got)
            for ns, name, got in emitted
            if (ns, name) == (metric["Namespace"], metric["MetricName"]) and set(got) == set(dims)
        ]
        assert matches, f"{alarm}: no EMF series {metric['MetricName']} by {sorted(dims)}"
        fixed = {k: v for k, v in dims.items() if k != "model"}  # e.g. status_class: 5xx
        assert any(all(got[k] == v for k, v in fixed.items()) for *_, got in matches), alarm


def test_the_shadow_filter_matches_the_lines_the_function_writes() -> None:
    """`{ $.KEY = 1 }` selects the shadow copies: KEY is the marker shadow_copy writes."""
    resources = [*load_template()["Resources"].values(), *expanded_resources().values()]
    filters = [
        r["Properties"]["FilterPattern"]
        for r in resources
        if r["Type"] == "AWS::Logs::SubscriptionFilter"
    ]
    assert filters and all(f == f"{{ $.{MARKER} = 1 }}" for f in filters), filters


def test_the_drift_alarm_fires_on_what_the_job_writes_for_a_drifted_version(
    tmp_path: Path,
) -> None:
    """The drift alarm's statistic over the job's value crosses its threshold's default."""
    template = load_template()
    default = float(template["Parameters"]["DriftPsiThreshold"]["Default"])
    store = LocalStore(tmp_path / "store")
    serve_shifted(store, tmp_path, "1", 2.0)
    (doc,) = run(store, DriftSettings(threshold=default), time.time())
    alarm = expanded_resources()["PredictirisDrift"]["Properties"]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert doc[alarm["MetricName"]] > default
