"""A string column with more categories than a baseline keeps bins for (300 zip codes, 100
kept): rare training values share `(other)`, values training never saw count as `(new)`.

Before `(new)`, both shared one `(other)` bin, so rare zip codes replaced by never-seen ones
(the same share of rows) left every bin's share as it was: no drift, and every rare row was
called `outside` as if it were new. A real skl2onnx DataFrame pipeline (one input a column),
published and baselined with the CLI, served by the predict handler, read by `aiaas monitor`.
"""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from functions.drift.job import DRIFTED, MAX_PSI, DriftSettings, run
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline, PredictionBaseline
from functions.runtime.drift.categories import MAX_CATEGORIES, CategoryBaseline
from functions.runtime.drift.report import FeatureDrift, Window, compare
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.local.functions import load_handler_module
from tests.functions.test_predict_events import http_event

ZIPS = [f"z{i:03d}" for i in range(300)]
RARE_SHARE = 0.2  # of rows: the 200 zip codes after the 100 most frequent
SERVED = 2400  # judged: 101 categories filled in training need 2020 rows (20 a bin)


def zips(rng: np.random.Generator, rows: int, rare: list[str]) -> np.ndarray:
    """The 100 common zip codes for 80% of rows (uniformly), `rare` ones for the rest."""
    common = rng.choice(ZIPS[:MAX_CATEGORIES], rows)
    return np.where(rng.random(rows) < RARE_SHARE, rng.choice(rare, rows), common)


