"""`aiaas publish` writes a model card for every version, as `aiaas train` does.

Real skl2onnx exports with default options (a random forest with its ZipMap, a ridge regressor),
held-out rows given as a user writes them (CSV with a named label column, JSONL with `target`),
and the metrics checked against scikit-learn's own scores of what the predict API answers.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, mean_squared_error, r2_score

from functions.runtime.cache import ArtifactCache
from functions.runtime.codecs import simple
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.cli_run import run
from tests.sklearn_models import Exported, export, wine_split

REPO = Path(__file__).resolve().parents[2]
FEATURES = ",".join(f"f{i}" for i in range(13))


def card(store: LocalStore, name: str, version: str = "1") -> str:
    return store.get_bytes(f"models/{name}/versions/{version}/card/card.md").decode()


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Exported, Path, np.ndarray]:
    """The forest export, and its test rows as a CSV whose label column is `cultivar`."""
    root = tmp_path_factory.mktemp("forest")
    exported = export("forest", root)
    _, x_test, _, y_test = wine_split()
    data = root / "held-out.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*FEATURES.split(","), "cultivar"])
        writer.writerows([*row.tolist(), int(y)] for row, y in zip(x_test, y_test, strict=True))
    return exported, data, y_test


@pytest.fixture(scope="module")
def ridge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any, np.ndarray]:
    """A ridge regressor on sklearn's bundled diabetes data; held-out rows as JSONL."""
    root = tmp_path_factory.mktemp("ridge")
    x, y = load_diabetes(return_X_y=True)
    x = x.astype(np.float32)
    estimator = Ridge().fit(x[:300], y[:300])
    model = root / "ridge.onnx"
    model.write_bytes(to_onnx(estimator, x[:1]).SerializeToString())
    data = root / "held-out.jsonl"
    data.write_text(
        "".join(
            json.dumps({"X": r.tolist(), "target": t}) + "\n"
            for r, t in zip(x[300:], y[300:], strict=True)
        )
    )
    return model, data, estimator, x[300:]


def test_a_classifier_card_scores_what_the_api_answers(tmp_path: Path, forest: Any) -> None:
    exported, data, y_test = forest
    store = LocalStore(tmp_path / "store")
    argv = ("publish", str(exported.path), "--name", "wine", "--features", FEATURES)
    code, out, err = run(store, *argv, "--data", str(data), "--target", "cultivar")
    assert code == 0, err
    reg = Registry(store)
    manifest = reg.manifest("wine", "1")
    pool = ModelPool(reg, ArtifactCache(store, tmp_path / "cache"))
    served = pool.load_version("wine", "1")
    doc = simple.encode(manifest, served.predict({"X": exported.x_test}))
    answered = [row["label"] for row in doc["predictions"]]
    truth = [str(int(y)) for y in y_test]
    held_out = manifest.metrics["held_out"]
    assert held_out["rows"] == len(truth) and held_out["target"] == "cultivar"
    assert held_out["accuracy"] == pytest.approx(accuracy_score(truth, answered))
    assert held_out["f1"] == pytest.approx(f1_score(truth, answered, average="macro"))
    assert held_out["confusion_matrix"] == confusion_matrix(truth, answered).tolist()
    assert f"accuracy={held_out['accuracy']:.4g}" in out and "card: card/card.md" in out
    text = card(store, "wine")
    assert "| output_probability | map(int64 -> float32), 3 classes | [-1, 3] |" in text
    assert "| X | float32 | [-1, 13] |" in text and "- Labels (3): 0, 1, 2" in text
    assert f"- Producer: {manifest.file.producer} (opset {manifest.file.opset})" in text
    assert manifest.file.producer.startswith("skl2onnx") and manifest.file.opset > 0
    assert f"| model.onnx | model | {manifest.file.size} | `{manifest.file.sha256}` |" in text
    assert "class scores from output 'output_probability'" in text  # publish's own notes
    assert f"accuracy={held_out['accuracy']:.4g} macro_f1={held_out['f1']:.4g}" in text
    assert "![Confusion matrix](confusion.png)" in text
    assert "![Feature importance](importance.png)" in text
    # the forest's ZipMap holds probabilities: their calibration is drawn too
    files = {"card.md", "confusion.png", "importance.png", "reliability.png"}
    _listed_and_immutable(store, reg, "wine", files, options=True)


