"""A user's real table: a text (category) column and missing numbers, trained and served raw.

One job trains through the real `aiaas train ... --publish --json` (infra CLI main) on a CSV
written here; the served file fills gaps with the training split's medians and one-hot encodes
the city inside its graph. The answers through the predict handler (records with a string and
a null) and the batch runner (a CSV with an empty cell and an unseen city) must equal
onnxruntime's on the same raw rows and torch's on the rows training's own preprocessing gives.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="training needs torch: pip install 'aiaas[training]'")

import contextlib
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.drift.report import rows_needed
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.batch_support import read_csv, run
from tests.functions.test_predict_events import body_of, http_event
from tests.training.conftest import spec_dict
from training.data_checks import check_data
from training.datasets import load_raw
from training.errors import DataError
from training.job import run_job
from training.prepare import PreparedData, prepare, split_indices
from training.recipes.build import build_model
from training.spec import JobSpec, load_spec, parse_spec
from training.trainer import load_checkpoint

NAME = "plans"
CITIES = ("paris", "lyon", "nice", "lille")
# Served rows: a string and a number, an unseen city and nulls, a null beside a known city.
ROWS: list[dict[str, Any]] = [
    {"age": 30, "city": "paris", "income": 2000.5},
    {"age": None, "city": "tokyo", "income": None},
    {"age": 61, "city": "nice", "income": None},
]


def table(rows: int = 160) -> list[list[Any]]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(rows):
        city, age = CITIES[i % 4], 20 + (i * 7) % 50
        income = round(1000 + 30 * age + rng.normal(0, 100), 1)
        plan = "gold" if (city in ("paris", "nice")) ^ (age > 45) else "basic"
        out.append(["" if i % 9 == 0 else age, city, "NA" if i % 13 == 0 else income, plan])
    return out


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("mixed")
    with (work / "data.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["age", "city", "income", "plan"], *table()])
    (work / "job.yaml").write_text(
        f"name: {NAME}\ntask: classification\ndataset: {{path: data.csv, target: plan}}\n"
        "recipe: {name: mlp, params: {hidden: [16]}}\nepochs: 3\nlearning_rate: 0.01\n"
    )
    out = io.StringIO()
    argv = ["--store", str(work / "store"), "train", str(work / "job.yaml"), "--publish"]
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--json", "--no-progress", "--out", str(work / "run")])
    assert code == 0
    spec = load_spec(work / "job.yaml")
    data = prepare(load_raw(spec.dataset, "tabular", work), spec, "tabular")
    return {"work": work, "doc": json.loads(out.getvalue()), "spec": spec, "data": data}


def torch_logits(job: dict[str, Any], raw: np.ndarray) -> np.ndarray:
    """Training's side: its preprocessing of raw rows, then the trained network in torch."""
    spec: JobSpec = job["spec"]
    data: PreparedData = job["data"]
    assert data.table is not None
    model = load_checkpoint(build_model(spec, data), job["work"] / "run" / "best.npz").eval()
    with torch.inference_mode():
        return model(torch.from_numpy(data.table.transform(raw))).numpy()  # type: ignore[no-any-return]


def raw_rows(rows: list[dict[str, Any]]) -> np.ndarray:
    out = np.empty((len(rows), 3), dtype=object)
    for i, row in enumerate(rows):
        for j, name in enumerate(("age", "city", "income")):
            value = row[name]
            out[i, j] = value if name == "city" else np.nan if value is None else float(value)
    return out


