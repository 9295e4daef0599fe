"""A user's own DataFrame model (skl2onnx, default options: numbers and strings, one input a
column) monitored as docs/monitoring.md says: baseline from its training CSV, `aiaas serve`,
records over real HTTP, then `aiaas capture export` read back with pandas and `aiaas monitor`
on traffic that drifts."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.drift.job import DriftSettings, run
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.drift.live import LiveHistograms
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_explain_categorical import STRINGS, _frame, _records
from tests.infra.test_serve import ServeProcess, start_serve

NUMBERS = ["age", "income", "visits"]
MODELS = ("shop-export", "shop-nan", "shop-plan", "shop-oip")


@dataclass
class Shop:
    store: LocalStore
    server: ServeProcess
    frame: pd.DataFrame
    root: Path


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    root = tmp_path_factory.mktemp("monitor-dataframe")
    store = LocalStore(root / "store")
    frame, target = _frame(1000, seed=2)
    columns = ColumnTransformer(
        [
            ("n", make_pipeline(SimpleImputer(), StandardScaler()), NUMBERS),
            ("s", OneHotEncoder(handle_unknown="ignore"), STRINGS),
        ]
    )
    pipeline = make_pipeline(columns, LogisticRegression(max_iter=1000)).fit(frame, target)
    (root / "shop.onnx").write_bytes(to_onnx(pipeline, frame[:1]).SerializeToString())
    frame.to_csv(root / "train.csv", index=False)
    for name in MODELS:
        cli = ["--store", store.uri]
        publish = [*cli, "publish", str(root / "shop.onnx"), "--name", name, "--allow-nonfinite"]
        assert main(publish) == 0
        assert main([*cli, "baseline", name, str(root / "train.csv")]) == 0
        assert main([*cli, "capture", name, "--sample", "1"]) == 0
    env = {"AIAAS_DRIFT_FLUSH_SECONDS": "0.001"}
    for server in start_serve(store.root, env=env):
        yield Shop(store, server, frame, root)


def predict(shop: Shop, model: str, records: list[dict[str, Any]], per: int = 10) -> None:
    for start in range(0, len(records), per):
        body = {"instances": records[start : start + per]}
        answer = httpx.post(f"{shop.server.base}/models/{model}/predict", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
    time.sleep(0.01)  # the next request (or the stop) flushes the last counts


def exported_rows(shop: Shop, model: str, want: int, capsys: Any) -> pd.DataFrame:
    """`aiaas capture export` of `model`, again until it holds `want` rows (at most 10 s):
    `aiaas serve` writes held lines beside the request that makes them due, not on it, so
    the write may still be going when that request's answer comes."""
    out, deadline = shop.root / f"{model}.csv", time.monotonic() + 10
    cli = ["--store", shop.store.uri, "capture", "export", model, "--out", str(out)]
    while True:
        assert main(cli) == 0
        capsys.readouterr()
        rows = pd.read_csv(out, dtype={"served_label": str})
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_an_export_holds_every_row_of_a_records_request(shop: Shop, capsys: Any) -> None:
    """Each request holds 8 records; before, only the first row of each kept its inputs."""
    sent = _records(shop.frame.iloc[:40])
    predict(shop, "shop-export", sent, per=8)
    time.sleep(1.1)  # captured lines are held up to a second: the next request writes them
    predict(shop, "shop-export", sent[:1])
    exported = exported_rows(shop, "shop-export", 41, capsys)
    assert len(exported) == 41
    exported = exported.sort_values(["time", "request_id"], kind="stable")[:40]
    exported = exported.reset_index(drop=True)
    assert exported[NUMBERS + STRINGS].notna().all().all(), exported.head(10)
    expected = pd.DataFrame(sent)
    for name in NUMBERS:
        assert np.allclose(exported[name], expected[name]), name
    assert exported[STRINGS].equals(expected[STRINGS])
    assert set(exported["served_label"].astype(str)) <= {"0", "1", "2"}