def _listed_and_immutable(
    store: LocalStore, reg: Registry, name: str, files: set[str], *, options: bool = False
) -> None:
    """The manifest lists each card file with the sha256 of the bytes stored, and the version
    (card included) is not written again: the same file without the first publish's options
    (`options`: --features, --labels) is another model, refused; else it is done already."""
    manifest = reg.manifest(name, "1")
    listed = {f.path: f for f in manifest.files}
    assert {p.removeprefix("card/") for p in listed if p.startswith("card/")} == files
    for path, item in listed.items():
        stored = store.get_bytes(f"models/{name}/versions/1/{path}")
        assert (item.sha256, item.size, item.role) == (
            hashlib.sha256(stored).hexdigest(),
            len(stored),
            "extra",
        )
    before = card(store, name)
    code, out, err = run(
        store, "publish", "--version", "1", "--name", name, str(_model(store, name))
    )
    if options:
        assert code == 1 and "immutable" in err
    else:
        assert code == 0 and out.startswith(f"already published {name}:1 "), err
    assert card(store, name) == before


def _model(store: LocalStore, name: str) -> Path:
    path = Path(store.root) / "models" / name / "versions" / "1" / "model.onnx"
    assert path.is_file()
    return path


def test_data_in_the_columns_batch_reads_scores_a_model_without_feature_names(
    tmp_path: Path, forest: Any
) -> None:
    """`X_0` ... `X_12`, as `aiaas batch` reads a model published without --features: it was
    refused ("unknown input 'X_12' ... send rows of values"), which a CSV cannot do."""
    exported, _, y_test = forest
    data = tmp_path / "held-out.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(f"X_{i}" for i in range(13)), "label"])
        writer.writerows(
            [*r.tolist(), int(y)] for r, y in zip(exported.x_test, y_test, strict=True)
        )
    store = LocalStore(tmp_path / "store")
    code, _, err = run(store, "publish", str(exported.path), "--name", "wine", "--data", str(data))
    assert code == 0, err
    held_out = Registry(store).manifest("wine", "1").metrics["held_out"]
    truth = [str(int(y)) for y in y_test]
    assert held_out["rows"] == len(truth)
    assert held_out["accuracy"] == pytest.approx(accuracy_score(truth, exported.expected))


def test_a_regressor_card_has_r2_rmse_and_residuals(tmp_path: Path, ridge: Any) -> None:
    model, data, estimator, x = ridge
    store = LocalStore(tmp_path / "store")
    code, _, err = run(store, "publish", str(model), "--name", "diabetes", "--data", str(data))
    assert code == 0, err
    held_out = Registry(store).manifest("diabetes", "1").metrics["held_out"]
    y = load_diabetes(return_X_y=True)[1][300:]
    expected = estimator.predict(x)  # float32 graph vs float64 sklearn: close, not equal
    assert held_out["target"] == "target" and held_out["rows"] == len(y)
    assert held_out["r2"] == pytest.approx(r2_score(y, expected), abs=1e-4)
    assert held_out["rmse"] == pytest.approx(mean_squared_error(y, expected) ** 0.5, rel=1e-4)
    text = card(store, "diabetes")
    assert "![Residuals](residuals.png)" in text and "![Feature importance]" in text
    assert "## Calibration" not in text  # no probabilities: nothing to calibrate, nothing said
    assert "| variable | float32 | [-1, 1] |" in text
    _listed_and_immutable(store, Registry(store), "diabetes", {"card.md", "residuals.png",
                                                               "importance.png"})  # fmt: skip


def test_a_constant_target_has_no_r2_and_the_card_says_why(tmp_path: Path, ridge: Any) -> None:
    """Every true value alike: r2 is 0/0, and the card read `r2=0` (as if the model predicted
    the mean), where `aiaas compare` of the same rows says n/a (hunt_card 5)."""
    model, data, estimator, x = ridge
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    constant = tmp_path / "constant.jsonl"
    constant.write_text("".join(json.dumps({**r, "target": 150.0}) + "\n" for r in rows))
    store = LocalStore(tmp_path / "store")
    code, out, err = run(store, "publish", str(model), "--name", "flat", "--data", str(constant))
    assert code == 0, err
    held_out = Registry(store).manifest("flat", "1").metrics["held_out"]
    assert held_out["r2"] is None and "r2" not in out
    expected = estimator.predict(x)
    assert held_out["rmse"] == pytest.approx(np.sqrt(np.mean((expected - 150) ** 2)), rel=1e-4)
    text = card(store, "flat")
    assert "r2=" not in text and "- no r2: every true value is 150, so there is no variance" in text


