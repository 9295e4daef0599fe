"""A classifier's answers in every JSON form, as drift and data capture see them: a real
skl2onnx random forest (string classes, no ZipMap) published with `aiaas publish`, baselined with
`aiaas baseline` on its training CSV, answering real API Gateway v2 events in the predict
handler. Simple JSON, OIP JSON with every output, OIP naming only the label output, and OIP with
tritonclient's class_count all count in the drift histograms (the prediction included), export
the label and score served, and `aiaas monitor` shows the label shares drift compares.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import orjson
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.local.functions import load_handler_module
from tests.functions.test_predict_events import http_event
from tests.sklearn_models import CLASS_NAMES, Exported, export, wine_split

MODEL = "wine"
ROWS = 8
FORMS = ("simple", "oip", "oip-label", "oip-class-count")


def body(form: str, rows: np.ndarray) -> tuple[str, dict[str, Any]]:
    if form == "simple":
        return f"/models/{MODEL}/predict", {"instances": rows.tolist()}
    tensor = {"name": "X", "shape": list(rows.shape), "datatype": "FP32"}
    doc: dict[str, Any] = {"inputs": [{**tensor, "data": rows.ravel().tolist()}]}
    if form == "oip-label":
        doc["outputs"] = [{"name": "label"}]
    if form == "oip-class-count":  # tritonclient's InferRequestedOutput("probabilities", 2)
        doc["outputs"] = [{"name": "probabilities", "parameters": {"classification": 2}}]
    return f"/v2/models/{MODEL}/infer", doc


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Exported, ModuleType]:
    """The model published, baselined, captured at 100%, and asked once in each form; the
    drift counts and captured lines then written as `aiaas serve` stopping writes them."""
    root = tmp_path_factory.mktemp("classifier-capture")
    store = root / "store"
    model = export("forest", root, zipmap=False, string_classes=True)
    x_train, *_ = wine_split()
    with open(root / "train.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow([f"X_{i}" for i in range(x_train.shape[1])])
        out.writerows(x_train.tolist())
    cli = ["--store", str(store)]
    assert main([*cli, "publish", str(model.path), "--name", MODEL]) == 0
    assert main([*cli, "baseline", MODEL, str(root / "train.csv")]) == 0
    assert main([*cli, "capture", MODEL, "--sample", "1"]) == 0
    env = {"AIAAS_MODEL": MODEL, "AIAAS_STORE": str(store), "AIAAS_CACHE_DIR": str(root / "c")}
    handler, module = load_handler_module("functions.predict.handler.handler", env)
    for form in FORMS:
        call(handler, *body(form, model.x_test[:ROWS]))
    module.release()  # its counts and lines written, as `aiaas serve` retiring it writes them,
    return store, model, module  # and its timer threads end (they held its store open)


def call(handler: Callable[..., Any], path: str, doc: dict[str, Any]) -> dict[str, Any]:
    response = handler(http_event("POST", path, json.dumps(doc)), None)
    assert response["statusCode"] == 200, response["body"]
    return orjson.loads(response["body"])  # type: ignore[no-any-return]


def test_every_json_form_counts_in_drift_with_its_prediction(
    served: tuple[Path, Exported, ModuleType],
) -> None:
    store, model, _ = served
    local = LocalStore(store)
    docs = [orjson.loads(local.get_bytes(k)) for k in local.list_keys(f"monitoring/{MODEL}")]
    assert sum(d["rows"] for d in docs) == ROWS * len(FORMS)  # was 2 forms: names skipped
    predicted = np.sum([d["prediction"] for d in docs], axis=0)
    want = [model.expected[:ROWS].count(label) * len(FORMS) for label in CLASS_NAMES]
    assert predicted.tolist() == want


def test_export_has_the_label_and_score_served_in_every_form(
    served: tuple[Path, Exported, ModuleType], tmp_path: Path
) -> None:
    store, model, _ = served
    out = tmp_path / "captured.jsonl"
    assert main(["--store", str(store), "capture", "export", MODEL, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == ROWS * len(FORMS)
    best = model.estimator.predict_proba(model.x_test[:ROWS]).max(1)
    for form, part in zip(FORMS, np.split(np.array(rows), len(FORMS)), strict=True):
        assert [r["served_label"] for r in part] == model.expected[:ROWS], form
        scores = [r["served_score"] for r in part]
        if form == "oip-label":  # no scores were answered: none are made up
            assert scores == [None] * ROWS
            continue
        assert all(isinstance(s, float) for s in scores), (form, scores)
        np.testing.assert_allclose(scores, best, atol=1e-6, err_msg=form)


def test_monitor_shows_the_label_shares_prediction_drift_compares(
    served: tuple[Path, Exported, ModuleType],
) -> None:
    store, model, _ = served
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert main(["--store", str(store), "monitor", MODEL, "--no-png"]) == 0
    lines = printed.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("predicted label"))
    shares = {line.split()[0]: line.split()[1:] for line in lines[start + 1 :]}
    assert set(shares) == set(CLASS_NAMES)
    _, _, y_train, _ = wine_split()
    for i, label in enumerate(CLASS_NAMES):
        training, served_share, points = shares[label]
        live = model.expected[:ROWS].count(label) / ROWS
        assert served_share == f"{live:.1%}"
        # training: the model's own predictions on its training rows (a forest fits them all)
        assert training == f"{np.mean(y_train == i):.1%}"
        assert float(points) == pytest.approx(100 * (live - np.mean(y_train == i)), abs=0.06)


def test_export_keeps_the_label_served_when_the_model_has_an_output_named_label(
    tmp_path: Path,
) -> None:
    """skl2onnx's classifiers answer an int64 output `label` (0, 1, 2) beside the labels
    published with --labels: written as served_label, it overwrote the label the API
    answered (`class_0`), so the export said 0 where the caller got class_0."""
    store = tmp_path / "store"
    model = export("logistic", tmp_path, zipmap=False)  # outputs label and probabilities
    cli = ["--store", str(store)]
    labels = ",".join(CLASS_NAMES)
    assert main([*cli, "publish", str(model.path), "--name", MODEL, "--labels", labels]) == 0
    assert main([*cli, "capture", MODEL, "--sample", "1"]) == 0
    env = {"AIAAS_MODEL": MODEL, "AIAAS_STORE": str(store), "AIAAS_CACHE_DIR": str(tmp_path / "c")}
    handler, module = load_handler_module("functions.predict.handler.handler", env)
    answered = [
        p["label"] for p in call(handler, *body("simple", model.x_test[:ROWS]))["predictions"]
    ]
    assert set(answered) <= set(CLASS_NAMES)
    module.release()  # its lines written, its capture timer thread ended
    out = tmp_path / "captured.jsonl"
    assert main([*cli, "capture", "export", MODEL, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["served_label"] for r in rows] == answered
    assert all("served_probabilities_0" in r and "served_output_label" not in r for r in rows)


def test_export_keeps_class_count_answers_apart_from_the_class_scores(
    served: tuple[Path, Exported, ModuleType], tmp_path: Path
) -> None:
    """A class-count answer ("score:index:label" strings, best first) was exported into
    served_probabilities_<i>, the columns the other forms fill with class i's score: one
    column held two meanings. It has served_probabilities_top_<n> of its own."""
    store, model, _ = served
    out = tmp_path / "captured.csv"
    assert main(["--store", str(store), "capture", "export", MODEL, "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(newline="")))
    assert len(rows) == ROWS * len(FORMS)
    scores = [f"served_probabilities_{i}" for i in range(len(CLASS_NAMES))]
    ranked = ["served_probabilities_top_1", "served_probabilities_top_2"]
    assert set(scores + ranked) <= set(rows[0])
    for form, part in zip(FORMS, np.split(np.array(rows), len(FORMS)), strict=True):
        if form == "oip-label":  # the label output alone: no scores in any column
            assert all(r[c] == "" for r in part for c in scores + ranked)
            continue
        if form == "oip-class-count":
            assert all(r[c] == "" for r in part for c in scores), form
            best = [r["served_probabilities_top_1"].split(":") for r in part]
            assert [b[2] for b in best] == model.expected[:ROWS]
            assert all(len(r["served_probabilities_top_2"].split(":")) == 3 for r in part)
            continue
        assert all(r[c] == "" for r in part for c in ranked), form
        for r in part:  # class scores: numbers that sum to 1
            assert abs(sum(float(r[c]) for c in scores) - 1) < 1e-5, (form, r)