def test_a_feature_gone_missing_is_drift(shop: Shop, capsys: Any) -> None:
    """A third of `income` arrives null (the model imputes it, so it answers 200): the PSI
    counts missing values as a bin of their own, which training never filled."""
    records = _records(shop.frame.iloc[:400])
    for i, record in enumerate(records):
        if i % 3 == 0:
            record["income"] = None
    predict(shop, "shop-nan", records)
    assert main(["--store", shop.store.uri, "monitor", "shop-nan", "--no-png"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("income"))
    assert "DRIFT" in line and line.split()[3] == "134", out
    others = [ln for ln in out.splitlines() if ln.split()[:1] in (["age"], ["visits"])]
    assert len(others) == 2 and not any("DRIFT" in ln for ln in others), out
    (doc,) = [d for d in run(shop.store, DriftSettings(), time.time()) if d["model"] == "shop-nan"]
    assert doc["drifted"] == ["income"] and doc["nan"] == {"income": 134}
    assert doc["aiaas_drift_max_psi"] > 1.0 and math.isfinite(doc["aiaas_drift_max_psi"])


def test_a_new_category_is_drift(shop: Shop, capsys: Any) -> None:
    """Half the rows come with a plan training never saw ("enterprise"): the model answers
    (its encoder ignores unknown categories) and only drift can tell."""
    records = _records(shop.frame.iloc[:400])
    for record in records[::2]:
        record["plan"] = "enterprise"
    predict(shop, "shop-plan", records)
    png = shop.root / "plan.png"  # PSI over time: the string columns have rows too
    cli = ["--store", shop.store.uri, "monitor", "shop-plan", "--window", "10m", "--png", str(png)]
    assert main(cli) == 0
    out = capsys.readouterr().out
    rows = {ln.split()[0]: ln for ln in out.splitlines()[2:] if ln.split()}
    plan = rows["plan"].split()
    assert "DRIFT" in rows["plan"] and plan[4] == "200" and float(plan[1]) > 2.0, out
    assert "DRIFT" not in rows["colour"] and float(rows["colour"].split()[1]) < 0.1, out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (doc,) = [d for d in run(shop.store, DriftSettings(), time.time()) if d["model"] == "shop-plan"]
    assert doc["drifted"] == ["plan"] and doc["out_of_range"] == {"plan": 200}
    assert "dropped" not in shop.server.output() and "Traceback" not in shop.server.output()


def test_an_export_of_oip_answers_has_the_served_labels(shop: Shop, capsys: Any) -> None:
    """An OIP answer carries only tensors; the export still says which label was served (the
    simple route's, for the same rows), so captured rows compare and retrain the same."""
    frame = shop.frame.iloc[:12]
    tensors = [
        {"name": c, "shape": [len(frame), 1], "datatype": "BYTES", "data": frame[c].tolist()}
        if c in STRINGS
        else {"name": c, "shape": [len(frame), 1], "datatype": "FP32", "data": frame[c].tolist()}
        for c in frame.columns
    ]
    base = shop.server.base
    answer = httpx.post(f"{base}/v2/models/shop-oip/infer", json={"inputs": tensors}, timeout=30)
    assert answer.status_code == 200, answer.text
    simple = {"instances": _records(frame)}
    served = httpx.post(f"{base}/models/shop-oip/predict", json=simple, timeout=30).json()
    time.sleep(1.1)  # captured lines are held up to a second: the next request writes them
    predict(shop, "shop-oip", _records(frame[:1]))
    rows = exported_rows(shop, "shop-oip", 25, capsys)
    assert len(rows) == 25
    first, second = rows.iloc[:12].reset_index(), rows.iloc[12:24].reset_index()
    assert list(first["served_label"]) == [p["label"] for p in served["predictions"]]
    assert np.allclose(first["served_score"], [p["score"] for p in served["predictions"]])
    assert list(first["served_label"]) == list(second["served_label"])
    assert np.allclose(first[NUMBERS], frame[NUMBERS]) and first[STRINGS].equals(frame[STRINGS])


def test_requests_folded_together_count_as_folded_one_by_one(shop: Shop) -> None:
    """A fold stacks its held requests (of any sizes) before binning: same counts as binning
    each request alone, string columns included."""
    manifest = Registry(shop.store).resolve("shop-plan")
    baseline = DriftBaseline.from_json(
        shop.store.get_bytes(f"{version_prefix('shop-plan', '1')}/{BASELINE_FILE}")
    )
    frame = shop.frame.iloc[:11].assign(plan=["basic", "pro", "gold"] * 3 + ["basic", "pro"])
    feeds = [frame.iloc[a:b] for a, b in ((0, 1), (1, 4), (4, 11))]
    requests = [
        {c: part[[c]].to_numpy(dtype=str if c in STRINGS else np.float32) for c in part}
        for part in feeds
    ]
    outputs = [{"output_probability": np.full((len(p), 3), 1 / 3, np.float32)} for p in feeds]
    together, alone = LiveHistograms(baseline, manifest), LiveHistograms(baseline, manifest)
    for inputs, output in zip(requests, outputs, strict=True):
        together.record(inputs, output)
        alone.record(inputs, output)
        alone.fold()
    one, other = together.snapshot(), alone.snapshot()
    assert one == other and one is not None and one["rows"] == 11
    plan = [c.name for c in baseline.categories].index("plan")
    assert one["categories"][plan][-1] == 3  # "gold": not a training plan
