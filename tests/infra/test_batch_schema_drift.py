"""The next night's file with its columns moved, added or renamed (hunt_journey5 4).

A user's skl2onnx export of a ColumnTransformer pipeline (one ONNX input a column) reads its
columns by name: reordered and added columns score as scikit-learn's own predict does, row for
row, and a renamed column fails the file before any row with the header's renamed column named
beside the missing one. It said only "the header lacks column(s) malic", and the user searched
a wide export for what became of it. Real parts: the pipeline, the CLI's publish and batch, on
the directory store and on moto's S3 server.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from functions.runtime.store import ObjectStore
from infra.cli.main import main
from tests.sklearn_models import region_frame, region_pipeline


@pytest.fixture
def published(store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "wine.onnx"
    model.write_bytes(region_pipeline("ignore")[1])
    assert main(["--store", store.uri, "publish", str(model), "--name", "wine"]) == 0
    return store


def batch(store: ObjectStore, frame: pd.DataFrame, path: Path) -> tuple[int, dict]:
    frame.to_csv(path, index=False)
    code = main(["--store", store.uri, "batch", "wine", str(path), "--no-progress"])
    return code, json.loads(store.get_bytes(f"batch/wine/output/{path.name}.summary.json"))


def test_moved_and_added_columns_score_as_scikit_learn_does(
    published: ObjectStore, tmp_path: Path
) -> None:
    frame = region_frame(40).assign(id=range(40))
    night = frame[["id", "region", "ash", "alcohol", "malic"]].assign(garage=1)
    code, summary = batch(published, night, tmp_path / "night2.csv")
    assert (code, summary["status"], summary["scored_rows"]) == (0, "succeeded", 40)
    out = pd.read_csv(io.BytesIO(published.get_bytes("batch/wine/output/night2.csv")))
    assert list(out.columns)[:6] == ["id", "region", "ash", "alcohol", "malic", "garage"]
    expected = region_pipeline("ignore")[0].predict(night[["alcohol", "malic", "ash", "region"]])
    assert out["pred_label"].tolist() == expected.tolist()


def test_a_renamed_column_fails_naming_what_it_became(
    published: ObjectStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    night = region_frame(10).rename(columns={"malic": "malic_acid"}).assign(note="x")
    capsys.readouterr()
    code, summary = batch(published, night, tmp_path / "night3.csv")
    assert (code, summary["status"], summary["rows"]) == (1, "failed", 0)
    assert str(summary["error"]).startswith(
        "batch/wine/input/night3.csv: the header lacks column(s) malic (the header has "
        "'malic_acid' for 'malic': renamed? rename it back); model wine:1 reads "
    )
    # A column the model reads is never offered as the renamed one, nor an unrelated one:
    # the columns it does not read are listed, for the user to tell.
    night = region_frame(10).drop(columns=["ash"]).assign(id=1)
    code, summary = batch(published, night, tmp_path / "night4.csv")
    assert code == 1
    assert str(summary["error"]).startswith(
        "batch/wine/input/night4.csv: the header lacks column(s) ash (the header's other "
        "columns, which it does not read: id); model wine:1 reads "
    )


def test_a_column_renamed_to_another_word_is_named_beside_the_missing_one(
    published: ObjectStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`malic` exported as `acidity`: no spelling of one is near the other, and the error
    named the missing column alone (the summary and the command's line alike)."""
    night = region_frame(10).rename(columns={"malic": "acidity"})
    capsys.readouterr()
    code, summary = batch(published, night, tmp_path / "night5.csv")
    assert (code, summary["status"], summary["rows"]) == (1, "failed", 0)
    said = (
        "batch/wine/input/night5.csv: the header lacks column(s) malic (the header's other "
        "columns, which it does not read: acidity); model wine:1 reads "
    )
    assert str(summary["error"]).startswith(said)
    assert said in capsys.readouterr().err
    # A wide export's many other columns are not listed: they would bury the missing one.
    wide = night.assign(**{f"extra{i}": i for i in range(7)})
    code, summary = batch(published, wide, tmp_path / "night6.csv")
    assert str(summary["error"]).startswith(
        "batch/wine/input/night6.csv: the header lacks column(s) malic; model wine:1 reads "
    )