def frame(rows: int, seed: int, rare: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spend = rng.normal(50, 10, rows).astype(np.float32)
    return pd.DataFrame({"zip": zips(rng, rows, rare), "spend": spend})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("many-categories")
    train = frame(6000, 0, ZIPS[MAX_CATEGORIES:])
    target = (train["spend"] > 50).to_numpy()
    encode = ColumnTransformer(
        [("zip", OneHotEncoder(handle_unknown="ignore"), ["zip"])], remainder="passthrough"
    )
    pipeline = make_pipeline(encode, LogisticRegression()).fit(train, target)
    (root / "zips.onnx").write_bytes(to_onnx(pipeline, train[:1]).SerializeToString())
    train.to_csv(root / "train.csv", index=False)
    cli = ["--store", str(root / "store")]
    for name in ("known", "renamed", "quiet"):
        assert main([*cli, "publish", str(root / "zips.onnx"), "--name", name]) == 0
        assert main([*cli, "baseline", name, str(root / "train.csv")]) == 0
    return root / "store"


def serve(store: Path, name: str, rows: pd.DataFrame) -> str:
    """`rows` answered by `name`'s predict function; then `aiaas monitor`'s table."""
    env = {"AIAAS_MODEL": name, "AIAAS_STORE": str(store), "AIAAS_CACHE_DIR": str(store / "c")}
    handler, module = load_handler_module("functions.predict.handler.handler", env)
    for part in np.array_split(np.arange(len(rows)), 4):
        records = [{"zip": z, "spend": float(s)} for z, s in rows.iloc[part].to_numpy()]
        event = http_event("POST", f"/models/{name}/predict", json.dumps({"instances": records}))
        response = handler(event, None)
        assert response["statusCode"] == 200, response["body"]
    module.SERVICE.plane.drift.flush()
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert main(["--store", str(store), "monitor", name, "--no-png"]) == 0
    return printed.getvalue()


def row(table: str, feature: str) -> list[str]:
    return next(line.split() for line in table.splitlines() if line.startswith(feature + " "))


def test_rare_codes_replaced_by_new_ones_drift_and_count_as_outside(store: Path) -> None:
    new = [f"n{i:03d}" for i in range(200)]  # never in training: the same share of rows
    served = frame(SERVED, 1, new)
    table = serve(store, "renamed", served)
    _, psi, _, _, outside, *flag = row(table, "zip")
    assert float(psi) > 0.2 and flag[0] == "DRIFT", table  # was ~0.01: (other) kept its share
    assert int(outside) == served["zip"].str.startswith("n").sum()
    assert row(table, "spend")[-1] != "DRIFT" and "1 of 3 drifted" in table, table


def test_rare_training_codes_are_neither_new_nor_drift(store: Path) -> None:
    table = serve(store, "known", frame(SERVED, 2, ZIPS[MAX_CATEGORIES:]))
    _, psi, _, _, outside, *flag = row(table, "zip")
    assert float(psi) < 0.2 and not flag, table
    assert int(outside) == 0, table  # was ~200: every rare row called outside


def test_a_column_of_many_categories_is_not_judged_on_too_few_rows(store: Path) -> None:
    """600 rows drawn as training's: enough for 10 bins, noise for 102 (PSI ~0.25)."""
    table = serve(store, "quiet", frame(600, 3, ZIPS[MAX_CATEGORIES:]))
    _, psi, *_ = row(table, "zip")
    assert float(psi) > 0.2, table  # what flagged it (and the alarm) before
    # 20 rows a bin PSI expects rows in: 100 kept, (other), and (new), which expects the rows
    # of the zip codes training saw once (categories.py: one-off values).
    assert table.splitlines()[2].endswith("not judged: 2040 rows needed"), table
    assert "0 of 3 drifted" in table, table
    (doc,) = [
        d for d in run(LocalStore(store), DriftSettings(), time.time()) if d["model"] == "quiet"
    ]
    assert doc[MAX_PSI] < 0.2 and doc[DRIFTED] == 0 and doc["psi"]["zip"] > 0.2, doc


def test_the_baseline_keeps_the_rare_names_and_an_empty_new_bin(store: Path) -> None:
    raw = LocalStore(store).get_bytes(f"{version_prefix('known', '1')}/{BASELINE_FILE}")
    (zip_,) = DriftBaseline.from_json(raw).categories
    assert len(zip_.values) == MAX_CATEGORIES and zip_.rare is not None
    assert sorted((*zip_.values, *zip_.rare)) == ZIPS
    share = zip_.counts[-2] / zip_.counts.sum()
    assert zip_.counts[-1] == 0 and share == pytest.approx(RARE_SHARE, abs=0.02)


def test_a_baseline_from_before_new_bins_as_it_did() -> None:
    """No `rare` list: (other) takes rare and new values alike, one bin fewer."""
    old: dict[str, Any] = {"name": "plan", "values": ["basic", "pro"], "counts": [7, 3, 0]}
    base = CategoryBaseline.from_dict(orjson.loads(orjson.dumps(old)))
    assert base.rare is None and base.to_dict() == old
    assert base.bin(np.array(["pro", "gold", "basic", "pro"])).tolist() == [1, 2, 1]
    with pytest.raises(ValueError, match="do not match"):
        CategoryBaseline.from_dict({**old, "counts": [7, 3, 0, 0]})


def test_a_classifier_of_many_classes_is_judged_on_enough_rows() -> None:
    """300 labels are 300 bins: 600 rows drawn as training predicted them are noise, not
    prediction drift (it was flagged); 6000 are judged, and half the labels gone drifts."""
    rng = np.random.default_rng(4)
    trained = np.bincount(rng.integers(0, 300, 30000), minlength=300)
    base = DriftBaseline(
        ("x",), np.zeros((1, 0)), np.array([[30000]]), np.zeros(1), np.ones(1),
        PredictionBaseline(trained, tuple(ZIPS)), 30000,
    )  # fmt: skip

    def prediction(classes: np.ndarray) -> FeatureDrift:
        served, rows = np.bincount(classes, minlength=300), len(classes)
        window = Window(rows, np.array([[rows]]), *np.zeros((3, 1), dtype=np.int64), served, 1)
        return compare(base, window)[-1]

    noise = prediction(rng.integers(0, 300, 600))
    assert noise.needed == 6000 and noise.psi > 0.2 and not noise.drifted
    assert not prediction(rng.integers(0, 300, 6000)).drifted
    assert prediction(rng.integers(0, 150, 6000)).drifted
