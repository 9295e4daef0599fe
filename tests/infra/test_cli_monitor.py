"""`aiaas baseline` then served traffic then `aiaas monitor`, through `main([...])` and the real
predict service on one store: the table flags the shifted feature only, and the PNG is drawn."""

from __future__ import annotations

import builtins
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import http_event
from tests.infra.test_cli_explain import cli, store, write_csv

__all__ = ["store"]  # the fixture: a linear classifier published as iris:1


def serve(store: LocalStore, tmp_path: Path, rows: np.ndarray) -> None:
    """Send `rows` to the predict function in requests of 5, then let it flush."""
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "iris"}, pool)
    for start in range(0, len(rows), 5):
        body = orjson.dumps({"inputs": rows[start : start + 5].tolist()})
        assert service.handle(http_event("POST", "/models/iris/predict", body))["statusCode"] == 200
    assert service.plane.drift is not None
    service.plane.drift.flush()


def test_monitor_flags_the_shifted_feature_and_draws_it(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(3000, 4))
    assert cli(store, capsys, "baseline", "iris", str(write_csv(tmp_path / "t.csv", train)))[0] == 0
    code, _, err = cli(store, capsys, "monitor", "iris", "--no-png")
    assert code == 0 and "0 rows served in the last 1h" in _
    live = rng.normal(size=(1000, 4))
    live[:, 2] += 2.0
    serve(store, tmp_path, live)
    png = tmp_path / "drift.png"
    code, out, err = cli(store, capsys, "monitor", "iris", "--window", "10m", "--png", str(png))
    assert code == 0, err
    assert "iris:1: 1000 rows served in the last 10m (1 snapshot) against 3000" in out
    table = out[out.index("iris:1: 1000 rows") :].splitlines()  # after the function's logs
    assert table[1].split() == ["feature", "PSI", "JS", "NaN", "outside", "drift"]
    assert table[2].startswith("petal_length") and table[2].endswith("DRIFT (PSI > 0.2)")
    # The only feature flagged; the predictions moved with it (this model weighs it).
    assert "2 of 5 drifted: petal_length, (prediction)" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A --png in a folder that is not there: one line, not savefig's traceback.
    missing = tmp_path / "no-such-folder" / "drift.png"
    code, _, err = cli(store, capsys, "monitor", "iris", "--window", "10m", "--png", str(missing))
    assert (code, err) == (1, f"aiaas monitor: error: cannot write {missing}: "
                              "No such file or directory\n")  # fmt: skip


