"""Shadow traffic between versions whose classes differ, through a real `aiaas serve` (its own
process, real HTTP) and `aiaas rollout` (the CLI, its own process).

iris trained with scikit-learn and exported by skl2onnx with its default options, published by
the real CLI: version 1 on the three species, version 2 on four (the species and `hybrid`, the
rows whose petals are 4.5-5.1 cm long), a common change between versions. Their class scores
have 3 and 4 columns, so every copy was counted in `aiaas_shadow_errors_total` ("output
'output_probability' has shape (3, 3) vs (3, 4)") and a rollout with a shadow stage rolled the
candidate back ("as a shadow it failed 40 of 40 copies"). Now the classes are matched by name:
agreement is the same predicted label, scores are compared on the classes both have, the rows
answered with `hybrid` are counted in `aiaas_shadow_unshared_class_rows_total`, and `/metrics`
equals an offline comparison of the same rows run through onnxruntime directly; the rollout's
start names the class only 2 has, and `aiaas rollout status` prints it.

The same classes in another order (a linear classifier and the same one, its columns and class
names reversed: one model) had their scores compared by column index (a difference of ~1); now
by name (0). A binary classifier's one sigmoid logit against three classes' scores: labels only.
Scores of another kind still count as errors, and the replay's log says why: a
regressor of one value a row against one of two, a classifier against the same graph published
without labels (it was compared as if both gave none).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from prometheus_client.parser import text_string_to_metric_families
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.predict import metric_names as m
from functions.runtime.registry import Registry
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve
from tests.infra.test_serve_shadow_class_names import Iris, rollout, rows, status

SPECIES = ("setosa", "versicolor", "virginica")
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
REQUESTS = 60


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Iris:
    work = tmp_path_factory.mktemp("shadow-class-sets")
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    species = np.asarray(SPECIES)[y]
    grown = np.where((x[:, 2] >= 4.5) & (x[:, 2] <= 5.1), "hybrid", species)
    fitted = {
        "1": LogisticRegression(max_iter=1000).fit(x, species),
        "2": LogisticRegression(max_iter=1000).fit(x, grown),
    }
    paths = {}
    for version, estimator in fitted.items():
        paths[version] = work / f"iris-{version}.onnx"
        paths[version].write_bytes(to_onnx(estimator, x[:1]).SerializeToString())  # defaults
        argv = ["--store", str(work / "store"), "publish", str(paths[version]), "--name", "iris"]
        assert main(argv) == 0
    found = Iris(work / "store", paths)
    registry = found.registry
    assert registry.manifest("iris", "2").labels == ("hybrid", *SPECIES)
    registry.set_alias("iris", "production", "1")
    publish_other_kinds(registry, work)
    return found


def publish_other_kinds(registry: Registry, work: Path) -> None:
    """`order`: a classifier and the same one with its classes reversed; `regress`: one value
    a row against two; `unnamed`: a classifier against the same graph without labels. Each
    version 1 serving, version 2 its shadow."""
    first = onnx_factory.linear_classifier(work / "order-1.onnx", seed=1)
    graph = onnx.load(first)
    for weights in graph.graph.initializer:  # W [4, 3] and B [3]: the columns reversed
        weights.CopyFrom(
            numpy_helper.from_array(numpy_helper.to_array(weights)[..., ::-1].copy(), weights.name)
        )
    second = work / "order-2.onnx"
    onnx.save(graph, second)
    versions = {
        "order": ((first, ("a", "b", "c")), (second, ("c", "b", "a"))),
        "regress": (
            (onnx_factory.linear_classifier(work / "regress-1.onnx", classes=1), ()),
            (onnx_factory.linear_classifier(work / "regress-2.onnx", classes=2), ()),
        ),
        "unnamed": ((first, ("a", "b", "c")), (first, ())),
    }
    versions["binary"] = (
        (onnx_factory.linear_classifier(work / "binary-1.onnx", classes=1), ("no", "yes")),
        (onnx_factory.linear_classifier(work / "binary-2.onnx", seed=2), ("no", "yes", "maybe")),
    )
    for name, pair in versions.items():
        for version, (path, labels) in enumerate(pair, start=1):
            manifest = onnx_factory.manifest_for(path, name, str(version), labels=labels)
            if manifest.postprocessing is not None and len(labels) == 2:  # one logit: sigmoid
                post = dataclasses.replace(manifest.postprocessing, activation="sigmoid")
                manifest = dataclasses.replace(manifest, postprocessing=post)
            registry.publish(manifest, path)
        registry.set_alias(name, "production", "1")
        registry.set_shadow(name, "production", "2", 1.0)


@pytest.fixture(scope="module")
def server(iris: Iris) -> Iterator[ServeProcess]:
    # INFO: the replay process's line saying how it matched the classes is written too.
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "3600", "POWERTOOLS_LOG_LEVEL": "INFO"}
    yield from start_serve(iris.store, env=env, headers=HEADERS)


def series(client: httpx.Client, model: str) -> dict[str, float]:
    """The `aiaas_shadow_*` samples of `model`'s pair 1 -> 2, by sample name."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            labels = sample.labels
            pair = (labels.get("model"), labels.get("version"), labels.get("shadow_version"))
            if sample.name.startswith("aiaas_shadow_") and pair == (model, "1", "2"):
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def shadowed(server: ServeProcess, model: str, batches: list[np.ndarray]) -> dict[str, float]:
    """Send each batch to `model` (version 1 answers), wait for every copy's replay."""
    with httpx.Client(base_url=server.base, headers=HEADERS, timeout=30) as client:
        for x in batches:
            answer = client.post(f"/models/{model}/predict", json={"inputs": x.tolist()})
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-aiaas-version"] == "1"
        for _ in range(600):
            found = series(client, model)
            if found.get(m.SHADOW_REQUESTS, 0) + found.get(m.SHADOW_ERRORS, 0) >= len(batches):
                return found
            time.sleep(0.1)
    raise AssertionError(f"{model}: copies not replayed in time: {found}\n{server.output()}")


