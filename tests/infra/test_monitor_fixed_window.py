"""A fixed-length sensor window ([N, 20, 12] declared `--window-features last`, [N, 12, 20]
`first`) is drift-binned value by value, and `aiaas monitor` of one sensor shifted named only
`x_235, x_43, ...`: the 20 steps of sensor 7, which the reader had to work out. It now says
which feature of the window drifted, in the table's text and in --json. Real ONNX models, the
CLI and the predict function's real handler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.drift.report import FeatureDrift
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.cli.monitor_window import window_features
from tests.functions.test_predict_events import http_event
from tests.infra.test_explain_wide_windows import SENSORS, _linear, _publish, _service

STEPS = 20


def _served_shifted(tmp_path: Path, first: bool) -> list[str]:
    """Publish a declared window, baseline it, serve windows whose sensor 7 is shifted."""
    store = LocalStore(tmp_path / "store")
    model = _linear(tmp_path / "m.onnx", STEPS, first=first)
    _publish(store, model, "pump", "--window-features", "first" if first else "last")
    rng = np.random.default_rng(3)
    train = rng.normal(size=(400, STEPS, SENSORS)).astype(np.float32)
    served = rng.normal(size=(400, STEPS, SENSORS)).astype(np.float32)
    served[:, :, 7] += 2.0
    if first:
        train, served = train.transpose(0, 2, 1), served.transpose(0, 2, 1)
    np.save(tmp_path / "train.npy", train)
    assert main(["--store", store.uri, "baseline", "pump", str(tmp_path / "train.npy")]) == 0
    service = _service(store, tmp_path, "pump")
    for start in range(0, 400, 100):
        body = json.dumps({"inputs": served[start : start + 100].tolist()})
        response = service.handle(http_event("POST", "/models/pump/predict", body))
        assert response["statusCode"] == 200, response["body"]
    assert service.plane.drift is not None
    service.plane.drift.flush(last=True)  # its timer thread, holding the store open, ends
    return ["--store", store.uri, "monitor", "pump", "--no-png"]


@pytest.mark.parametrize("first", [False, True])
def test_a_fixed_window_with_one_sensor_shifted_names_that_sensor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], first: bool
) -> None:
    argv = _served_shifted(tmp_path, first)
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    sides = "(features, steps)" if first else "(steps, features)"
    row = [SENSORS, STEPS] if first else [STEPS, SENSORS]
    line = next(x for x in out.splitlines() if x.startswith("by feature of the window"))
    assert line.startswith(f"by feature of the window {row} {sides}: feature_7 20 of 20 steps")
    assert "feature_" not in line.split("feature_7", 1)[1], line  # no other sensor named
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(f["feature"], f["steps_drifted"], f["steps"]) for f in doc["window_features"]] == [
        ("feature_7", 20, 20)
    ]
    assert main([*argv, "--fail-on-drift"]) == 1  # a CI gate's error line names the sensor
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith(": feature_7 (20 of 20 steps)"), err
    drifted = {int(n[2:]) for n in doc["drifted"] if n.startswith("x_")}
    assert len(drifted) == STEPS  # each drifted value is one of sensor 7's steps
    assert {(i // STEPS if first else i % SENSORS) for i in drifted} == {7}


def test_a_table_model_gets_no_window_line() -> None:
    """A flat row of 240 values (a scikit-learn model on flattened windows) cannot be told
    from a table: no window line, as before."""
    manifest = ModelManifest(
        name="flat", version="1", task="other", file="model.onnx",
        inputs=(TensorSpec("X", "float32", (-1, 240)),), outputs=(TensorSpec("y", "float32", (-1, 1)),),
    )  # fmt: skip
    report = [FeatureDrift(f"x_{i}", 1.0, 0.5, 0, 0, True) for i in range(240)]
    assert window_features(manifest, report) == []


@pytest.mark.parametrize("first", [False, True])
def test_the_png_draws_a_fixed_window_value_as_its_feature_and_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: bool
) -> None:
    """The PNG's rows, the most drifted values, were labelled `x_235, x_43, ...`: the reader
    divided by 12 (by 20 features first) to find sensor 7. They are `feature_7 step 19`."""
    from infra.cli import monitor_commands

    argv = _served_shifted(tmp_path, first)
    drawn: list[tuple[str, ...]] = []
    real = monitor_commands.draw

    def draw(title: str, features: tuple[str, ...], *rest: object) -> None:
        drawn.append(features)
        real(title, features, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(monitor_commands, "draw", draw)
    png = tmp_path / "drift.png"
    assert main([a for a in argv if a != "--no-png"] + ["--png", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    (names,) = drawn
    assert len(names) == STEPS * SENSORS + 1 and "(prediction)" in names
    assert not [n for n in names if n.startswith("x_")]
    # x_i of the row [steps, features] (or [features, steps]) flattened row-major
    index = 7 * STEPS + 19 if first else 19 * SENSORS + 7
    assert names[index] == "feature_7 step 19", names[index - 2 : index + 2]


@pytest.mark.parametrize("first", [False, True])
def test_the_drift_job_log_line_names_the_sensor_as_monitor_does(
    tmp_path: Path, first: bool
) -> None:
    """The scheduled drift job's log line (Logs Insights) said only `drifted: x_235, x_43, ...`
    for sensor 7 of the window; it carries `window_features`, as `aiaas monitor --json`."""
    import time

    from functions.drift.job import DriftSettings, run

    _served_shifted(tmp_path, first)
    (doc,) = run(LocalStore(tmp_path / "store"), DriftSettings(window_seconds=600), time.time())
    assert [(f["feature"], f["steps_drifted"], f["steps"]) for f in doc["window_features"]] == [
        ("feature_7", STEPS, STEPS)
    ]
    assert len([n for n in doc["drifted"] if n.startswith("x_")]) == STEPS  # as they were


def test_the_gate_names_the_most_drifted_sensors_first_past_ten() -> None:
    """Past 10 names the gate sorts by PSI; the window's feature names were in no PSI table,
    so `(prediction)` (PSI 0.3) led eleven sensors of PSI 2 and more."""
    from infra.cli.monitor_commands import _most_drifted

    features = [
        {"feature": f"feature_{i}", "steps_drifted": 20, "steps": 20, "max_psi": 2.0 + i}
        for i in range(11)
    ]
    doc = {
        "drifted": [f"x_{i}" for i in range(220)] + ["(prediction)"],
        "features": [{"name": "(prediction)", "psi": 0.3}],
        "window_features": features,
    }
    manifest = ModelManifest(
        name="pump", version="1", task="other", file="model.onnx",
        inputs=(TensorSpec("x", "float32", (-1, STEPS, 11)),),
        outputs=(TensorSpec("y", "float32", (-1, 1)),),
    )  # fmt: skip
    names = _most_drifted(manifest, doc)
    assert names[0] == "feature_10 (20 of 20 steps)" and names[-1] == "(prediction)", names


@pytest.mark.parametrize("value", ["X_{}", "x_{}"], ids=["named-by-input", "stored-before"])
def test_a_window_input_named_x_is_grouped_by_feature_under_either_name(value: str) -> None:
    """A baseline names a window's values after its input (`X_235` for `X`, as batch CSVs and
    explanations do); one stored before says `x_235`. Both are grouped by sensor."""
    from infra.cli.monitor_commands import _most_drifted
    from infra.cli.monitor_window import window_labels

    manifest = ModelManifest(
        name="pump", version="1", task="other", file="model.onnx",
        inputs=(TensorSpec("X", "float32", (-1, STEPS, SENSORS)),),
        outputs=(TensorSpec("y", "float32", (-1, 1)),),
        preprocessing={"window_features_axis": "last"},
    )  # fmt: skip
    names = [value.format(i) for i in range(STEPS * SENSORS)]
    report = [FeatureDrift(n, 2.0, 0.5, 0, 0, i % SENSORS == 7) for i, n in enumerate(names)]
    features = window_features(manifest, report)
    assert [(f["feature"], f["steps_drifted"]) for f in features] == [("feature_7", STEPS)]
    doc = {"drifted": [r.name for r in report if r.drifted], "window_features": features}
    assert _most_drifted(manifest, doc) == ["feature_7 (20 of 20 steps)"]
    assert window_labels(manifest, tuple(names))[19 * SENSORS + 7] == "feature_7 step 19"
