"""The ShadowFunction (functions/shadow/handler.py) on a real CloudWatch Logs subscription
event (events/shadow_logs.json: the shape `sam local generate-event cloudwatch logs` gives,
its logEvents the copy lines the real predict handler prints in Lambda): each copy is replayed
to the shadow version, and the agreement it writes as EMF equals an offline comparison of the
same requests run through onnxruntime directly."""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.predict import metric_names as m
from functions.predict.service import PredictService
from functions.predict.shadow import LogSink
from functions.predict.shadow_copy import MAX_COPY_BYTES, decode
from functions.predict.telemetry import RequestMetrics
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from infra.local.functions import load_handler
from tests.functions.test_predict_events import http_event
from tests.functions.test_predict_shadow import PREDICT, offline, registry_with, requests
from tests.functions.test_predict_shadow_v2 import binary_event, json_event

EVENT = Path(__file__).parents[2] / "events" / "shadow_logs.json"
ROWS = 8  # requests per route in the golden event: predict, infer JSON, infer binary


def printed_copies(registry: Registry, tmp_path: Path) -> list[str]:
    """The lines the real predict handler prints for ROWS requests on each route (Lambda)."""
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    out = io.StringIO()
    service = PredictService(
        ServedModel(pool, "m", ttl=3600),
        metrics=RequestMetrics(emf=False),
        shadow_sink=LogSink(out),
    )
    rows = requests()[:ROWS]
    events = [http_event("POST", PREDICT, json.dumps({"inputs": x.tolist()})) for x in rows]
    events += [json_event(x) for x in rows] + [binary_event(x) for x in rows]
    for event in events:
        assert service.handle(event)["statusCode"] == 200
    return out.getvalue().splitlines()


def messages(event: dict[str, Any]) -> list[str]:
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    return [e["message"] for e in data["logEvents"]]


def replay(tmp_path: Path, event: dict[str, Any]) -> dict[str, int]:
    handler = load_handler(
        "functions.shadow.handler.handler",
        {"AIAAS_STORE": str(tmp_path / "store"), "AIAAS_CACHE_DIR": str(tmp_path / "fn-cache")},
    )
    result: dict[str, int] = handler(event, None)
    return result


def emf(text: str) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]
    return [d for d in docs if d.get("shadow_version") == "2"]


def close(ours: Any, theirs: Any) -> bool:
    """The same models answer the same, to the last bits numpy's versions agree on: a score
    recorded with numpy 2.4 (0.6983045663135468) is one ulp off under 2.5, which a fresh
    install on any Python gets (0.6983045663135466)."""
    if isinstance(ours, float) and isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=1e-12)
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(close(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(map(close, ours, theirs))
    return bool(ours == theirs)


def test_the_golden_event_holds_what_the_predict_handler_prints(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    golden = [decode(line) for line in messages(json.loads(EVENT.read_text()))]
    printed = [decode(line) for line in printed_copies(registry, tmp_path)]
    assert len(printed) == 3 * ROWS
    for ours, theirs in zip(printed, golden, strict=True):
        assert (ours.route, ours.body, ours.header) == (theirs.route, theirs.body, theirs.header)
        assert close(ours.answer, theirs.answer), (ours.answer, theirs.answer)


def test_replayed_agreement_equals_an_offline_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    capsys.readouterr()
    result = replay(tmp_path, json.loads(EVENT.read_text()))
    assert result == {
        "copies": 3 * ROWS, "replayed": 3 * ROWS, "failed": 0, "not_copies": 0, "dropped": 0,
        "repeated": 0,
    }  # fmt: skip
    served, shadow = offline(registry, tmp_path, requests()[:ROWS])
    agreed = int((served.argmax(axis=1) == shadow.argmax(axis=1)).sum())
    printed = capsys.readouterr().out
    docs = emf(printed)
    assert len(docs) == 3 * ROWS and all(d[m.SHADOW_REQUESTS] == 1 for d in docs)
    # The replay loaded the shadow version once, and says so as the predict function would.
    loads = [json.loads(line) for line in printed.splitlines() if m.MODEL_LOADS in line]
    assert [(d["model"], d["version"], d["outcome"], d[m.MODEL_LOADS]) for d in loads] == [
        ("m", "2", "loaded", 1)
    ]
    assert sum(d[m.SHADOW_ROWS] for d in docs) == 3 * len(served)
    assert sum(d[m.SHADOW_AGREED] for d in docs) == 3 * agreed
    diff = np.abs(served.astype(np.float64) - shadow.astype(np.float64))
    assert max(d[m.SHADOW_MAX_ABS] for d in docs) == pytest.approx(diff.max(), rel=1e-12)
    dimensions = docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert ["model", "version", "shadow_version"] in dimensions


def test_a_control_message_and_other_lines_replay_nothing(tmp_path: Path) -> None:
    registry_with(tmp_path, ("a", "b", "c"))
    event = json.loads(EVENT.read_text())
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    data["logEvents"] = [{"id": "1", "timestamp": 0, "message": "[INFO] not a copy"}]
    other = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode()))}}
    assert replay(tmp_path, other)["not_copies"] == 1
    data["messageType"] = "CONTROL_MESSAGE"
    control = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode()))}}
    assert replay(tmp_path, control)["copies"] == 0


