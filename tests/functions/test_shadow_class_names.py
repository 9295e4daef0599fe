"""The ShadowFunction (functions/shadow/handler.py) on a CloudWatch Logs subscription event
holding the copies the real predict handler prints in Lambda, for shadows whose classes are
named differently from the served version's: the EMF it writes says how the classes were
matched, and the agreement equals an offline comparison of the same requests run through
onnxruntime directly (the classes matched by index, as `aiaas compare` matches them). Compared
by name, a shadow naming the same three classes `x, y, z` agreed with `a, b, c` on no row."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.predict import metric_names as m
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_shadow import offline, requests
from tests.functions.test_shadow_handler import EVENT, ROWS, emf, printed_copies, replay
from tests.publishing import publish_linear


def registry_with_shadow(tmp_path: Path, labels: tuple[str, ...]) -> Registry:
    """`m:1` (classes a, b, c) serving, `m:2` (other weights, classes `labels`) its shadow;
    no labels: a classifier published without --labels (it answers "0", "1", "2")."""
    registry = Registry(LocalStore(tmp_path / "store"))
    publish_linear(registry, tmp_path, "m", "1", seed=1, labels=("a", "b", "c"))
    path = onnx_factory.linear_classifier(tmp_path / "m-2.onnx", seed=2)
    manifest = onnx_factory.manifest_for(path, "m", "2", labels=("a", "b", "c"))
    registry.publish(dataclasses.replace(manifest, labels=labels), path)
    registry.set_alias("m", "production", "1")
    registry.set_shadow("m", "production", "2", 1.0)
    return registry


def subscription_event(lines: list[str]) -> dict[str, Any]:
    """The golden subscription event, its log events `lines`."""
    event = json.loads(EVENT.read_text())
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    data["logEvents"] = [
        {"id": str(i), "timestamp": 0, "message": line} for i, line in enumerate(lines)
    ]
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode()))}}


def replayed_emf(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    lines = printed_copies(registry, tmp_path)
    capsys.readouterr()
    result = replay(tmp_path, subscription_event(lines))
    assert (result["replayed"], result["failed"]) == (3 * ROWS, 0), result
    docs = emf(capsys.readouterr().out)
    assert len(docs) == 3 * ROWS and all(d[m.SHADOW_REQUESTS] == 1 for d in docs)
    return docs


def test_a_shadow_naming_the_same_classes_otherwise_agrees_by_class_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = registry_with_shadow(tmp_path, ("x", "y", "z"))
    docs = replayed_emf(tmp_path, registry, capsys)
    served, shadow = offline(registry, tmp_path, requests()[:ROWS])
    agreed = int((served.argmax(axis=1) == shadow.argmax(axis=1)).sum())
    assert 0 < agreed < len(served)
    # Three routes (predict, infer JSON, infer binary) replay the same requests.
    assert sum(d[m.SHADOW_ROWS] for d in docs) == 3 * len(served)
    assert sum(d[m.SHADOW_AGREED] for d in docs) == 3 * agreed  # by name: 0
    assert sum(d[m.SHADOW_BY_INDEX] for d in docs) == 3 * len(served)
    assert all(m.SHADOW_UNMATCHED not in d for d in docs)
    units = {x["Name"]: x["Unit"] for x in docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units[m.SHADOW_BY_INDEX] == "Count"


def test_a_shadow_whose_classes_cannot_be_matched_counts_no_agreement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Versions 1 names three classes, 2 none: nothing says which is which (`aiaas compare`
    says "not comparable"), so no agreement is written, not a 0 a rollout would judge."""
    registry = registry_with_shadow(tmp_path, ())
    docs = replayed_emf(tmp_path, registry, capsys)
    rows = sum(len(x) for x in requests()[:ROWS])
    assert sum(d[m.SHADOW_ROWS] for d in docs) == 3 * rows
    assert all(m.SHADOW_AGREED not in d for d in docs)  # by name: 0 agreed, judged
    assert sum(d[m.SHADOW_UNMATCHED] for d in docs) == 3 * rows
    assert all(m.SHADOW_BY_INDEX not in d for d in docs)
    assert np.isfinite([d[m.SHADOW_MAX_ABS] for d in docs]).all()  # outputs still compared
    said = [r for r in caplog.records if r.getMessage().startswith("shadow 2 of m:1: ")]
    assert len(said) == 1 and said[0].levelname == "WARNING"  # once a version pair
    assert "2 names none (published without --labels): nothing says which class" in (
        said[0].getMessage()
    )
