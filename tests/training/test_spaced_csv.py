"""A CSV written with a blank after each comma (`70, Lyon, pro, stay`), trained and served.

Training read the header names and the labels less those blanks, but kept them in the text
cells: the model learned the categories ' Lyon', ' Nice', ' Paris', and a client sending
"Nice" (JSON, OIP, a CSV written `30,Nice`) matched none of them: all zeros, the same
confident answer for every city, with no word of warning. Now training strips the blanks
around a text cell and the served model strips those of a string it is sent, so "Nice" and
" Nice" both answer what the file taught.

Everything through the real CLI: `aiaas train` (its main, in process), `aiaas serve` in a
subprocess over HTTP, and `aiaas batch` on a spaced and a plain CSV.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.drift.live import LiveHistograms
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.batch_support import read_csv
from tests.functions.test_predict_events import http_event
from tests.infra.test_serve import ServeProcess, start_serve
from tests.torchless import torch_or_skip

NAME = "spaced"
CITIES = ("Lyon", "Nice", "Paris")
PLANS = ("basic", "pro")


@dataclass(frozen=True)
class Trained:
    root: Path
    store: Path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """`spaced:1`, trained on a file whose every field after the first starts with a blank:
    churn where the city is Nice, else stay."""
    torch_or_skip()
    root = tmp_path_factory.mktemp("spaced")
    lines = ["age, city, plan, y"]
    for i in range(240):
        city, plan = CITIES[i % 3], PLANS[(i // 3) % 2]
        lines.append(
            f"{20 + (i * 7) % 50}, {city}, {plan}, {'churn' if city == 'Nice' else 'stay'}"
        )
    (root / "spaced.csv").write_text("\n".join(lines) + "\n")
    (root / "job.yaml").write_text(
        f"name: {NAME}\ntask: classification\ndataset: {{path: spaced.csv, target: y}}\n"
        "recipe: {name: logistic}\nepochs: 40\nlearning_rate: 0.05\nseed: 0\n"
    )
    here = Path.cwd()
    os.chdir(root)
    try:
        argv = ["--store", str(root / "store"), "train", "job.yaml", "--publish"]
        assert main([*argv, "--no-progress", "--out", str(root / "run")]) == 0
    finally:
        os.chdir(here)
    return Trained(root, root / "store")


@pytest.fixture(scope="module")
def server(trained: Trained) -> Iterator[ServeProcess]:
    yield from start_serve(trained.store)


def test_the_categories_are_the_cities_without_the_blank(trained: Trained) -> None:
    manifest = Registry(LocalStore(trained.store)).manifest(NAME, "1")
    columns = manifest.preprocessing["columns"]
    assert columns["city"]["categories"] == list(CITIES)
    assert columns["plan"]["categories"] == list(PLANS)
    city = next(s for s in manifest.inputs if s.name == "city")
    assert (city.dtype, city.strip) == ("string", True)


def test_served_over_http_nice_is_what_the_file_taught(
    trained: Trained, server: ServeProcess
) -> None:
    rows = [
        {"age": 30, "city": "Nice", "plan": "pro"},
        {"age": 30, "city": " Nice", "plan": " pro"},  # as the file wrote it
        {"age": 30, "city": "Paris", "plan": "pro"},
        {"age": 30, "city": "Lyon ", "plan": "basic"},
    ]
    with httpx.Client(base_url=server.base, timeout=30) as http:
        answer = http.post(f"/models/{NAME}/predict", json={"instances": rows})
        assert answer.status_code == 200, answer.text
        labels = [p["label"] for p in answer.json()["predictions"]]
        assert labels == ["churn", "churn", "stay", "stay"]
        # Open Inference Protocol: one BYTES tensor per column, the same answers.
        columns = {"age": ("FP32", [30.0] * 2), "city": ("BYTES", ["Nice", " Paris"])}
        columns["plan"] = ("BYTES", ["pro", "pro"])
        inputs = [
            {"name": k, "datatype": t, "shape": [2, 1], "data": v} for k, (t, v) in columns.items()
        ]
        oip = http.post(f"/v2/models/{NAME}/infer", json={"inputs": inputs})
        assert oip.status_code == 200, oip.text
        (logits,) = oip.json()["outputs"]
        labels = Registry(LocalStore(trained.store)).manifest(NAME, "1").labels
        best = [labels[int(np.argmax(row))] for row in np.reshape(logits["data"], (2, -1))]
        assert best == ["churn", "stay"]


@pytest.mark.parametrize("separator", [",", ", "])
def test_batch_of_a_plain_and_a_spaced_csv(
    trained: Trained, tmp_path: Path, separator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "b.csv"
    rows = [["age", "city", "plan"], ["30", "Nice", "pro"], ["30", "Paris", "pro"]]
    data.write_text("".join(separator.join(row) + "\n" for row in rows))
    name = f"b{len(separator)}.csv"
    store = LocalStore(trained.store)
    assert main(["--store", store.uri, "batch", NAME, str(data), "--name", name]) == 0
    out = read_csv(store, f"batch/{NAME}/output/{name}")
    assert [row["pred_label"] for row in out] == ["churn", "stay"]


def test_drift_counts_a_spaced_city_as_the_city(trained: Trained) -> None:
    """The served rows' categories are counted as the model reads them: " Nice" is no
    `(new)` city beside the trained "Nice"."""
    store = LocalStore(trained.store)
    base = DriftBaseline.from_json(store.get_bytes(f"{version_prefix(NAME, '1')}/{BASELINE_FILE}"))
    manifest = Registry(store).manifest(NAME, "1")
    live = LiveHistograms(base, manifest)
    inputs = {
        "age": np.array([[30.0], [40.0]], dtype=np.float32),
        "city": np.array([[" Nice"], ["Nice "]], dtype=object),
        "plan": np.array([["pro"], [" basic"]], dtype=object),
    }
    live.record(inputs, {"logits": np.zeros((2, 2), dtype=np.float32)})
    live.fold()
    city = [c.name for c in base.categories].index("city")
    known, counted = base.categories[city], live.categories[city]
    assert (counted[known.values.index("Nice")], counted[known.unseen]) == (2, 0)


def test_the_file_published_again_strips_as_training_did(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aiaas publish` of the run's model file alone (hunt_datafiles 12): its manifest lost
    `strip`, so " Nice" was a city the model never saw (max |B-A| 0.39 on the same file)."""
    store = LocalStore(trained.store)
    first = Registry(store).manifest(NAME, "1")
    again = "spaced-again"
    argv = ["--store", store.uri, "publish", str(trained.root / "run" / "model.float32.onnx")]
    assert main([*argv, "--name", again, "--labels", ",".join(first.labels)]) == 0
    said = capsys.readouterr().out
    second = Registry(store).manifest(again, "1")
    for manifest in (first, second):
        assert {s.name: s.strip for s in manifest.inputs} == {
            "age": False, "city": True, "plan": True
        }  # fmt: skip
    rows = [
        {"age": 30, "city": " Nice", "plan": " pro"},  # as the file wrote it
        {"age": 41, "city": "Lyon ", "plan": "basic"},
        {"age": 30, "city": "Nice", "plan": "pro"},
    ]
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    scored = []
    for name in (NAME, again):
        service = service_from_env({"AIAAS_MODEL": name, "AIAAS_DRIFT_FLUSH_SECONDS": "0"}, pool)
        body = orjson.dumps({"instances": rows})
        answer = service.handle(http_event("POST", f"/models/{name}/predict", body))
        assert answer["statusCode"] == 200, answer["body"]
        scored.append(orjson.loads(answer["body"])["predictions"])
    assert scored[0] == scored[1]
    assert [p["label"] for p in scored[1]] == ["churn", "stay", "churn"]
    assert "text inputs city, plan: blanks around a value stripped, as training read" in said


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('["town"]', "names 'town', which is no string input of its graph"),
        ("city", "aiaas.strip is not a JSON list of input names: 'city'"),
    ],
)
def test_a_file_whose_strip_metadata_does_not_fit_is_refused(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, says: str
) -> None:
    import onnx

    model = onnx.load(str(trained.root / "run" / "model.float32.onnx"))
    (entry,) = [p for p in model.metadata_props if p.key == "aiaas.strip"]
    entry.value = value
    edited = tmp_path / "edited.onnx"
    onnx.save(model, str(edited))
    store = LocalStore(tmp_path / "store")
    argv = ["--store", store.uri, "publish", str(edited), "--name", "edited"]
    assert main([*argv, "--labels", "churn,stay"]) == 1
    assert says in capsys.readouterr().err
    assert not Registry(store).models()
