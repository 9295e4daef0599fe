"""Served infinities to a model that takes them (`--allow-nonfinite`), end to end: `publish`,
`baseline` from a CSV with gaps, rows through the real predict function, then `aiaas monitor`
and the hourly drift job, every PSI checked against one computed here with numpy alone.

+inf is counted in the feature's own top bin, -inf in its bottom one, as any huge value is:
before, a feature with fewer edges than the widest (a count, 0/1/2) was padded with +inf edges
and `inf >= inf` put its +inf rows in a bin it does not have, so 10% of them scored a PSI of
~0.7 ("DRIFT"; the same rows at 1e6: 0.01). Also: the missing-values bin counts in the rows a
window needs before it is judged, and the PNG draws the `(prediction)` row the table has."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import orjson
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.drift.job import MAX_PSI, DriftSettings, run
from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli import monitor_commands
from tests.functions.test_predict_events import http_event
from tests.infra.test_cli_explain import cli

EPS = 1e-4  # the floor of a share in PSI (docs/monitoring.md)


def clipping_model(path: Path) -> Path:
    """y = clip(x with NaN as 0, +-1e6) @ [1, 1]: finite for every float, +-inf included."""
    nodes = [
        helper.make_node("IsNaN", ["x"], ["gap"]),
        helper.make_node("Where", ["gap", "zero", "x"], ["filled"]),
        helper.make_node("Clip", ["filled", "low", "high"], ["clipped"]),
        helper.make_node("MatMul", ["clipped", "w"], ["y"]),
    ]
    weights = [
        numpy_helper.from_array(np.ones((2, 1), np.float32), "w"),
        numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
        numpy_helper.from_array(np.array(-1e6, np.float32), "low"),
        numpy_helper.from_array(np.array(1e6, np.float32), "high"),
    ]
    graph = helper.make_graph(
        nodes,
        "clip",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def serve(store: LocalStore, tmp_path: Path, rows: np.ndarray) -> None:
    """`rows` to the predict function as JSON (NaN as null, +-inf as +-1e39, which a float32
    input reads as +-inf), in requests of 10; then its counts are flushed."""
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "counts"}, pool)
    cells: list[list[Any]] = np.clip(rows.astype(np.float64), -1e39, 1e39).tolist()
    cells = [[None if v != v else v for v in row] for row in cells]
    for start in range(0, len(cells), 10):
        body = orjson.dumps({"inputs": cells[start : start + 10]})
        answer = service.handle(http_event("POST", "/models/counts/predict", body))
        assert answer["statusCode"] == 200, answer
    assert service.plane.drift is not None
    service.plane.drift.flush()


def reference_psi(edges: list[float], train: np.ndarray, live: np.ndarray) -> float:
    """PSI of `live` against `train` on these edges, numpy only: bins [e_i, e_i+1) with open
    ends (searchsorted puts +inf above every edge, -inf below), missing values a bin of their
    own, shares floored at EPS."""

    def histogram(values: np.ndarray) -> np.ndarray:
        present = values[~np.isnan(values)]
        index = np.searchsorted(np.asarray(edges), present, side="right")
        bins = np.bincount(index, minlength=len(edges) + 1)
        return np.append(bins, np.isnan(values).sum()) / len(values)

    a, e = np.maximum(histogram(live), EPS), np.maximum(histogram(train), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    model = str(clipping_model(tmp_path / "clip.onnx"))
    named = ["--name", "counts", "--features", "cont,count", "--task", "regression"]
    assert cli(store, capsys, "publish", model, *named, "--allow-nonfinite")[0] == 0
    return store


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # 1e39: float32 +inf
def test_infinities_land_in_the_end_bins_and_every_psi_matches_numpy(
    store: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    train = np.c_[rng.normal(size=2000), rng.integers(0, 3, 2000)].astype(np.float32)
    train[rng.random(2000) < 0.1, 1] = np.nan  # count: 10% missing in training
    text = "cont,count\n" + "".join(
        f"{a:.9g},{'' if b != b else int(b)}\n" for a, b in train.tolist()
    )
    (tmp_path / "train.csv").write_text(text)
    code, _, err = cli(store, capsys, "baseline", "counts", str(tmp_path / "train.csv"))
    assert code == 0, err

    live = np.c_[rng.normal(size=500), rng.integers(0, 3, 500)].astype(np.float32)
    live[rng.random(500) < 0.1, 1] = np.nan
    live[:50, 1] = np.inf  # 10% of count at +inf (a feature of 3 edges, padded to 9)
    live[50:75, 0] = -np.inf  # 5% of cont at -inf
    live[75:85, 0] = np.inf
    # 200 rows: judged before, but with the missing-values bin that is 11 bins, 220 rows.
    serve(store, tmp_path, live[:200])
    capsys.readouterr()  # the function's request logs
    code, out, err = cli(store, capsys, "monitor", "counts", "--window", "10m", "--json")
    doc = json.loads(out)
    assert (code, doc["rows_needed"], doc["enough_rows"]) == (0, 220, False), err
    assert not any(f["judged"] for f in doc["features"])
    serve(store, tmp_path, live[200:])
    capsys.readouterr()

    drawn: dict[str, Any] = {}
    real_draw = monitor_commands.draw

    def draw(title: str, names: tuple[str, ...], ends: Any, psi: Any, *rest: Any) -> None:
        drawn.update(names=names, psi=psi)
        real_draw(title, names, ends, psi, *rest)

    monkeypatch.setattr(monitor_commands, "draw", draw)
    png = tmp_path / "drift.png"
    code, out, err = cli(
        store, capsys, "monitor", "counts", "--window", "10m", "--json", "--png", str(png)
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["rows"] == 500 and doc["enough_rows"]
    baseline = json.loads(store.get_bytes(f"{version_prefix('counts', '1')}/{BASELINE_FILE}"))
    assert len(baseline["edges"][1]) == 3 < len(baseline["edges"][0])  # count: a padded row
    psi = {f["name"]: f["psi"] for f in doc["features"]}
    expected = {
        name: reference_psi(baseline["edges"][i], train[:, i], live[:, i])
        for i, name in enumerate(("cont", "count"))
    }
    assert psi["count"] == pytest.approx(expected["count"], abs=1e-6)  # was ~0.7: a padded bin
    assert psi["cont"] == pytest.approx(expected["cont"], abs=1e-6)
    # +inf in count's top bin, as 1e6 would be: no drift (what the 10% moves is small here).
    huge = live.copy()
    huge[:50, 1] = 1e6
    assert expected["count"] == pytest.approx(
        reference_psi(baseline["edges"][1], train[:, 1], huge[:, 1])
    )
    assert expected["count"] < 0.2 and not doc["features"][1]["drifted"]

    # The hourly job's alarm metric is the same figure (the largest judged, predictions too).
    (job,) = run(store, DriftSettings(window_seconds=600), time.time())
    judged = max(*expected.values(), psi["(prediction)"])
    assert job[MAX_PSI] == pytest.approx(judged, abs=1e-6)

    # The PNG has the table's rows, (prediction) included: both flushes, a second apart, are
    # in the last of its 24 slices of 25 s, whose PSI is then the table's.
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn["names"] == ("cont", "count", "(prediction)")
    assert np.isnan(drawn["psi"][:-1]).all()
    table = [psi["cont"], psi["count"], psi["(prediction)"]]
    assert drawn["psi"][-1].tolist() == pytest.approx(table, abs=1e-6)
