"""A denied feature in a record of the feature input (hunt_security2 3), and in a one-feature
model's column sent flat (hunt_security2 5).

`{"instances": [{"x": [1, 81234, 3, 4]}]}` (a record naming the input, its row by position) is
answered as `{"inputs": [[1, 81234, 3, 4]]}` is, but only records by feature name and rows by
position lost the denied feature: this form was captured whole. The real predict handler and
captured lines read back from a directory store.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from functions.runtime.capture.reader import capture_keys
from functions.runtime.capture.rows import rows_of
from functions.runtime.capture.setting import set_capture
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_capture import MODEL, lines, predict, publish, service


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    publish(registry, tmp_path)
    return registry


def test_a_record_of_the_feature_input_loses_its_denied_values(
    registry: Registry, tmp_path: Path
) -> None:
    set_capture(registry, MODEL, sample=1.0, deny=["income"], actor="test")
    svc = service(registry, tmp_path)
    predict(svc, {"instances": [{"x": [1, 81234, 3, 4]}, {"x": [5, 71234, 7, 8]}]})
    predict(svc, {"instances": [{"x": [2, 61234, 3, 4], "id": "r-1"}]})  # other fields stay
    svc.capture.buffer.close()  # lines written; its timer thread (holding the store) ends
    raw = b"".join(registry.store.get_bytes(k) for k in capture_keys(registry.store, MODEL))
    for value in (b"81234", b"71234", b"61234"):
        assert value not in raw, value
    requests = [d["request"] for d in lines(registry.store)]
    assert requests[0] == {"instances": [{"x": [1, None, 3, 4]}, {"x": [5, None, 7, 8]}]}
    assert requests[1] == {"instances": [{"x": [2, None, 3, 4], "id": "r-1"}]}
    manifest = registry.manifest(MODEL, "1")
    rows = [row for line in lines(registry.store) for row in rows_of(line, manifest)]
    assert [(row["age"], row["income"]) for row in rows] == [(1, None), (5, None), (2, None)]


def test_a_one_feature_models_column_sent_flat_loses_its_values(tmp_path: Path) -> None:
    """`{"inputs": [v1, v2]}` is two rows of a one-feature model: captured as sent, as only a
    row of the model's width (a list) or one value alone was nulled."""
    registry = Registry(LocalStore(tmp_path / "store"))
    path = onnx_factory.linear_classifier(tmp_path / "one.onnx", features=1)
    manifest = onnx_factory.manifest_for(path, MODEL, "1", labels=("stay", "churn", "maybe"))
    registry.publish(dataclasses.replace(manifest, features=("income",)), path)
    set_capture(registry, MODEL, sample=1.0, deny=["income"], actor="test")
    svc = service(registry, tmp_path)
    bodies: list[dict[str, Any]] = [
        {"inputs": [81234, 71234]},
        {"instances": [61234, 51234]},
        {"inputs": {"x": [41234, 31234]}},
        {"inputs": [[21234], [11234]]},
        {"instances": [{"x": 91234}, {"x": 81234}]},
    ]
    for body in bodies:
        predict(svc, body)
    svc.capture.buffer.close()  # lines written; its timer thread (holding the store) ends
    raw = b"".join(registry.store.get_bytes(k) for k in capture_keys(registry.store, MODEL))
    assert b"1234" not in raw, raw
    requests = [d["request"] for d in lines(registry.store)]
    assert requests[:3] == [
        {"inputs": [None, None]},
        {"instances": [None, None]},
        {"inputs": {"x": [None, None]}},
    ]
    stored = registry.manifest(MODEL, "1")
    rows = [row for line in lines(registry.store) for row in rows_of(line, stored)]
    assert [row["income"] for row in rows] == [None] * 10