def onnx_logits(job: dict[str, Any], raw: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(
        str(job["work"] / "run" / "model.float32.onnx"), providers=["CPUExecutionProvider"]
    )
    feeds = {
        "age": raw[:, 0:1].astype(np.float32),
        "city": raw[:, 1:2].astype(str).astype(object),
        "income": raw[:, 2:3].astype(np.float32),
    }
    return np.asarray(session.run(["logits"], feeds)[0])


def test_the_job_says_per_column_what_it_did_with_training_medians(job: dict[str, Any]) -> None:
    doc, spec = job["doc"], job["spec"]
    cells = table()
    labels = np.array([row[3] for row in cells])
    train = split_indices(len(cells), np.unique(labels, return_inverse=True)[1], spec)[0]
    medians = []
    for column in (0, 2):  # the training split's only: no validation or test row leaks in
        values = [float(cells[i][column]) for i in train if cells[i][column] not in ("", "NA")]
        medians.append(float(np.float32(np.median(values))))
    assert doc["columns"] == [
        f"age: 18 missing values (11.2%) filled with the training median {medians[0]:.6g}",
        "city: one-hot over 4 categories (a category not seen in training: all zeros)",
        f"income: 13 missing values (8.1%) filled with the training median {medians[1]:.6g}",
    ]
    assert doc["parity"]["max_abs_diff"] <= 1e-4 and doc["parity"]["rows"] == 24
    manifest = json.loads((job["work"] / "run" / "manifest.json").read_text())
    assert [(s["name"], s["dtype"], s["shape"], s["finite"]) for s in manifest["inputs"]] == [
        ("age", "float32", [-1, 1], False),
        ("city", "string", [-1, 1], False),
        ("income", "float32", [-1, 1], False),
    ]
    assert manifest["preprocessing"]["columns"]["city"]["categories"] == sorted(CITIES)
    card = (job["work"] / "run" / "card" / "card.md").read_text()
    assert "- Columns (inside the model graph):\n  - age: 18 missing values" in card
    # Explained from the raw columns as /explain does: city, income, age, each one group.
    assert "![Feature importance](importance.png)" in card


def test_records_with_a_string_and_a_null_answer_as_onnxruntime_and_torch(
    job: dict[str, Any],
) -> None:
    store = LocalStore(job["work"] / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, job["work"] / "cache"))
    service = service_from_env({"AIAAS_MODEL": NAME}, pool)
    event = http_event("POST", f"/models/{NAME}/predict", json.dumps({"instances": ROWS}))
    response = service.handle(event)
    assert response["statusCode"] == 200, response["body"]
    served = np.asarray(body_of(response)["outputs"]["logits"])
    raw = raw_rows(ROWS)
    np.testing.assert_allclose(served, onnx_logits(job, raw), rtol=0, atol=1e-6)
    np.testing.assert_allclose(served, torch_logits(job, raw), rtol=0, atol=1e-4)
    # OIP JSON, one tensor a column, null for a missing number: the same answers.
    tensors = [
        {"name": n, "shape": [3, 1], "datatype": "BYTES" if n == "city" else "FP32",
         "data": [row[n] for row in ROWS]}
        for n in ("age", "city", "income")
    ]  # fmt: skip
    event = http_event("POST", f"/v2/models/{NAME}/infer", json.dumps({"inputs": tensors}))
    response = service.handle(event)
    assert response["statusCode"] == 200, response["body"]
    (logits,) = body_of(response)["outputs"]
    np.testing.assert_array_equal(np.reshape(logits["data"], (3, 2)), served)
    # The unseen city is all zeros and the gaps the medians: the same as sending the medians.
    columns = json.loads((job["work"] / "run" / "manifest.json").read_text())["preprocessing"]
    medians = {n: c["median"] for n, c in columns["columns"].items() if "median" in c}
    filled = torch_logits(job, raw_rows([{**ROWS[1], **medians}]))
    np.testing.assert_allclose(served[1:2], filled, rtol=0, atol=1e-4)


