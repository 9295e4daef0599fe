"""`aiaas baseline` and `aiaas explain` on a published model, through `main([...])`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.cache import sha256_file
from functions.runtime.explain.kernel_shap import numpy_seconds
from functions.runtime.store import LocalStore
from infra.cli import row_progress
from infra.cli.explain_plot import attribution_map, grey_image, headline
from infra.cli.main import main
from tests import onnx_factory

FEATURES = "sepal_length,sepal_width,petal_length,petal_width"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    model = onnx_factory.linear_classifier(tmp_path / "iris.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "iris", "--labels", "a,b,c"]
    assert main([*argv, "--features", FEATURES]) == 0
    return store


def write_csv(path: Path, rows: np.ndarray) -> Path:
    lines = ["id," + FEATURES] + [f"r{i}," + ",".join(map(str, r)) for i, r in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(store: LocalStore, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--store", store.uri, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_baseline_then_explain_rows_a_file_and_a_picture(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = np.random.default_rng(0).normal(size=(40, 4)).round(3)
    data = write_csv(tmp_path / "train.csv", rows)
    code, out, err = cli(store, capsys, "explain", "iris", "--inputs", "[[1, 2, 3, 4]]")
    assert code == 1 and "has no background to explain against" in err
    code, out, _ = cli(store, capsys, "baseline", "iris", str(data), "--clusters", "5")
    assert (code, out) == (
        0,
        "iris:1: background = k-means (5 centres) of 40 rows\n"
        "iris:1: drift baseline = 40 rows in 10 bins a feature\n",
    )
    # Run again on the same data with the same options: done, as a job run again is.
    code, out, err = cli(store, capsys, "baseline", "iris", str(data), "--clusters", "5")
    assert (code, out, err) == (0, "iris:1 already has a background and a drift baseline made "
                                f"from this data (train.csv, sha256 {sha256_file(data)[:12]}, "
                                "--bins 10, --clusters 5): nothing written\n", "")  # fmt: skip

    png = tmp_path / "why.png"
    record = json.dumps(
        {"instances": [dict(zip(FEATURES.split(","), [1.0, 2.0, 3.0, 4.0], strict=True))]}
    )
    code, out, _ = cli(store, capsys, "explain", "iris", "--inputs", record, "--png", str(png))
    assert code == 0, out
    assert out.startswith("iris:1 kernel_shap samples=14, exact=True, background_rows=5")
    assert "row 0: " in out and "petal_width" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    jsonl = tmp_path / "why.jsonl"
    code, out, _ = cli(store, capsys, "explain", "iris", "--file", str(data), "--out", str(jsonl))
    # `iris` alone: the summary says which version explained the file
    assert (code, out) == (0, f"explained 40 of 40 rows of {data} with iris:1 into {jsonl}\n")
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["row"] for line in lines] == list(range(40))
    for line in lines:
        values = np.asarray(line["attributions"])
        assert values.shape == (4, 3) and line["features"] == FEATURES.split(",")
        gap = np.asarray(line["prediction"]) - np.asarray(line["base_value"])
        np.testing.assert_allclose(values.sum(axis=0), gap, atol=1e-5)


def test_a_scikit_learn_zipmap_export_is_explained_like_shap_explains_predict_proba(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """skl2onnx default export (ZipMap): attributions of sklearn's own predict_proba, exactly."""
    import shap
    from shap.utils._legacy import DenseData

    from functions.runtime.explain.background import BACKGROUND_FILE, Background
    from functions.runtime.registry import version_prefix
    from tests.sklearn_models import export, wine_split

    exported = export("pipeline", tmp_path)
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(exported.path), "--name", "wine"]) == 0
    x_train = wine_split()[0]
    np.save(tmp_path / "train.npy", x_train)
    assert (
        main(
            [
                "--store",
                store.uri,
                "baseline",
                "wine",
                str(tmp_path / "train.npy"),
                "--clusters",
                "6",
            ]
        )
        == 0
    )
    capsys.readouterr()
    rows = exported.x_test[:2]
    # 13 features: 8,190 coalitions enumerate them all, so both sides give exact values.
    argv = ("explain", "wine", "--inputs", json.dumps(rows.tolist()), "--json", "--samples", "8190")
    code, out, _ = cli(store, capsys, *argv)
    assert code == 0
    doc = json.loads(out)
    assert doc["outputs"] == exported.classes and doc["parameters"]["exact"] is True
    key = f"{version_prefix('wine', '1')}/{BACKGROUND_FILE}"
    background = Background.from_json(store.get_bytes(key), 13)
    names = [str(i) for i in range(13)]
    data = DenseData(background.rows, names, None, background.weights)
    reference = shap.KernelExplainer(exported.estimator.predict_proba, data)
    want = np.asarray(
        reference.shap_values(rows.astype(np.float64), nsamples=8190, l1_reg=False, silent=True)
    )
    for row, expected in zip(doc["explanations"], want, strict=True):
        # float32 graph against float64 scikit-learn: equal to 1e-5.
        np.testing.assert_allclose(row["attributions"], expected, atol=1e-5)