def test_a_copy_over_a_log_event_is_dropped_and_counted(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    out, emf_out = io.StringIO(), io.StringIO()
    service = PredictService(
        ServedModel(pool, "m", ttl=3600),
        metrics=RequestMetrics(out=emf_out),
        shadow_sink=LogSink(out),
    )
    big = '{"inputs": [[1, 2, 3, 4]]' + " " * MAX_COPY_BYTES + "}"
    assert service.handle(http_event("POST", PREDICT, big))["statusCode"] == 200
    assert out.getvalue() == ""
    service.metrics.flush()
    dropped = [d for d in emf(emf_out.getvalue()) if m.SHADOW_DROPPED in d]
    assert [d[m.SHADOW_DROPPED] for d in dropped] == [1]


def test_a_classifiers_label_output_is_no_difference(tmp_path: Path) -> None:
    """skl2onnx classifiers answer a label output (class numbers) beside the probabilities: a
    shadow that picks class 2 where the served version picked 1 differed by "1.0" there. The
    largest difference is now the probabilities', as `aiaas compare` reports it."""
    from functions.runtime.store import LocalStore
    from functions.shadow.replay import Replayer
    from infra.cli.main import main
    from tests.sklearn_models import export, wine_split

    store = LocalStore(tmp_path / "store")
    for kind in ("logistic", "forest"):  # versions 1 and 2
        model = export(kind, tmp_path / kind, zipmap=False)
        assert main(["--store", store.uri, "publish", str(model.path), "--name", "m"]) == 0
    registry = Registry(store)
    registry.set_alias("m", "production", "1")
    registry.set_shadow("m", "production", "2", 1.0)
    pool = ModelPool(registry, ArtifactCache(store, tmp_path / "cache"))
    out = io.StringIO()
    service = PredictService(
        ServedModel(pool, "m", ttl=3600),
        metrics=RequestMetrics(emf=False),
        shadow_sink=LogSink(out),
    )
    _, rows, _, _ = wine_split()
    event = http_event("POST", PREDICT, json.dumps({"inputs": rows.tolist()}))
    assert service.handle(event)["statusCode"] == 200
    (line,) = out.getvalue().splitlines()
    _, _, comparison = Replayer(pool, RequestMetrics(emf=False)).replay_line(line) or (0, 0, None)
    assert comparison is not None
    probabilities = [
        pool.load_version("m", v).predict({"X": rows}, typed=True)["probabilities"]
        for v in ("1", "2")
    ]
    labels = [p.argmax(axis=1) for p in probabilities]
    assert (labels[0] != labels[1]).any()  # the two disagree somewhere
    assert comparison.agreed == int((labels[0] == labels[1]).sum())
    diff = np.abs(probabilities[0].astype(np.float64) - probabilities[1])
    assert comparison.max_abs == pytest.approx(diff.max(), rel=1e-6)


@pytest.mark.parametrize(
    ("event", "said"),
    [
        ({"detail": {}}, "not a CloudWatch Logs subscription event (no awslogs.data)"),
        ({"awslogs": {"data": "not base64!"}}, "awslogs.data is not base64 of gzipped JSON"),
        ({"awslogs": {"data": base64.b64encode(b"not gzip").decode()}}, "is not base64 of gzipped"),
    ],
)
def test_an_event_that_is_no_log_subscription_is_said_so(
    tmp_path: Path, event: dict[str, Any], said: str
) -> None:
    """Was a bare KeyError: 'awslogs', or the base64/gzip library's own error."""
    from functions.runtime.errors import BadRequest

    with pytest.raises(BadRequest, match=re.escape(said)):
        replay(tmp_path, event)


def test_a_malformed_copy_is_no_copy_and_no_shadow_error(tmp_path: Path) -> None:
    """A line marked as a copy whose answer is no object (or marked `true`) failed in the replay
    and counted as an error of the shadow version, which feeds the rollout's checks; and
    'copies' counted every log line."""
    registry_with(tmp_path, ("a", "b", "c"))
    event = json.loads(EVENT.read_text())
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    good = data["logEvents"][0]["message"]
    broken = json.loads(good) | {"answer": "x"}
    marked_true = json.loads(good) | {"aiaas_shadow": True}
    lines = [good, json.dumps(broken), json.dumps(marked_true), "[INFO] not a copy"]
    data["logEvents"] = [{"id": str(i), "timestamp": 0, "message": m} for i, m in enumerate(lines)]
    packed = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode()))}}
    assert replay(tmp_path, packed) == {
        "copies": 1, "replayed": 1, "failed": 0, "not_copies": 3, "dropped": 0, "repeated": 0
    }  # fmt: skip
