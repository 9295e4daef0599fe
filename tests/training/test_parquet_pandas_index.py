"""A Parquet file pandas wrote from a frame with row labels of its own (shuffled, filtered, a
train_test_split part): `to_parquet()` stores the index as the column `__index_level_0__`, and
training took it as a feature, without a word when it was not in order (a shuffled frame), so
the served model demanded an input no caller has, and a frame sorted by class before the shuffle
leaked the label through it. Refused now as a CSV's pandas index column is, with the edits that
fix it. hunt_datafiles 3. Real parts: pandas + pyarrow files and `aiaas train --check`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow", reason="Parquet is the optional 'parquet' extra")

from infra.cli.main import main  # noqa: E402


def _frame() -> Any:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 3)).round(3), columns=["a", "b", "c"])
    frame["y"] = np.where(frame.a + frame.b > 0, "yes", "no")
    return frame


def _check(tmp_path: Path, data: Path, extra: str = "") -> tuple[int, str, str]:
    spec = tmp_path / "job.yaml"
    spec.write_text(
        f"name: pq\ntask: classification\ndataset:\n  path: {data}\n  target: y\n{extra}"
        "recipe:\n  name: logistic\nepochs: 1\n"
    )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", str(spec), "--check"])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "made",
    [
        lambda f: f.sample(frac=1, random_state=0),  # shuffled: no row-id warning either
        lambda f: f[f.c > -1.0],  # filtered
    ],
)
def test_pandas_index_column_is_refused_with_the_edits(
    tmp_path: Path, made: Callable[[Any], Any]
) -> None:
    data = tmp_path / "train.parquet"
    made(_frame()).to_parquet(data)
    code, out, err = _check(tmp_path, data)
    assert code == 1 and out == "", out
    assert "holds pandas' index as column '__index_level_0__'" in err, err
    assert "to_parquet(index=False)" in err and "dataset.exclude" in err, err


def test_the_edits_it_names_read_the_columns(tmp_path: Path) -> None:
    data = tmp_path / "train.parquet"
    _frame().sample(frac=1, random_state=0).to_parquet(data)
    for extra in ("  exclude: [__index_level_0__]\n", "  features: [a, b, c]\n"):
        code, out, err = _check(tmp_path, data, extra)
        assert code == 0, err
        assert "3 features: a, b, c;" in out, out
    plain = tmp_path / "plain.parquet"
    _frame().sample(frac=1, random_state=0).to_parquet(plain, index=False)
    code, out, err = _check(tmp_path, plain)
    assert code == 0 and "3 features: a, b, c;" in out, err
    named = tmp_path / "named.parquet"  # a named index is a column of the user's own: kept
    _frame().set_index("a").to_parquet(named)
    code, out, err = _check(tmp_path, named)
    assert code == 0 and "3 features: b, c, a;" in out, err


def test_the_index_listed_in_dataset_features_is_read(tmp_path: Path) -> None:
    """review_revinfra 3: a spec that lists the index column among its features (a time or row
    order the user means to learn from) was refused, told to "list the feature columns in
    dataset.features", as it had."""
    data = tmp_path / "train.parquet"
    _frame().sample(frac=1, random_state=0).to_parquet(data)  # a RangeIndex is no column
    code, out, err = _check(tmp_path, data, "  features: [__index_level_0__, a, b]\n")
    assert code == 0, err
    assert "3 features: __index_level_0__, a, b;" in out, out
