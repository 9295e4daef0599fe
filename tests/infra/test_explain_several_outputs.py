"""`aiaas explain --inputs` of a regressor with several output values: the table (and the
PNG's title) say that only the first is shown and --json has every one. The second value's
attributions were in --json alone, and nothing said there was a second."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from infra.cli.main import main
from tests.functions.test_explain_unlabelled_classifier import logits


def test_the_table_says_it_shows_one_of_two_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    path = logits(tmp_path / "two.onnx", np.array([[0.3, -0.1], [-0.2, 0.4], [0.1, 0.0]]))
    assert (
        main(["--store", store, "publish", str(path), "--name", "two", "--task", "regression"]) == 0
    )
    np.save(tmp_path / "train.npy", np.random.default_rng(0).normal(size=(30, 3)))
    assert main(["--store", store, "baseline", "two", str(tmp_path / "train.npy")]) == 0
    capsys.readouterr()
    assert main(["--store", store, "explain", "two", "--inputs", "[[1, 2, 3]]"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.startswith("row 0: logit_0 = ") and row.endswith("[output 1 of 2; --json has all]")
    assert main(["--store", store, "explain", "two", "--inputs", "[[1, 2, 3]]", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["outputs"] == ["logit_0", "logit_1"]  # the document itself is unchanged