def test_a_batch_csv_with_an_empty_cell_and_an_unseen_city_is_scored(job: dict[str, Any]) -> None:
    """`NA` and `#N/A` are gaps, as training read them in its own file (before: failed rows)."""
    store = LocalStore(job["work"] / "store")
    rows = ["id,age,city,income", "a,30,paris,2000.5", "b,NA,tokyo,", "c,61,nice,#N/A"]
    key = f"batch/{NAME}/input/rows.csv"
    store.put_bytes(key, ("\n".join(rows) + "\n").encode())
    summary = run(store, job["work"] / "batch", key)
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", 3), summary
    out = read_csv(store, f"batch/{NAME}/output/rows.csv")
    assert [r["id"] for r in out] == ["a", "b", "c"]
    expected = onnx_logits(job, raw_rows(ROWS))
    labels = job["data"].labels
    assert [r["pred_label"] for r in out] == [labels[i] for i in expected.argmax(axis=1)]
    got = np.array([[float(r[f"pred_logits_{k}"]) for k in range(2)] for r in out])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # A JSONL line with a null city (pandas' to_json of a missing text): the row's error says
    # what to send (before: "must hold strings; got mixed or null values").
    key = f"batch/{NAME}/input/rows.jsonl"
    store.put_bytes(key, b'{"age": 30, "city": null, "income": 2000.5}\n')
    assert run(store, job["work"] / "batch", key)["failed_rows"] == 1
    (error,) = store.get_bytes(f"batch/{NAME}/output/rows.jsonl.errors.jsonl").splitlines()
    assert json.loads(error)["error"].startswith(
        "input 'city' holds a null, which a string input cannot: send \"\" for an empty value"
    )


