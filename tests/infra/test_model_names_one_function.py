"""Model names that differ only in '-', '_' or '.' (iris-logistic, iris_logistic) map to one
predict function id (`Predict&{ModelName}` keeps letters and digits): `aiaas serve` listed
both and answered only the later one, a 404 for the other (a docs walk, hunt_docs.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.local.stack import stack_functions
from tests.onnx_factory import linear_classifier


def test_publish_refuses_a_name_that_shares_a_function(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = linear_classifier(tmp_path / "l.onnx")
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(path), "--name", "iris-logistic"]) == 0
    capsys.readouterr()
    assert main(["--store", store.uri, "publish", str(path), "--name", "iris_logistic"]) == 1
    assert capsys.readouterr().err.strip() == (
        "aiaas publish: error: model name 'iris_logistic' differs from this store's "
        "'iris-logistic' only in '-', '_' or '.': both would be served by one function "
        "(Predictirislogistic), in the template as in aiaas serve; choose another name"
    )
    assert main(["--store", store.uri, "publish", str(path), "--name", "iris-logistic"]) == 0


def test_a_store_that_holds_both_serves_both() -> None:
    functions = stack_functions(["iris-logistic", "iris_logistic"])
    served = {f.environment["AIAAS_MODEL"]: f.logical_id for f in functions.values()
              if "AIAAS_MODEL" in f.environment}  # fmt: skip
    assert served == {
        "iris-logistic": "Predictirislogistic",
        "iris_logistic": "Predictirislogistic2",
    }
    routes = {r.path for f in functions.values() for r in f.routes}
    assert {"/models/iris-logistic/predict", "/models/iris_logistic/predict"} <= routes


def test_shadow_off_with_a_sample_is_refused_as_capture_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aiaas shadow m --sample 0.2 --off` exited 0, the sample silently dropped (docs walk)."""
    path = linear_classifier(tmp_path / "l.onnx")
    store = LocalStore(tmp_path / "store")
    for _ in range(2):
        assert main(["--store", store.uri, "publish", str(path), "--name", "m"]) == 0
    assert main(["--store", store.uri, "promote", "m", "1"]) == 0
    capsys.readouterr()
    assert main(["--store", store.uri, "shadow", "m", "--sample", "0.2", "--off"]) == 1
    assert (
        capsys.readouterr().err.strip() == "aiaas shadow: error: give --sample or --off, not both"
    )
    assert main(["--store", store.uri, "shadow", "m", "2", "--sample", "0.2"]) == 0