def test_without_data_the_card_says_how_to_add_metrics(tmp_path: Path, ridge: Any) -> None:
    store = LocalStore(tmp_path / "store")
    code, out, err = run(store, "publish", str(ridge[0]), "--name", "plain")
    assert code == 0, err
    assert "no metrics: --data FILE --target COLUMN adds them" in out
    text = card(store, "plain")
    assert "No labelled data was given" in text and "--data FILE --target COLUMN" in text
    assert "## Plots" not in text and Registry(store).manifest("plain", "1").metrics == {}
    _listed_and_immutable(store, Registry(store), "plain", {"card.md"})
    code, out, _ = run(store, "show", "plain:1")
    assert code == 0 and "card:      " in out and out.rstrip().endswith("card/card.md")


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--target", "cultivar"], "--target goes with --data"),
        (["--data", "DATA", "--target", "kind"], "--target 'kind' is not a column of"),
        # the file's columns in its order (they were sorted: cultivar, f0, f1, f10, ...)
        (["--data", "DATA", "--target", "kind"], f"; it has {[*FEATURES.split(','), 'cultivar']}"),
        (["--data", "DATA"], "no label column; name it with --target COLUMN"),
    ],
)
def test_a_bad_target_is_refused_and_nothing_written(
    tmp_path: Path, forest: Any, extra: list[str], error: str
) -> None:
    exported, data, _ = forest
    store = LocalStore(tmp_path / "store")
    argv = [str(data) if a == "DATA" else a for a in extra]
    code, out, err = run(store, "publish", str(exported.path), "--name", "w", *argv,
                         "--features", FEATURES)  # fmt: skip
    assert (code, out) == (1, "") and error in err, err
    assert not Registry(store).models()


def test_a_class_the_model_lacks_is_refused(tmp_path: Path, forest: Any) -> None:
    exported, data, _ = forest
    bad = tmp_path / "bad.csv"
    bad.write_text(data.read_text().replace(",2\n", ",7\n", 1))
    store = LocalStore(tmp_path / "store")
    code, _, err = run(store, "publish", str(exported.path), "--name", "w", "--features",
                       FEATURES, "--data", str(bad), "--target", "cultivar")  # fmt: skip
    assert code == 1 and "holds '7', which is not one of the model's classes" in err, err
    assert not Registry(store).models()


def test_rows_the_model_cannot_take_name_the_data_file(tmp_path: Path, forest: Any) -> None:
    exported, _, _ = forest
    narrow = tmp_path / "narrow.npz"  # 10 columns for a model of 13 features
    np.savez(narrow, x=np.zeros((4, 10), np.float32), y=np.zeros(4, np.int64))
    store = LocalStore(tmp_path / "store")
    code, _, err = run(store, "publish", str(exported.path), "--name", "w", "--data", str(narrow))
    assert code == 1 and err.startswith(f"aiaas publish: error: --data {narrow}: input "), err
    assert "dimension 1 must be 13" in err and not Registry(store).models()


BLOCKED = """
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "matplotlib"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Blocked())
from infra.cli.main import main
code = main(sys.argv[1:])
assert not {m.partition(".")[0] for m in sys.modules} & {"torch", "matplotlib"}
raise SystemExit(code)
"""


def test_without_torch_or_matplotlib_the_card_keeps_its_metrics(tmp_path: Path, ridge: Any) -> None:
    """A base install (`pip install aiaas`) has neither: the card is written, plots left out."""
    store = LocalStore(tmp_path / "store")
    argv = [
        "--store",
        store.uri,
        "publish",
        str(ridge[0]),
        "--name",
        "base",
        "--data",
        str(ridge[1]),
    ]
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED, *argv], capture_output=True, text=True, cwd=REPO,
        check=False, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = card(store, "base")
    assert "rmse" in text and "pip install 'aiaas[card]'" in text and "## Plots" not in text
    assert {f.path for f in Registry(store).manifest("base", "1").files} == {"card/card.md"}
