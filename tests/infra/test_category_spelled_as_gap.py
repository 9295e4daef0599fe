"""A text column's real categories spelled as pandas spells a gap ("n/a", "NULL", "None"),
learnt by a OneHotEncoder beside its missing category (a frame from a database, or read with
keep_default_na=False): a CSV cell so written is that category, as `predict_proba` on the
frame scores it. Before (rev17 1): batch, `publish --data`, `baseline` and `explain --file`
read every pandas NA spelling as the gap (hunt_journey13 1), so the rows of the file
`to_csv` wrote from the very frame were scored as the missing category, with success.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.csv_rows import read_rows
from infra.cli.main import main

NAME = "sheds"
SPELLED = ["n/a", "NULL", "None"]  # each a category of its own here, and a gap to pandas


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, Any, Path]:
    """(store with `sheds` published, its pipeline, the model file). Each spelled category and
    the gap is a class of its own, so scoring one as another changes the label."""
    rng = np.random.default_rng(0)
    n = 300
    region = rng.choice(np.array(["north", *SPELLED, "GAP"], dtype=object), n)
    region[region == "GAP"] = np.nan
    frame = pd.DataFrame(
        {"size": rng.normal(0, 1, n).astype(np.float32), "region": pd.Series(region, dtype=object)}
    )
    named = {"n/a": "unknown", "NULL": "nul", "None": "none"}
    target = np.array(
        [
            "closed" if r is np.nan else named.get(r, "big" if s > 0 else "small")
            for r, s in zip(frame["region"], frame["size"], strict=True)
        ]
    )
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["size"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ]
    )
    pipeline = Pipeline([("prep", columns), ("clf", LogisticRegression(max_iter=2000))])
    pipeline.fit(frame, target)
    root = tmp_path_factory.mktemp("spelled")
    model = root / "sheds.onnx"
    model.write_bytes(to_onnx(pipeline, frame[:1]).SerializeToString())
    store = LocalStore(root / "store")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--store", store.uri, "publish", str(model), "--name", NAME]) == 0
    return store, pipeline, model


def _rows() -> pd.DataFrame:
    regions = pd.Series(["north", *SPELLED, np.nan], dtype=object)
    return pd.DataFrame({"size": np.full(5, 0.5, np.float32), "region": regions})


def test_publish_records_the_categories_spelled_as_a_gap(
    published: tuple[LocalStore, Any, Path],
) -> None:
    store, _, _ = published
    manifest = Registry(store).manifest(NAME, "1")
    region = next(s for s in manifest.inputs if s.name == "region")
    assert (region.missing, region.na_categories) == ("nan", ("NULL", "None", "n/a"))
    assert manifest.to_dict()["requires"] == ["missing", "na_categories"]
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        assert main(["--store", store.uri, "show", f"{NAME}:1"]) == 0
    assert "null as 'nan' (NULL, None, n/a: categories)" in shown.getvalue()


def test_batch_and_publish_data_score_a_spelled_category_as_that_category(
    published: tuple[LocalStore, Any, Path], tmp_path: Path
) -> None:
    store, pipeline, model = published
    rows = _rows()
    want = list(pipeline.predict(rows))
    assert want == ["big", "unknown", "nul", "none", "closed"]
    rows.assign(label=want).to_csv(tmp_path / "held.csv", index=False)  # the gap: ""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--store", store.uri, "batch", NAME, str(tmp_path / "held.csv")]) == 0
    out = store.get_bytes(f"batch/{NAME}/output/held.csv").decode()
    assert [r["pred_label"] for r in csv.DictReader(io.StringIO(out))] == want
    argv = ["--store", store.uri, "publish", str(model), "--name", "held", "--data"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main([*argv, str(tmp_path / "held.csv"), "--no-progress"]) == 0
    metrics = (Registry(store).manifest("held", "1").metrics or {})["held_out"]
    assert (metrics["accuracy"], metrics["rows"]) == (1.0, 5)


def test_baseline_and_explain_file_read_a_spelled_category_as_batch_does(
    published: tuple[LocalStore, Any, Path], tmp_path: Path
) -> None:
    """`aiaas baseline` and `explain --file` read a CSV's rows with `read_rows`."""
    store, _, _ = published
    _rows().to_csv(tmp_path / "rows.csv", index=False)
    manifest = Registry(store).manifest(NAME, "1")
    for exact in (False, True):
        rows = read_rows(tmp_path / "rows.csv", manifest, exact=exact)
        assert [row[1] for row in rows] == ["north", *SPELLED, "nan"]