def test_explain_file_takes_rows_with_gaps_as_batch_does(
    job: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty cell or `NA` in a CSV to explain is a missing number this model fills, not a
    bad row (before: "could not convert string to float: ''")."""
    path = job["work"] / "explain.csv"
    path.write_text("id,age,city,income\na,30,paris,2000.5\nb,,tokyo,NA\nc,61,nice,\n")
    argv = ["--store", str(job["work"] / "store"), "explain", NAME, "--file", str(path)]
    assert main([*argv, "--samples", "32", "--no-progress"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["record"]["id"] for line in lines] == ["a", "b", "c"]
    logits = onnx_logits(job, raw_rows(ROWS))
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    got = np.array([line["prediction"] for line in lines])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_a_text_column_that_is_an_id_is_refused(tmp_path: Path) -> None:
    spec = load_spec_text(
        tmp_path, "customer,age,plan\n", [f"c{i},{i % 7},{i % 2}" for i in range(40)]
    )
    with pytest.raises(DataError) as info:
        prepare(load_raw(spec.dataset, "tabular", tmp_path), spec, "tabular")
    assert info.value.message.startswith(
        "feature column 'customer' (a different value in each of 28 training rows, e.g. 'c0') "
        "holds text that is no category"
    )
    assert info.value.message.endswith("add it to dataset.exclude ([customer])")


def test_a_label_written_na_is_refused_not_learned_as_a_class(tmp_path: Path) -> None:
    """R writes a missing label as NA: before, 'NA' became a third class the model predicted."""
    lines = [f"{i % 7},{'NA' if i % 10 == 3 else i % 2}" for i in range(40)]
    spec = load_spec_text(tmp_path, "age,plan\n", lines)
    with pytest.raises(DataError) as info:
        prepare(load_raw(spec.dataset, "tabular", tmp_path), spec, "tabular")
    assert info.value.message == (
        "target 'plan' has 4 labels 'NA' (a missing-value marker, not a class) in 40 rows, the "
        "first at line 5 of d.csv; drop the rows without a label, or if 'NA' names a class, "
        "write it another way"
    )


def test_a_column_named_like_a_graph_step_is_refused_before_training(tmp_path: Path) -> None:
    """Before: refused at export, after the whole training run, naming nothing ([])."""
    lines = [f"{i % 7},{CITIES[i % 4]},{i % 2}" for i in range(40)]
    spec = load_spec_text(tmp_path, "aiaas_col0,city,plan\n", lines)
    with pytest.raises(DataError) as info:
        prepare(load_raw(spec.dataset, "tabular", tmp_path), spec, "tabular")
    assert info.value.message.startswith(
        "feature column 'aiaas_col0' is named like the model's output or a step inside the "
        "exported model graph"
    )


def test_check_warns_of_categories_that_do_not_serve_as_meant(tmp_path: Path) -> None:
    """A value written two ways, numbers with a unit, dates, one category in every row: each
    trains, but serves unseen values as all zeros with no error (before: not a word). Blanks
    around a value are stripped, so " Paris" is "Paris"; its case still counts."""
    cities = (" Paris", "paris", "PARIS", "lyon")
    lines = [
        f"{cities[i % 4]},{10 + i % 6}kg,2024-01-{1 + i % 9:02d},FR,{i % 2}"
        for i in range(36)  # no row twice
    ]
    spec = load_spec_text(tmp_path, "city,weight,day,country,plan\n", lines)
    warnings = check_data(spec, tmp_path).warnings
    assert [w.split(":")[0] for w in warnings] == [
        "feature column 'city' writes one value several ways ('PARIS', 'Paris', 'paris')",
        "feature column 'weight' holds numbers with a unit (e.g. '10kg')",
        "feature column 'day' holds dates (e.g. '2024-01-01')",
        "feature column 'country' is 'FR' in every row; it tells the model nothing",
    ]


def load_spec_text(work: Path, header: str, lines: list[str]) -> JobSpec:
    (work / "d.csv").write_text(header + "\n".join(lines) + "\n")
    (work / "j.yaml").write_text(
        "name: t\ntask: classification\ndataset: {path: d.csv, target: plan}\n"
        "recipe: {name: logistic}\n"
    )
    return load_spec(work / "j.yaml")


def test_numbers_with_gaps_keep_one_input_and_a_whole_table_is_unchanged(tmp_path: Path) -> None:
    lines = [f"{'' if i % 10 == 0 else i % 17},{(i * 3) % 11},{2 * (i % 17) - (i * 3) % 11}" for i in range(80)]  # fmt: skip
    (tmp_path / "d.csv").write_text("a,b,y\n" + "\n".join(lines) + "\n")
    (tmp_path / "j.yaml").write_text(
        "name: gaps\ntask: regression\ndataset: {path: d.csv, target: y}\nrecipe: {name: linear}\n"
        "epochs: 2\nexport: {exporter: torchscript}\n"
    )
    spec = load_spec(tmp_path / "j.yaml")
    result = run_job(
        spec, Registry(LocalStore(tmp_path / "store")), tmp_path / "run", spec_dir=tmp_path
    )
    (x,) = result.manifest.inputs
    assert (x.name, x.shape, x.finite) == ("x", (-1, 2), False)
    assert result.manifest.features == ("a", "b")
    median = result.manifest.preprocessing["columns"]["a"]["median"]
    session = ort.InferenceSession(str(result.model_path), providers=["CPUExecutionProvider"])
    rows = np.array([[np.nan, 3.0], [median, 3.0]], dtype=np.float32)
    (out,) = session.run(["prediction"], {"x": rows})
    assert out[0] == out[1] and np.isfinite(out).all()
    # A table of whole numbers: no preprocessing, the model is what it always was.
    iris = parse_spec(spec_dict("logistic"))
    assert prepare(load_raw(iris.dataset, "tabular"), iris, "tabular").table is None


def test_its_own_training_rows_with_nulls_served_are_no_drift(
    job: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """The baseline counts each column's training gaps (before, it was fitted on the filled
    rows: no missing count, a spike at the median, and age's 11% nulls scored as drift)."""
    store = LocalStore(job["work"] / "store")
    base = DriftBaseline.from_json(store.get_bytes(f"{version_prefix(NAME, '1')}/{BASELINE_FILE}"))
    raw = job["data"].raw_train
    gaps = [int(np.isnan(raw[:, c].astype(float)).sum()) for c in (0, 2)]
    assert base.features == ("age", "income") and base.missed.tolist() == gaps and min(gaps) > 5
    pool = ModelPool(Registry(store), ArtifactCache(store, job["work"] / "cache"))
    service = service_from_env({"AIAAS_MODEL": NAME}, pool)
    names = ("age", "city", "income")
    records = [
        {
            n: None if isinstance(v, float) and np.isnan(v) else v
            for n, v in zip(names, row, strict=True)
        }
        for row in raw.tolist()
    ] * 2  # twice: enough rows for the PSI to be judged (asserted below)
    for start in range(0, len(records), 64):
        body = json.dumps({"instances": records[start : start + 64]})
        response = service.handle(http_event("POST", f"/models/{NAME}/predict", body))
        assert response["statusCode"] == 200, response["body"]
    assert service.plane.drift is not None
    service.plane.drift.flush()
    capsys.readouterr()
    assert main(["--store", str(store.root), "monitor", NAME, "--no-png"]) == 0
    out = capsys.readouterr().out
    assert len(records) >= rows_needed(base) and "too few rows" not in out, out
    lines = {ln.split()[0]: ln.split() for ln in out.splitlines()[2:] if ln[:1].isalpha()}
    for name, missing in zip(("age", "income"), gaps, strict=True):
        assert int(lines[name][3]) == 2 * missing and float(lines[name][1]) < 0.01, out
    assert "0 of 4 drifted" in out, out


def test_a_parquet_null_in_a_text_column_is_the_empty_category(tmp_path: Path) -> None:
    """Parquet holds a missing string as null (None): it is the category "" that an empty CSV
    cell is when batch scores, not a category "None" no served request could ever match."""
    pa = pytest.importorskip("pyarrow", reason="Parquet is the optional 'parquet' extra")
    import pyarrow.parquet as pq

    cities = [None if i % 5 == 0 else CITIES[i % 4] for i in range(60)]
    plans = [str(i % 2) for i in range(60)]
    pq.write_table(
        pa.table({"city": cities, "age": list(range(60)), "plan": plans}), tmp_path / "d.parquet"
    )
    (tmp_path / "j.yaml").write_text(
        "name: t\ntask: classification\ndataset: {path: d.parquet, target: plan}\n"
        "recipe: {name: logistic}\n"
    )
    spec = load_spec(tmp_path / "j.yaml")
    data = prepare(load_raw(spec.dataset, "tabular", tmp_path), spec, "tabular")
    assert data.table is not None
    assert data.table.columns[0].categories == ("", *sorted(set(CITIES)))


def test_a_nan_category_and_an_empty_cell_stay_two_categories_when_served(
    tmp_path: Path,
) -> None:
    """`df[col].astype(str)` writes a missing text as "nan": training reads it as a category,
    and an empty cell as the category "". Publish took the graph's "nan" category for where
    missing values go (skl2onnx's convention), so batch sent every empty cell as "nan":
    another class for each (accuracy 0.67 on the training file, the card's 0.99)."""
    colors = ["red", "nan", ""]
    rows = [[colors[i % 3], "abc"[i % 3], round(0.01 * i, 2)] for i in range(240)]
    with (tmp_path / "data.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["color", "label", "noise"], *rows])
    (tmp_path / "job.yaml").write_text(
        "name: nancat\ntask: classification\ndataset: {path: data.csv, target: label}\n"
        "recipe: {name: logistic}\nepochs: 30\nlearning_rate: 0.05\n"
    )
    store = LocalStore(tmp_path / "store")
    argv = ["--store", str(store.root), "train", str(tmp_path / "job.yaml"), "--publish"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*argv, "--no-progress", "--out", str(tmp_path / "run")]) == 0
    manifest = Registry(store).manifest("nancat", "1")
    assert next(s for s in manifest.inputs if s.name == "color").missing is None
    key = "batch/nancat/input/data.csv"
    store.put_bytes(key, (tmp_path / "data.csv").read_bytes())
    summary = run(store, tmp_path / "batch", key)
    assert summary["scored_rows"] == 240, summary
    out = read_csv(store, "batch/nancat/output/data.csv")
    assert [r["pred_label"] for r in out] == [r["label"] for r in out]
