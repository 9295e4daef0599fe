"""What `aiaas publish` and `show` say about other converters' files (hunt_conv.md): CatBoost's
producer_version is a 10-line git banner, printed whole in `show`'s producer line; skl2onnx's
OneClassSVM (an SVMRegressor with one_class=1) was task regression, so its card measured R2 of
an outlier detector, where IsolationForest with the same outputs is task other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from skl2onnx import to_onnx
from sklearn.svm import OneClassSVM

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.onnx_factory import linear_classifier


def test_a_banner_producer_version_shows_its_first_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = onnx.load(linear_classifier(tmp_path / "l.onnx"))
    model.producer_name = "CatBoost"
    model.producer_version = "1.2.10\nGit info:\n  Commit: 4b1d...\n  Author: ...\n"
    onnx.save(model, tmp_path / "cb.onnx")
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(tmp_path / "cb.onnx"), "--name", "cb"]) == 0
    assert Registry(store).manifest("cb", "1").file.producer == "CatBoost 1.2.10"
    capsys.readouterr()
    assert main(["--store", store.uri, "show", "cb"]) == 0
    assert "  producer:  CatBoost 1.2.10, opset 17" in capsys.readouterr().out.splitlines()


def test_a_one_class_svm_is_no_regression(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    (tmp_path / "o.onnx").write_bytes(to_onnx(OneClassSVM().fit(x), x[:1]).SerializeToString())
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(tmp_path / "o.onnx"), "--name", "o"]) == 0
    assert Registry(store).manifest("o", "1").task == "other"