def test_monitor_without_a_baseline_or_matplotlib_says_what_to_do(
    store: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = cli(store, capsys, "monitor", "iris", "--no-png")
    assert code == 1 and "iris:1 has no drift baseline; add one with `aiaas baseline" in err
    with pytest.raises(SystemExit) as usage:  # said before the baseline is looked for
        cli(store, capsys, "monitor", "iris", "--window", "soon", "--no-png")
    assert usage.value.code == 2
    assert "argument --window: --window must be a number and a unit" in capsys.readouterr().err
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    rows = np.random.default_rng(1).normal(size=(300, 4))
    assert cli(store, capsys, "baseline", "iris", str(write_csv(tmp_path / "t.csv", rows)))[0] == 0
    serve(store, tmp_path, rows[:10])
    # The default PNG, never asked for, is best-effort: a base install got an error instead of
    # the table. Now the table and the verdict, then one line naming the extra, exit 0.
    code, out, err = cli(store, capsys, "monitor", "iris", "--window", "10m")
    assert (code, err) == (0, "")
    assert "iris:1: 10 rows served in the last 10m" in out and "of 5 drifted" in out
    assert out.endswith(
        "\nno drift PNG drawn: matplotlib is not installed (pip install 'aiaas[card]'; "
        "--no-png: the table only, without this line)\n"
    )
    assert not list(Path.cwd().glob("iris-1-drift.png"))
    code, out, _ = cli(store, capsys, "monitor", "iris", "--window", "10m", "--no-png")
    assert code == 0 and "of 5 drifted" in out and "PNG" not in out
    # A PNG asked for by name is refused before the work, nothing on stdout.
    code, out, err = cli(store, capsys, "monitor", "iris", "--png", str(tmp_path / "d.png"))
    assert (code, out) == (1, "")
    assert err == (
        "aiaas monitor: error: the drift PNG needs matplotlib, which is not installed: "
        "pip install 'aiaas[card]' (or --no-png: the table only)\n"
    )
    # explain and compare said it only after printing their answer (stdout, then exit 1): a base
    # install's `--png` is now refused before the work, as monitor's, with nothing on stdout.
    for command in (
        ("explain", "iris", "--inputs", "[[1, 2, 3, 4]]", "--png", "why.png"),
        ("compare", "iris", "1", "1", "--data", "rows.csv", "--png", "cmp.png"),
    ):
        code, out, err = cli(store, capsys, *command)
        assert (code, out) == (1, ""), command
        assert err == (
            f"aiaas {command[0]}: error: --png needs matplotlib, which is not installed: "
            "pip install 'aiaas[card]'\n"
        )


def test_monitor_does_not_call_a_few_rows_drift(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """25 unshifted rows' PSI is noise (it was flagged DRIFT on every feature)."""
    rng = np.random.default_rng(1)
    train = rng.normal(size=(3000, 4))
    assert cli(store, capsys, "baseline", "iris", str(write_csv(tmp_path / "t.csv", train)))[0] == 0
    serve(store, tmp_path, rng.normal(size=(25, 4)))
    code, out, err = cli(store, capsys, "monitor", "iris", "--window", "10m", "--no-png")
    assert code == 0, err
    assert "too few rows to judge drift: 25 served, 200 needed (20 a bin)" in out
    assert "DRIFT" not in out and "0 of 5 drifted" in out


def test_monitor_of_rows_not_yet_written_says_when_they_will_be(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One request answered, its counts still held by the function (written once a minute, at
    a request's end): the window is empty, and the user is told why, not just "no rows"."""
    rng = np.random.default_rng(2)
    train = rng.normal(size=(3000, 4))
    assert cli(store, capsys, "baseline", "iris", str(write_csv(tmp_path / "t.csv", train)))[0] == 0
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "iris"}, pool)
    body = orjson.dumps({"inputs": rng.normal(size=(1, 4)).tolist()})
    assert service.handle(http_event("POST", "/models/iris/predict", body))["statusCode"] == 200
    code, out, err = cli(store, capsys, "monitor", "iris", "--no-png")
    assert code == 0, err
    assert "iris:1: 0 rows served in the last 1h (0 snapshots)" in out
    assert "no counts were written in the window" in out
    assert "AIAAS_DRIFT_FLUSH_SECONDS, 60 s by default" in out and "its next request" in out


def test_a_baseline_added_while_serving_is_counted_without_a_restart(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user's own model served, then baselined (publish writes none): the function had read
    no baseline at the version's first request and counted nothing until it restarted, while
    monitor said to wait for the next request."""
    rng = np.random.default_rng(2)
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "iris", "AIAAS_DRIFT_FLUSH_SECONDS": "0.001"}, pool)
    body = orjson.dumps({"inputs": rng.normal(size=(1, 4)).tolist()})
    assert service.handle(http_event("POST", "/models/iris/predict", body))["statusCode"] == 200
    train = write_csv(tmp_path / "t.csv", rng.normal(size=(3000, 4)))
    assert cli(store, capsys, "baseline", "iris", str(train))[0] == 0
    for _ in range(3):  # an interval apart (1 ms): read the baseline, count, then write
        time.sleep(0.005)
        assert service.handle(http_event("POST", "/models/iris/predict", body))["statusCode"] == 200
    # The last request's write runs aside: it is waited for, as a stopping server waits (on a
    # CI host at load, monitor read the store before it landed: "no counts were written").
    assert service.plane.drift is not None
    service.plane.drift.flush()
    code, out, err = cli(store, capsys, "monitor", "iris", "--no-png")
    assert code == 0, err
    assert "no counts were written" not in out
    assert "iris:1: 0 rows served" not in out


def test_monitor_of_a_baseline_its_model_cannot_use_says_so(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """iris:2 (3 features) given iris:1's baseline (4) by hand: the predict function counts
    none of its rows, and monitor said "no counts yet: they show after the next request"."""
    train = np.random.default_rng(3).normal(size=(40, 4))
    assert cli(store, capsys, "baseline", "iris", str(write_csv(tmp_path / "t.csv", train)))[0] == 0
    model = onnx_factory.linear_classifier(tmp_path / "three.onnx", features=3)
    assert cli(store, capsys, "publish", str(model), "--name", "iris", "--labels", "a,b,c")[0] == 0
    baseline = store.get_bytes("models/iris/versions/1/drift_baseline.json")
    store.put_bytes("models/iris/versions/2/drift_baseline.json", baseline)
    code, out, err = cli(store, capsys, "monitor", "iris:2", "--no-png")
    assert (code, out) == (1, "")
    assert err == (
        "aiaas monitor: error: iris:2 is not monitored: its baseline does not fit input x of "
        "float32 x 3, so its predict function counts no rows; a version's baseline is written "
        "once: publish the model again and `aiaas baseline` the new version with its training "
        "data\n"
    )


def test_the_drift_png_of_a_784_pixel_image_model_draws_the_most_drifted_rows(
    tmp_path: Path,
) -> None:
    # A 28x28 image model's baseline bins every pixel: the PNG was 784 rows, 24,345 px tall.
    from PIL import Image

    from infra.cli.monitor_figure import MAX_DRAWN, draw, most_drifted

    names = tuple(f"x_{i}" for i in range(784))
    psi = np.zeros((24, 784))
    psi[3, 500] = 3.0  # the drifted pixel is among those drawn
    assert 500 in most_drifted(psi) and len(most_drifted(psi)) == MAX_DRAWN
    draw("cnn:1", names, np.arange(24.0) + 1.8e9, psi, 0.2, tmp_path / "drift.png")
    width, height = Image.open(tmp_path / "drift.png").size
    assert height < 0.28 * 110 * MAX_DRAWN + 400 and MAX_DRAWN <= 60
    assert width == 990


def test_the_drift_png_says_when_psi_runs_past_its_colour_scale() -> None:
    # PSI 0.6 and 6 were one dark red at the scale's top (0.5), the bar showing no more.
    from infra.cli.monitor_figure import drift_figure, drift_pyplot

    psi = np.full((6, 2), 0.05)
    ends = np.arange(6.0) * 600 + 1.8e9
    calm = drift_figure(drift_pyplot(), "iris:1", ("a", "b"), ends, psi, 0.2)
    assert calm.axes[0].images[0].colorbar.extend == "neither"
    psi[3:, 1] = 6.0
    drifted = drift_figure(drift_pyplot(), "iris:1", ("a", "b"), ends, psi, 0.2)
    assert drifted.axes[0].images[0].colorbar.extend == "max"


def test_the_drift_png_hatches_a_slice_of_too_few_rows_as_the_table_says(
    store: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 30 rows of the training distribution itself: the table said "sampling noise, 0 of 5
    # drifted" while the PNG painted every feature of their slice at the darkest red (hunt_card 6).
    from matplotlib.figure import Figure

    rng = np.random.default_rng(2)
    train = rng.normal(size=(3000, 4))
    assert cli(store, capsys, "baseline", "iris", str(write_csv(tmp_path / "t.csv", train)))[0] == 0
    serve(store, tmp_path, rng.normal(size=(30, 4)))
    written: list[Figure] = []
    real_savefig = Figure.savefig

    def savefig(figure: Figure, *args: Any, **kwargs: Any) -> None:
        written.append(figure)
        real_savefig(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    png = tmp_path / "drift.png"
    code, out, err = cli(store, capsys, "monitor", "iris", "--window", "10m", "--png", str(png))
    assert code == 0, err
    assert "too few rows to judge drift: 30 served, 200 needed" in out and "0 of 5 drifted" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and len(written) == 1
    axes = written[0].axes[0]
    cells = axes.images[0].get_array()
    assert cells.shape == (5, 24)  # 4 features and (prediction), 24 slices
    assert np.ma.getmaskarray(cells).all()  # no cell on the red scale: nothing judged
    (patch,) = axes.patches  # the one slice that served rows, its 5 cells
    assert patch.get_hatch() == "///" and patch.get_facecolor()[:3] == pytest.approx((0.85,) * 3)
    assert (patch.get_width(), patch.get_height(), patch.get_y()) == (1, 5, -0.5)
    assert "hatched grey: too few rows to judge drift (200 a slice needed)" in axes.get_xlabel()
    # 400 rows more: their slice (the 30's too, if they share it) is painted, not hatched.
    serve(store, tmp_path, rng.normal(size=(400, 4)))
    written.clear()
    code, out, err = cli(store, capsys, "monitor", "iris", "--window", "10m", "--png", str(png))
    assert code == 0 and "too few rows" not in out, err
    axes = written[-1].axes[0]
    (step,) = np.flatnonzero(~np.ma.getmaskarray(axes.images[0].get_array()).all(axis=0))
    assert [p.get_x() + 0.5 for p in axes.patches] in ([], [patch.get_x() + 0.5])
    assert step != patch.get_x() + 0.5 or not axes.patches
