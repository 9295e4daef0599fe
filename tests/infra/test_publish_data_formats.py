"""`aiaas publish --data FILE`: the extension names the format as `aiaas baseline` and `explain
--file` read it. Every name but .csv was read as JSONL: a CSV named `held.txt` or `held` said
"Expecting value: line 1 column 1 (char 0)", a `.csv.gz` or an `.npy` "'utf-8' codec can't
decode byte 0x8b", where baseline read the CSV and said what to do with the others."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.cli.publish_evaluation import read_data
from tests import onnx_factory

FEATURES = "sepal_length,sepal_width,petal_length,petal_width"
ROWS = np.random.default_rng(0).normal(size=(20, 4)).round(3)
CSV = (
    FEATURES
    + ",label\n"
    + "".join(f"{','.join(map(str, r))},{i % 3}\n" for i, r in enumerate(ROWS))
)


def publish(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`aiaas publish iris.onnx --data DATA --target label`: the exit code and stderr."""
    model = onnx_factory.linear_classifier(tmp_path / "iris.onnx")
    store = LocalStore(tmp_path / "store")
    argv = ["--store", store.uri, "publish", str(model), "--name", "iris", "--labels", "0,1,2"]
    code = main([*argv, "--features", FEATURES, "--data", str(data), "--target", "label"])
    return code, capsys.readouterr().err


def held_out(tmp_path: Path) -> dict[str, object]:
    manifest = Registry(LocalStore(tmp_path / "store")).manifest("iris", "1")
    return dict((manifest.metrics or {})["held_out"])


@pytest.mark.parametrize("name", ["held.txt", "held", "held.TXT"])
def test_a_csv_named_txt_or_without_extension_is_read_as_csv(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / name).write_text(CSV)
    code, err = publish(tmp_path, tmp_path / name, capsys)
    assert code == 0, err
    assert (held_out(tmp_path)["rows"], held_out(tmp_path)["target"]) == (20, "label")


def _records() -> list[dict[str, object]]:
    names = FEATURES.split(",")
    return [
        {**dict(zip(names, row, strict=True)), "label": i % 3}
        for i, row in enumerate(ROWS.tolist())
    ]


# .json too: JSON lines named .json were read before the extension named the format
@pytest.mark.parametrize("name", ["held.ndjson", "held.json"])
def test_an_ndjson_or_json_file_of_lines_is_read_as_jsonl(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in _records()))
    code, err = publish(tmp_path, tmp_path / name, capsys)
    assert code == 0 and held_out(tmp_path)["rows"] == 20, err


def test_a_json_array_is_told_how_to_write_it_as_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "held.json").write_text(json.dumps(_records(), indent=1))
    code, err = publish(tmp_path, tmp_path / "held.json", capsys)
    assert code == 1 and len(err.splitlines()) == 1, err
    assert f"--data {tmp_path / 'held.json'} line 1 is no JSON record (" in err
    assert "give one JSON object a line; a JSON array: jq -c '.[]' held.json > held.jsonl" in err


def _gzip(path: Path) -> None:
    path.write_bytes(gzip.compress(CSV.encode()))


def _npy(path: Path) -> None:
    with path.open("wb") as handle:  # np.save would append .npy to `R.NPY`
        np.save(handle, ROWS)


