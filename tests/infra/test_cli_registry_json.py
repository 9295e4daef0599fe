"""`aiaas publish --features`, `models --json` and `versions --json`, through `main([...])`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.cache import sha256_file
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_cli_registry import run


def test_publish_with_feature_names_and_a_wrong_count_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    model = onnx_factory.linear_classifier(tmp_path / "iris.onnx")
    code, _, err = run(
        capsys, store, "publish", str(model), "--name", "iris", "--features", "a,b,c"
    )
    assert code == 1
    assert "--features: 3 feature names for input 'x' of 4 columns" in err
    assert not store.exists("models/iris/versions/1/manifest.json")  # nothing written
    names = "sepal_length,sepal_width,petal_length,petal_width"
    assert run(capsys, store, "publish", str(model), "--name", "iris", "--features", names)[0] == 0
    assert Registry(store).resolve("iris").features == tuple(names.split(","))
    code, out, _ = run(capsys, store, "show", "iris")
    assert code == 0 and f"features:  {names.replace(',', ', ')}" in out


def test_models_and_versions_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = LocalStore(tmp_path / "store")
    assert json.loads(run(capsys, store, "models", "--json")[1]) == {
        "store": store.uri,
        "models": [],
    }
    model = onnx_factory.linear_classifier(tmp_path / "iris.onnx")
    for _ in range(2):
        run(capsys, store, "publish", str(model), "--name", "iris", "--labels", "a,b,c")
    run(capsys, store, "promote", "iris", "1")
    code, out, _ = run(capsys, store, "models", "--json")
    assert code == 0
    assert json.loads(out)["models"] == [
        {
            "name": "iris",
            "versions": ["1", "2"],
            "latest": "2",
            "aliases": {"production": "1"},
            "alias_targets": {"production": {"version": "1", "weights": None, "shadow": None}},
            "problems": [],
        }
    ]
    doc = json.loads(run(capsys, store, "versions", "iris", "--json")[1])
    assert [(v["version"], v["task"]) for v in doc["versions"]] == [
        ("1", "classification"),
        ("2", "classification"),
    ]
    assert doc["versions"][0]["sha256"] == sha256_file(model)
