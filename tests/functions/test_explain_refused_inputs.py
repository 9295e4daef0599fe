"""Explain answers a row the model refuses as predict does: a 422 naming what to fix, never a
500. Explain scores on a session of its own where the host has several CPUs, and its refusals
skipped the error mapping of the model's run ("internal error" for a category the model was
not trained on, where predict named the category and the known ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.explain import explainer
from infra.cli.main import main
from tests.functions.test_predict_explain import post, service
from tests.sklearn_models import region_frame, region_pipeline


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """region:1 (OneHotEncoder's default: an unseen category is an error), baselined."""
    root = tmp_path_factory.mktemp("explain-refused")
    model, train = root / "region.onnx", root / "train.csv"
    model.write_bytes(region_pipeline("error")[1])
    region_frame(60).to_csv(train, index=False)
    store = str(root / "store")
    assert main(["--store", store, "publish", str(model), "--name", "region"]) == 0
    assert main(["--store", store, "baseline", "region", str(train)]) == 0
    return root


@pytest.mark.parametrize("cpus", [1, 2], ids=["its-own-session", "a-wide-session"])
def test_an_unseen_category_is_the_422_predict_answers(
    root: Path, monkeypatch: pytest.MonkeyPatch, cpus: int
) -> None:
    monkeypatch.setattr(explainer, "cpu_count", lambda: cpus)
    svc = service(root, "region")
    record = {"alcohol": 13.5, "malic": 3.0, "ash": 2.5, "region": "west"}
    predicted = post(svc, "/models/region/predict", {"instances": [record]})
    explained = post(svc, "/models/region/explain", {"instances": [record]})
    assert predicted[0] == 422 and "'west' is not a category" in predicted[1]["error"]
    assert explained == predicted
    record["region"] = "north"
    assert post(svc, "/models/region/explain", {"instances": [record]})[0] == 200


def test_a_refused_row_leaves_no_onnxruntime_line_on_stderr(
    root: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The 422 is the answer: onnxruntime's own ERROR line (ANSI red, outside `aiaas serve`'s
    JSON log) came on stderr with every explain of an unseen category on the wide session,
    one per refused row in `aiaas explain --file`, where predict logs none."""
    monkeypatch.setattr(explainer, "cpu_count", lambda: 2)
    svc = service(root, "region")
    record = {"alcohol": 13.5, "malic": 3.0, "ash": 2.5, "region": "west"}
    capfd.readouterr()
    status, doc = post(svc, "/models/region/explain", {"instances": [record]})
    assert status == 422 and "'west' is not a category" in doc["error"]
    err = capfd.readouterr().err
    assert "onnxruntime" not in err and "OneHotEncoder" not in err, err


def test_a_row_a_model_taking_gaps_cannot_score_is_the_422_predict_answers(
    tmp_path: Path,
) -> None:
    """A model published with --allow-nonfinite answers NaN for a row it cannot score (a
    missing value here; infinity in OIP binary): predict says so of the row (422, fill it in or
    leave it out); explain said 500, blaming its masked inputs."""
    import dataclasses

    import numpy as np

    from functions.runtime.explain.background import BACKGROUND_FILE, summarize
    from functions.runtime.registry import Registry, version_prefix
    from functions.runtime.store import LocalStore
    from tests import onnx_factory

    store = LocalStore(tmp_path / "store")
    path = onnx_factory.linear_classifier(tmp_path / "gaps.onnx")
    manifest = onnx_factory.manifest_for(path, "gaps", "1", labels=("a", "b", "c"))
    spec = dataclasses.replace(manifest.inputs[0], finite=False)  # --allow-nonfinite
    Registry(store).publish(dataclasses.replace(manifest, inputs=(spec,)), path)
    background = summarize(np.random.default_rng(0).normal(3, 1, size=(60, 4)))
    store.put_bytes(
        f"{version_prefix('gaps', '1')}/{BACKGROUND_FILE}", background.to_json().encode()
    )
    svc = service(tmp_path, "gaps")
    body = '{"inputs": [[1.0, 2.0, 3.0, 4.0], [1.0, null, 3.0, 4.0]]}'  # null: a missing value
    predicted = post(svc, "/models/gaps/predict", body)
    explained = post(svc, "/models/gaps/explain", body)
    assert predicted[0] == 422 and "(index 1)" in predicted[1]["error"], predicted
    assert explained == predicted


@pytest.mark.parametrize(("value", "shown"), [(True, "true"), ("5", '"5"'), (7.5, "7.5")])
def test_a_parameter_that_is_no_integer_is_quoted_as_json_spells_it(
    root: Path, value: object, shown: str
) -> None:
    """`"samples": true` was answered "got True", Python's spelling, not the body's."""
    record = {"alcohol": 13.5, "malic": 3.0, "ash": 2.5, "region": "north"}
    body = {"instances": [record], "parameters": {"samples": value}}
    status, doc = post(service(root, "region"), "/models/region/explain", body)
    assert (status, doc["error"]) == (400, f"parameters.samples must be an integer; got {shown}")