def offline(iris: Iris, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Both versions' labels, run by onnxruntime on their ONNX files, and the largest
    difference of their probabilities over the classes both have."""
    labels, probabilities = [], []
    for version in ("1", "2"):
        session = ort.InferenceSession(str(iris.onnx[version]))
        label, zipmap = session.run(None, {"X": x})
        labels.append(np.asarray(label))
        probabilities.append(zipmap)
    diff = max(
        abs(np.float64(np.float32(a[name])) - np.float64(np.float32(b[name])))
        for a, b in zip(*probabilities, strict=True)
        for name in SPECIES
    )
    return labels[0], labels[1], float(diff)


def test_a_shadow_with_a_class_added_is_compared_on_the_classes_both_have(
    iris: Iris, server: ServeProcess
) -> None:
    rng = np.random.default_rng(3)
    batches = [rows(3000 + i, int(rng.integers(1, 4))) for i in range(REQUESTS)]
    iris.registry.set_shadow("iris", "production", "2", 1.0)
    try:
        found = shadowed(server, "iris", batches)
    finally:
        iris.registry.set_shadow("iris", "production", None)
    served, shadow, diff = offline(iris, np.concatenate(batches))
    hybrid = int((shadow == "hybrid").sum())
    assert 0 < hybrid < len(shadow) // 2  # the new class is answered, and not for most rows
    assert found.get(m.SHADOW_ERRORS, 0) == 0, server.output()  # before: every copy
    assert found[m.SHADOW_REQUESTS] == REQUESTS
    assert found[m.SHADOW_ROWS] == len(served)
    assert found[m.SHADOW_AGREED] == int((served == shadow).sum())  # the same label, by name
    assert found[m.SHADOW_UNSHARED] == hybrid
    assert found[m.SHADOW_MAX_ABS] == pytest.approx(diff, rel=1e-6)  # setosa..virginica only
    assert m.SHADOW_BY_INDEX not in found and m.SHADOW_UNMATCHED not in found
    logged = server.output()
    note = "versions 1 and 2 have different classes (only 1: none; only 2: 'hybrid')"
    assert logged.count(f"shadow 2 of iris:1: {note}") == 1  # once, not per copy


def test_a_rollout_to_a_version_with_a_class_added_passes_its_shadow_stage(
    iris: Iris, server: ServeProcess
) -> None:
    """37 rows both answer alike and 3 that 2 calls `hybrid`: agreement 0.925 over 0.9.
    Before, the shadow stage failed every copy and rolled the candidate back."""
    x = rows(5, 400)
    served, shadow, _ = offline(iris, x)
    same = np.flatnonzero(served == shadow)[:37]
    new = np.flatnonzero(shadow == "hybrid")[:3]
    record = rollout(iris, server, "2", x[np.concatenate([same, new])])
    events = [(e["event"], e["message"]) for e in record.log]
    assert [event for event, _ in events] == ["started", "step", "step", "step", "succeeded"]
    note = "versions 1 and 2 have different classes (only 1: none; only 2: 'hybrid')"
    assert note in events[0][1]
    assert events[1][1].startswith("shadowing 2")
    assert events[2][1].startswith("2 at 50% (the shadow stage baked within every limit: ")
    assert "agreement 0.925 (" in events[2][1]
    assert note in status(iris)


def test_a_shadow_with_its_classes_in_another_order_compares_scores_by_name(
    server: ServeProcess,
) -> None:
    """The same model, its classes reversed: every row agrees, and no score differs (compared
    by column index, the differences were those of a's scores against c's)."""
    rng = np.random.default_rng(4)
    batches = [rng.normal(size=(2, 4)).astype(np.float32) for _ in range(REQUESTS)]
    found = shadowed(server, "order", batches)
    assert found.get(m.SHADOW_ERRORS, 0) == 0, server.output()
    assert found[m.SHADOW_ROWS] == found[m.SHADOW_AGREED] == 2 * REQUESTS
    assert found[m.SHADOW_MAX_ABS] == 0.0
    assert m.SHADOW_UNSHARED not in found
    assert "versions 1 and 2 have the same classes in another order" in server.output()


def test_a_binary_sigmoid_against_three_classes_compares_labels_only(
    iris: Iris, server: ServeProcess
) -> None:
    """One logit (no, yes) against three softmax scores (no, yes, maybe): scores of another
    shape that are not one column per class are left out; every copy failed on them."""
    rng = np.random.default_rng(7)
    batches = [rng.normal(size=(2, 4)).astype(np.float32) for _ in range(REQUESTS)]
    found = shadowed(server, "binary", batches)
    x = np.concatenate(batches)
    run = ort.InferenceSession(str(iris.store.parent / "binary-2.onnx")).run
    maybe = int((run(None, {"x": x})[0].argmax(axis=1) == 2).sum())
    assert 0 < maybe < len(x)
    assert found.get(m.SHADOW_ERRORS, 0) == 0, server.output()
    assert found[m.SHADOW_ROWS] == len(x)
    assert found[m.SHADOW_UNSHARED] == maybe
    assert found[m.SHADOW_MAX_ABS] == 0.0  # nothing compared but labels


@pytest.mark.parametrize(
    ("model", "why"),
    [
        (
            "regress",
            "output 'logits' has shape (2, 1) in version 1 and (2, 2) in 2: another number of "
            "values a row, not the same kind of answer",
        ),
        (
            "unnamed",
            "version 1 answers classes and the other does not (a classifier against a model "
            "that gives no labels): nothing to compare",
        ),
    ],
)
def test_scores_of_another_kind_count_as_errors_saying_why(
    server: ServeProcess, model: str, why: str
) -> None:
    rng = np.random.default_rng(6)
    batches = [rng.normal(size=(2, 4)).astype(np.float32) for _ in range(10)]
    found = shadowed(server, model, batches)
    assert found[m.SHADOW_ERRORS] == 10
    assert m.SHADOW_REQUESTS not in found
    assert f"shadow 2 of {model}:1 failed: not comparable: {why}" in server.output()