@pytest.mark.parametrize(
    ("name", "write", "says"),
    [
        ("held.CSV.gz", _gzip, "held.CSV.gz is gzip-compressed; this command reads .csv, .jsonl "
         "or .npz as they are: decompress it first (gunzip -k held.CSV.gz)"),
        ("R.NPY", _npy, "R.NPY is an .npy (one array, no labels); this command reads .csv, "
         ".jsonl or .npz: save the rows with their labels as .npz (numpy: np.savez('R.npz', "
         "x=np.load('R.NPY'), y=LABELS))"),
        ("held.png", _gzip, "held.png is an encoded image; models take pixel values: decode it "
         "into an .npz of images as the model takes them (numpy and Pillow: np.savez('held.npz'"),
        ("held.parquet", _gzip, "held.parquet is a Parquet file; this command reads .csv, "
         ".jsonl or .npz: write it as CSV (pandas: pd.read_parquet('held.parquet')"),
        ("held.2024-11", lambda p: p.write_text(CSV), "unsupported input format '.2024-11'; "
         "this command reads .csv, .jsonl or .npz (a CSV file may also end in .txt, or have no "
         "extension): rename a CSV file to end in .csv, a JSONL file to end in .jsonl"),
    ],
)  # fmt: skip
def test_another_format_is_refused_saying_what_to_write_and_nothing_is_published(
    name: str, write: object, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert callable(write)
    write(tmp_path / name)
    code, err = publish(tmp_path, tmp_path / name, capsys)
    assert code == 1 and f"--data {tmp_path / name}" in err and says in err, err
    assert err.count("\n") == 1 and "codec" not in err and "Expecting value" not in err, err
    with pytest.raises(AiaasError):
        Registry(LocalStore(tmp_path / "store")).manifest("iris", "1")


@pytest.mark.parametrize("name", ["held.csv", "held.jsonl"])
def test_a_file_not_utf8_names_its_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Excel's "CSV" is cp1252: `é` was "'utf-8' codec can't decode byte 0xe9 in position 96"."""
    names = FEATURES.split(",")
    record = json.dumps(
        {**dict(zip(names, ROWS[0].tolist(), strict=True)), "label": "café"}, ensure_ascii=False
    )
    text = CSV.replace(",1\n", ",café\n", 1) if name.endswith(".csv") else record + "\n"
    (tmp_path / name).write_bytes(text.encode("cp1252"))
    code, err = publish(tmp_path, tmp_path / name, capsys)
    line = 3 if name.endswith(".csv") else 1
    says = f"--data {name} line {line} is not UTF-8 text (byte 0xe9); save the file as UTF-8"
    assert code == 1 and says in err and "codec" not in err and err.count("\n") == 1, err


def test_a_dataframe_named_text_column_keeps_its_numbers_as_text(tmp_path: Path) -> None:
    """A "home city" column (skl2onnx's input `home_city`) was read as numbers where a cell
    looked like one: "911" became 911.0, then the text "911.0" beside "NY" (now a number among
    texts is refused). A string input's column is text by its DataFrame name too."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["home_city"], ["y"])],
        "cities",
        [helper.make_tensor_value_info("home_city", TensorProto.STRING, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, ["N", 1])],
    )
    model = onnx_factory.save(graph, tmp_path / "cities.onnx")
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(model), "--name", "cities"]) == 0
    (tmp_path / "held.csv").write_text("home city,label\nNY,a\n911,b\n")
    manifest = Registry(store).manifest("cities", "1")
    data = read_data(tmp_path / "held.csv", manifest, "label")
    assert data.inputs["home_city"].tolist() == [["NY"], ["911"]]


def test_class_names_that_read_as_numbers_are_taken_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Classes `01`, `10`, `2` (string classes of a zip-code-like target): a CSV label `01` was
    read as the number 1, refused as "holds '1', which is not one of the model's classes",
    where `aiaas compare` read the same file (hunt_ownmodels 4). A label written as a number
    of a class (`1.0`) or as an index still reads as before."""
    model = onnx_factory.linear_classifier(tmp_path / "iris.onnx")
    store = LocalStore(tmp_path / "store")
    argv = ["--store", store.uri, "publish", str(model), "--name", "iris", "--features", FEATURES]
    names = ["01", "10", "2"]
    for name, labels in (("names", names), ("indices", ["0.0", "1.0", "2"])):
        (tmp_path / f"{name}.csv").write_text(
            FEATURES
            + ",label\n"
            + "".join(f"{','.join(map(str, r))},{labels[i % 3]}\n" for i, r in enumerate(ROWS))
        )
        code = main([*argv, "--labels", ",".join(names), "--data", str(tmp_path / f"{name}.csv")])
        assert code == 0, capsys.readouterr().err
    registry = Registry(store)
    first, second = (registry.manifest("iris", v).metrics["held_out"] for v in ("1", "2"))
    assert first["rows"] == second["rows"] == 20
    assert first["confusion_matrix"] == second["confusion_matrix"]
    assert [sum(row) for row in first["confusion_matrix"]] == [7, 7, 6]  # 01, 10, 2 as written