def test_a_csv_for_a_model_without_feature_names_is_told_what_to_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A default skl2onnx export has no feature names: the user's own CSV header never matches,
    and "lacks column(s) x_0, ..." alone did not say what would."""
    from tests.sklearn_models import export, wine_split

    exported = export("pipeline", tmp_path)
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(exported.path), "--name", "wine"]) == 0
    rows = wine_split()[0]
    named = tmp_path / "wine.csv"
    np.savetxt(named, rows, delimiter=",", header=",".join(f"c{i}" for i in range(13)), comments="")
    code, _, err = cli(store, capsys, "baseline", "wine", str(named))
    assert code == 1 and err == (
        f"aiaas baseline: error: {named}: the header lacks column(s) X_0, X_1, X_2, X_3, X_4, "
        "X_5, ... (13 in all); wine:1 has no feature names, so the header names its 13 columns "
        "X_0 to X_12 in order, as batch reads them (or give a .npy of [N, 13] rows)\n"
    )
    bare = tmp_path / "bare.csv"
    np.savetxt(bare, rows, delimiter=",")
    code, _, err = cli(store, capsys, "baseline", "wine", str(bare))
    assert code == 1 and "(13 in all) (is the header line missing?); wine:1 has no" in err
    np.savetxt(
        named, rows, delimiter=",", header=",".join(f"x_{i}" for i in range(13)), comments=""
    )
    code, out, _ = cli(store, capsys, "baseline", "wine", str(named))
    assert code == 0 and out.startswith("wine:1: background = k-means (10 centres)")
    # The columns `aiaas batch` reads (the input's name, X_0..): one CSV serves both.
    np.savetxt(
        named, rows, delimiter=",", header=",".join(f"X_{i}" for i in range(13)), comments=""
    )
    assert main(["--store", store.uri, "publish", str(exported.path), "--name", "wine2"]) == 0
    capsys.readouterr()
    code, out, err = cli(store, capsys, "baseline", "wine2", str(named))
    assert code == 0 and out.startswith("wine2:1: background = k-means (10 centres)"), err


def _image_model(path: Path) -> Path:
    """logits = flatten(x) @ W: float32 [N, 1, 4, 4] images -> [N, 3]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["logits"]),
        ],
        "image",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _baselined_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], count: int
) -> tuple[LocalStore, np.ndarray]:
    """The [N, 1, 4, 4] image model published as `img`, its background from `count` random
    images (saved as images.npy, and returned)."""
    store = LocalStore(tmp_path / "store")
    model = _image_model(tmp_path / "image.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "img", "--labels", "a,b,c"]
    assert main(argv) == 0
    images = np.random.default_rng(1).uniform(0, 1, size=(count, 1, 4, 4)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    assert cli(store, capsys, "baseline", "img", str(tmp_path / "images.npy"))[0] == 0
    return store, images


def _one_row_seconds(
    store: LocalStore, capsys: pytest.CaptureFixture[str], tmp_path: Path, image: np.ndarray
) -> float:
    """What explaining `image` (one row, one-pixel patches) is priced at: the model's share
    from the figures of its refusal at a limit nothing fits, and the numpy work around it."""
    np.save(tmp_path / "one.npy", image)
    out = tmp_path / "priced.jsonl"
    argv = ("explain", "img", "--file", str(tmp_path / "one.npy"), "--patch", "1")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIAAS_EXPLAIN_MAX_SECONDS", "1e-6")
        assert cli(store, capsys, *argv, "--out", str(out))[0] == 1
    (line,) = [json.loads(text) for text in out.read_text().splitlines()]
    words = line["error"].replace(",", "").split()
    evaluations = float(words[words.index("model") - 1])
    around = numpy_seconds(coalitions=2080, groups=16, width=16, background=10, outputs=3)
    return evaluations * float(words[words.index("us") - 1]) * 1e-6 + around


def test_a_file_of_images_larger_than_one_requests_budget_is_explained_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`explain --file` on an image model sent rows flattened ([N, 16] to a [-1, 1, 4, 4] input:
    a 422 on every file), and 64 rows a request whatever they cost, so a file of the digits MLP
    over 43 rows failed whole at the default budget. Refused chunks are now halved."""
    store, images = _baselined_images(tmp_path, capsys, 70)
    # One row of 16 one-pixel patches is 2,080 coalitions x 10 background rows. The limit is a
    # third of what the first chunk of 64 is priced at on this machine now, so that chunk is
    # refused, and far above one row: a busy machine's 2-core onnxruntime scores the rows of an
    # explanation at up to 17x the rate first timed, and a fixed 0.5 s then refused every row.
    one_row = _one_row_seconds(store, capsys, tmp_path, images[:1])
    monkeypatch.setenv("AIAAS_EXPLAIN_MAX_SECONDS", f"{64 * one_row / 3:.6f}")
    jsonl = tmp_path / "why.jsonl"
    argv2 = ("explain", "img", "--file", str(tmp_path / "images.npy"), "--patch", "1")
    code, out, err = cli(store, capsys, *argv2, "--out", str(jsonl))
    assert code == 0, err
    assert f"explained 70 of 70 rows of {tmp_path / 'images.npy'}" in out
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["row"] for line in lines] == list(range(70))
    for line in lines:
        values = np.asarray(line["attributions"])
        assert values.shape == (16, 3) and line["features"][5] == "patch_r1_c1"
        gap = np.asarray(line["prediction"]) - np.asarray(line["base_value"])
        np.testing.assert_allclose(values.sum(axis=0), gap, atol=1e-5)


def test_a_file_with_bad_rows_explains_the_rest_and_names_them(
    store: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One unreadable cell used to fail the whole file, with nothing written."""
    rows = np.random.default_rng(0).normal(size=(6, 4)).round(3)
    assert cli(store, capsys, "baseline", "iris", str(write_csv(tmp_path / "t.csv", rows)))[0] == 0
    lines = write_csv(tmp_path / "rows.csv", rows).read_text().splitlines()
    lines[2] = "r1,1.0,abc,3.0,4.0"  # row 1
    lines[5] = "r4,1.0,,3.0,4.0"  # row 4
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    code, out, err = cli(store, capsys, "explain", "iris", "--file", str(tmp_path / "rows.csv"))
    assert code == 1
    assert "explained 4 of 6 rows" in err and "2 row(s) could not be explained" in err
    records = [json.loads(line) for line in out.splitlines()]  # stdout is the JSONL alone
    assert [r["row"] for r in records] == list(range(6))
    assert records[1] == {
        "row": 1,
        "line": 3,  # as the error says, and as batch's error records name it
        "record": {"id": "r1"},  # the CSV's columns that are not features, to join back on
        "error": "line 3: column 'sepal_width' is not a number: 'abc'",  # as batch names it
    }
    # An empty cell is a missing value this model refuses, said as `aiaas batch` says it.
    assert records[4]["error"].startswith(
        "line 6: column 'sepal_width' is a missing value (an empty cell); this model takes"
    )
    assert all("attributions" in records[i] for i in (0, 2, 3, 5))
    assert [r["record"] for r in records] == [{"id": f"r{i}"} for i in range(6)]
    # A long file shows its progress on stderr (the bad rows count as done), off on request.
    monkeypatch.setattr(row_progress, "SHOW_AFTER_S", 0.0)
    argv = ("explain", "iris", "--file", str(tmp_path / "rows.csv"))
    code, out, err = cli(store, capsys, *argv)
    assert [json.loads(line)["row"] for line in out.splitlines()] == list(range(6))
    assert "iris:1 explain rows.csv: 6 of 6 rows done (100%), " in err  # 4 explained, said after
    code, out, err = cli(store, capsys, *argv, "--no-progress")
    assert "rows done" not in err and len(out.splitlines()) == 6


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_an_image_models_png_is_a_heat_map_of_its_patches_over_the_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`explain --png` on an image model drew a bar chart of patch names ("patch_r0_c3"): a
    data scientist looks for the attributions over the image. The heat map's data is each
    patch's attribution on every pixel of that patch, edge patches cut short included."""
    store, images = _baselined_images(tmp_path, capsys, 30)
    png = tmp_path / "why.png"
    image = json.dumps(images[:1].tolist())
    argv2 = ("explain", "img", "--inputs", image, "--patch", "3", "--json", "--png", str(png))
    code, out, err = cli(store, capsys, *argv2)
    assert code == 0, err
    doc = json.loads(out)  # --json: stdout is the document alone, no "wrote why.png" after it
    # 3-pixel patches of a 4 x 4 image: a 3 x 3 one, two cut to 3 x 1 and 1 x 3, one 1 x 1.
    assert doc["features"] == ["patch_r0_c0", "patch_r0_c3", "patch_r3_c0", "patch_r3_c3"]
    row = doc["explanations"][0]
    column = int(np.argmax(row["prediction"]))
    values = np.asarray(row["attributions"])[:, column]
    expected = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            expected[i, j] = values[(i // 3) * 2 + j // 3]
    np.testing.assert_array_equal(attribution_map(doc, (4, 4)), expected)
    width, height = _png_size(png)
    assert 600 <= width <= 1600 and 350 <= height <= 1200, (width, height)  # not 770 x 286 bars
    target, numbers = headline(doc)
    p = row["prediction"][column]  # publish --labels serves probabilities
    assert (target, numbers) == (
        row["label"],
        f"P({target}) = {p:.3f}, base {row['base_value'][column]:.3g}",
    )


def test_a_heat_map_reads_any_image_layout_and_a_title_says_a_probability_or_a_score() -> None:
    hw = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(grey_image(hw.reshape(-1), (3, 4)), hw)
    np.testing.assert_array_equal(grey_image(np.stack([hw, hw + 2]), (2, 3, 4)), hw + 1)
    wide = np.arange(30.0).reshape(5, 6)  # [H, W, C] when the first axis is over 4
    np.testing.assert_array_equal(
        grey_image(np.stack([wide, wide + 2], axis=-1), (5, 6, 2)), wide + 1
    )
    doc = {
        "outputs": ["a", "b"],
        "features": ["x", "y"],
        "explanations": [
            {
                "label": "b",
                "prediction": [0.25, 0.75],
                "base_value": [0.5, 0.5],
                "attributions": [[-0.1, 0.1], [-0.15, 0.15]],
            }
        ],
    }
    assert headline(doc) == ("b", "P(b) = 0.750, base 0.5")
    doc["explanations"][0]["prediction"] = [1.5, 2.5]  # logits are not probabilities
    assert headline(doc) == ("b", "b = 2.5, base 0.5")


def test_a_jsonl_file_of_rows_is_explained_as_its_csv_and_bad_lines_named(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records by feature name or bare lists, read as `aiaas batch` reads them (it was refused:
    JSONL was read for image models only); each line batch would refuse is an error line."""
    rows = np.random.default_rng(1).normal(size=(3, 4)).round(3)
    assert cli(store, capsys, "baseline", "iris", str(write_csv(tmp_path / "t.csv", rows)))[0] == 0
    names = FEATURES.split(",")
    lines = [
        json.dumps({"id": "a", **dict(zip(names, rows[0].tolist(), strict=True))}),
        json.dumps({"id": "b", "sepal_length": 1.0}),  # features missing
        "",  # blank: skipped, but counted as an editor counts lines
        json.dumps(rows[1].tolist()),  # a bare row of values
        "{not json",
        json.dumps({"id": "c", **dict(zip(names, rows[2].tolist(), strict=True))}),
    ]
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = cli(store, capsys, "explain", "iris", "--file", str(tmp_path / "rows.jsonl"))
    assert code == 1, err
    assert "explained 3 of 5 rows" in err and "2 row(s) could not be explained" in err
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["row"], r["line"]) for r in records] == [(0, 1), (1, 2), (2, 4), (3, 5), (4, 6)]
    assert records[1] == {
        "row": 1,
        "line": 2,
        "record": {"id": "b"},
        "error": "missing feature 'sepal_width' (or input 'x')",
    }
    assert records[3]["error"].startswith("not valid JSON")
    assert [r.get("record") for r in records] == [{"id": "a"}, {"id": "b"}, None, None, {"id": "c"}]
    code, csv_out, _ = cli(store, capsys, "explain", "iris", "--file", str(tmp_path / "t.csv"))
    assert code == 0
    from_csv = [json.loads(line) for line in csv_out.splitlines()]
    for line, row in zip((records[0], records[2], records[4]), from_csv, strict=True):
        assert line["features"] == names
        np.testing.assert_allclose(line["attributions"], row["attributions"], atol=1e-6)
