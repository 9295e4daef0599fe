"""What a careless user's mistakes get from `aiaas`: a flag out of range is the command's usage
error (exit 2) before anything is read or uploaded, and a file in the wrong encoding or an --out
that is a folder is one line (exit 1), never a traceback, a minutes-long run or a partial file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import EXIT_ERROR, EXIT_USAGE, run
from tests import onnx_factory
from tests.torchless import torch_or_skip

REPO = Path(__file__).resolve().parents[2]
FEATURES = "sepal_length,sepal_width,petal_length,petal_width"
ROWS = FEATURES + "\n5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n"
LABELLED = FEATURES + ",species\n5.1,3.5,1.4,0.2,a\n6.2,2.9,4.3,1.3,b\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    workdir = tmp_path_factory.mktemp("careless")
    store = LocalStore(workdir / "store")
    model = onnx_factory.linear_classifier(workdir / "iris.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "iris", "--features", FEATURES]
    assert run([*argv, "--labels", "a,b,c", "--no-progress"]) == 0
    # The same model with no baseline yet: baselined iris:1 refuses other data before it reads
    # the file, so a file's own errors are met by a baseline of this one.
    assert run([*argv[:-3], "fresh", *argv[-2:], "--labels", "a,b,c", "--no-progress"]) == 0
    (workdir / "train.csv").write_text(ROWS)
    assert run(["--store", store.uri, "baseline", "iris:1", str(workdir / "train.csv")]) == 0
    return store


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["batch", "iris", "rows.csv", "--shards", "0"], "--shards"),
        (["batch", "iris", "rows.csv", "--shards", "2", "--workers", "-1"], "--workers"),
        (["batch", "iris", "rows.csv", "--chunk-rows", "0"], "--chunk-rows"),
        (["batch", "iris", "rows.csv", "--deployed", "--wait", "--timeout", "nan"], "--timeout"),
        (["baseline", "iris", "rows.csv", "--bins", "99999999"], "--bins"),
        (["baseline", "iris", "rows.csv", "--clusters", "0"], "--clusters"),
        (["explain", "iris", "--file", "rows.csv", "--samples", "0"], "--samples"),
        (["explain", "iris", "--file", "rows.csv", "--patch", "-2"], "--patch"),
        (["compare", "iris", "1", "2", "--data", "rows.csv", "--max-rows", "0"], "--max-rows"),
        (["monitor", "iris", "--threshold", "nan"], "--threshold"),
    ],
)
def test_a_flag_out_of_range_is_a_usage_error_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    # --shards 0 and --workers -1 ran unsharded (exit 0); --chunk-rows 0 was refused after
    # the upload; --bins 99999999 spent minutes in np.quantile; --samples 0 meant the default;
    # compare --max-rows 0 was a StopIteration traceback; monitor --threshold nan flagged nothing.
    store = tmp_path / "store"
    with pytest.raises(SystemExit) as stop:
        run(["--store", str(store), *argv])
    assert stop.value.code == EXIT_USAGE
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"aiaas {argv[0]}: error: argument {flag}: ")
    assert "invalid" not in last  # the range, not argparse's "invalid int value"
    assert not store.exists()  # nothing uploaded, nothing written


@pytest.mark.parametrize("command", ["explain", "baseline"])
def test_a_utf16_csv_is_one_line_naming_the_encoding(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # Was a UnicodeDecodeError traceback (Excel's "Unicode text" saves UTF-16).
    data = tmp_path / "rows.csv"
    data.write_text(ROWS, encoding="utf-16")
    argv = ["--file", str(data)] if command == "explain" else [str(data)]
    ref = "iris:1" if command == "explain" else "fresh:1"
    assert run(["--store", store.uri, command, ref, *argv]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == (
        f"aiaas {command}: error: rows.csv line 1 is not UTF-8 text (byte 0xff); "
        "save the file as UTF-8 (CSV UTF-8 in Excel)\n"
    )


@pytest.mark.parametrize("command", ["explain", "baseline"])
def test_an_npz_or_an_image_file_names_what_to_send(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Read as CSV: an .npz got the training spec's advice (`dataset.format`, an option neither
    command has), a PNG 'save the file as UTF-8 (CSV UTF-8 in Excel)'."""
    npz, png = tmp_path / "rows.npz", tmp_path / "cat.png"
    np.savez(npz, x=np.ones((2, 4), np.float32))
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    for path, said in (
        (npz, "rows.npz is an .npz (several arrays); this command reads .csv, .jsonl or .npy: "
              "for a model of one input save its array as .npy (numpy: np.save('rows.npy', "
              "np.load('rows.npz')['x'])); for one of several, write the rows as JSONL, one "
              "object a row, a field an input"),
        (png, "cat.png is an encoded image; models take pixel values: decode it into an .npy"),
    ):  # fmt: skip
        argv = ["--file", str(path)] if command == "explain" else [str(path)]
        ref = "iris:1" if command == "explain" else "fresh:1"
        assert run(["--store", store.uri, command, ref, *argv]) == EXIT_ERROR
        err = capsys.readouterr().err
        assert said in err and "dataset.format" not in err and "UTF-8" not in err, err


def test_explain_reads_a_csv_with_a_byte_order_mark(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The mark was part of the first column's name: "the header lacks column(s) sepal_length".
    data = tmp_path / "rows.csv"
    data.write_text(ROWS, encoding="utf-8-sig")
    argv = ["--store", store.uri, "explain", "iris:1", "--file", str(data), "--samples", "20"]
    assert run([*argv, "--no-progress"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_a_csv_without_the_features_says_what_it_has(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "the header lacks column(s) sepal_length, ...; it reads sepal_length, ..." named the
    # same columns twice, the second time the model's, and an empty file the same way.
    wrong, empty = tmp_path / "wrong.csv", tmp_path / "empty.csv"
    wrong.write_text("a,b\n1,2\n")
    empty.write_text("")
    for path, has in ((wrong, "it has a, b"), (empty, "the file is empty")):
        assert run(["--store", store.uri, "explain", "iris", "--file", str(path)]) == EXIT_ERROR
        assert capsys.readouterr().err == (
            f"aiaas explain: error: {path}: the header lacks column(s) {FEATURES.replace(',', ', ')}"
            f"; model iris:1 reads {FEATURES.replace(',', ', ')} ({has})\n"
        )


def test_explain_out_a_folder_is_one_line_and_nothing_written(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was an IsADirectoryError traceback; a stopped run also left a half-written --out file.
    data = tmp_path / "rows.csv"
    data.write_text(ROWS)
    folder = tmp_path / "out"
    folder.mkdir()
    argv = ["--store", store.uri, "explain", "iris:1", "--file", str(data), "--samples", "20"]
    assert run([*argv, "--out", str(folder), "--no-progress"]) == EXIT_ERROR
    assert (
        capsys.readouterr().err == f"aiaas explain: error: cannot write {folder}: Is a directory\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "rows.csv"]  # no temp left


def test_a_binary_event_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"a": 1}', encoding="utf-16")
    store = tmp_path / "store"
    assert run(["--store", str(store), "invoke", "Health", "-e", str(event)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == f"aiaas invoke: error: event {event} is not UTF-8 JSON (byte 1)\n"


def test_a_binary_job_spec_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_bytes(b"name: x\n\x80\x81")
    assert run(["--store", str(tmp_path / "store"), "train", str(spec)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == (
        f"aiaas train: error: spec {spec} is not UTF-8 text (byte 9); give a YAML or JSON job spec\n"
    )


def test_compare_data_a_path_that_is_not_a_file_says_so(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was "invalid storage key '/tmp/.../rows.csv'": a missing file read as a store key.
    missing = tmp_path / "rows.csv"
    argv = ["--store", store.uri, "compare", "iris", "1", "1", "--data", str(missing)]
    assert run(argv) == EXIT_ERROR
    assert capsys.readouterr().err == (
        f"aiaas compare: error: --data {missing}: no such file "
        "(give a file on disk or a key in the store)\n"
    )


def test_explain_inputs_from_a_missing_file_is_one_line(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--inputs @FILE` with no such file (or a folder) was a FileNotFoundError traceback.
    missing = tmp_path / "body.json"
    assert run(["--store", store.uri, "explain", "iris", "--inputs", f"@{missing}"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == f"aiaas explain: error: --inputs @{missing}: No such file or directory\n"


def test_publish_data_reads_a_csv_with_a_byte_order_mark(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "--target 'species' is not a column of rows.csv; it has [..., '\\ufeffsepal_length']".
    data = tmp_path / "rows.csv"
    data.write_text(LABELLED, encoding="utf-8-sig")
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "bom", "--features", FEATURES]
    argv += ["--labels", "a,b,c", "--data", str(data), "--target", "species"]
    assert run([*argv, "--no-progress"]) == 0
    assert "on 2 rows of rows.csv" in capsys.readouterr().out  # the labels were read


@pytest.mark.parametrize("command", ["explain", "compare"])
def test_png_in_a_missing_folder_or_onto_a_folder_is_one_line(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # explain into a missing folder: a FileNotFoundError traceback. Onto a folder, both said
    # "wrote DIR" and wrote DIR.png (savefig added the suffix).
    data = tmp_path / "rows.csv"
    data.write_text(LABELLED)
    argv = [
        "--store",
        store.uri,
        *{
            "explain": ["explain", "iris", "--inputs", "[[1, 2, 3, 4]]", "--samples", "20"],
            "compare": ["compare", "iris", "1", "1", "--data", str(data), "--label", "species"],
        }[command],
    ]
    if command == "explain":  # compare makes the folders (as it did)
        missing = tmp_path / "no-such-folder" / "why.png"
        assert run([*argv, "--png", str(missing)]) == EXIT_ERROR
        err = capsys.readouterr().err
        assert err == f"aiaas explain: error: cannot write {missing}: No such file or directory\n"
    folder = tmp_path / "pictures"
    folder.mkdir()
    assert run([*argv, "--png", str(folder)]) == EXIT_ERROR
    assert (
        capsys.readouterr().err
        == f"aiaas {command}: error: cannot write {folder}: Is a directory\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pictures", "rows.csv"]


def test_explain_png_with_file_is_refused_not_ignored(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "rows.csv"
    data.write_text(ROWS)
    argv = ["--store", store.uri, "explain", "iris", "--file", str(data), "--png", "x.png"]
    assert run(argv) == EXIT_ERROR
    assert capsys.readouterr().err == (
        "aiaas explain: error: --png draws one explanation: give it with --inputs, not --file\n"
    )


def test_explain_out_with_inputs_is_refused_not_ignored(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--out why.jsonl` with `--inputs` printed the table, wrote no file and exited 0.
    out = tmp_path / "why.jsonl"
    argv = ["--store", store.uri, "explain", "iris", "--inputs", "[[1, 2, 3, 4]]"]
    assert run([*argv, "--out", str(out)]) == EXIT_ERROR
    assert capsys.readouterr().err == (
        "aiaas explain: error: --out writes --file's JSON lines: with --inputs, use --json > FILE\n"
    )
    assert not out.exists()


def test_explain_patch_on_a_model_of_columns_is_refused_not_ignored(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--patch 2` (parameters.patch) on a model that takes no image gave the same answer as
    # without it, and no word that the flag did nothing.
    data = tmp_path / "rows.csv"
    data.write_text(ROWS)
    error = (
        "aiaas explain: error: patch (--patch, parameters.patch) cuts an image into patches; "
        "iris:1 takes no image and is explained column by column: leave it out\n"
    )
    argv = ["--store", store.uri, "explain", "iris", "--patch", "2"]
    assert run([*argv, "--inputs", "[[1, 2, 3, 4]]"]) == EXIT_ERROR
    assert capsys.readouterr() == ("", error)
    assert run([*argv, "--file", str(data)]) == EXIT_ERROR  # once, not an error line a row
    assert capsys.readouterr() == ("", error)


def test_explain_inputs_keep_their_own_parameters(
    store: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # A predict body's "parameters" given to --inputs were dropped: {"samples": 10} explained
    # with the default 14, and a misspelled {"sample": 10} passed with no word.
    argv = ["--store", store.uri, "explain", "iris", "--json", "--inputs"]
    body = {"instances": [[1, 2, 3, 4]], "parameters": {"samples": 10}}
    assert run([*argv, json.dumps(body)]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"]["samples"] == 10
    assert run([*argv, json.dumps(body), "--samples", "8"]) == 0  # the flag wins
    assert json.loads(capsys.readouterr().out)["parameters"]["samples"] == 8
    body["parameters"] = {"sample": 6}
    assert run([*argv, json.dumps(body)]) == EXIT_ERROR
    assert "unknown explain parameter 'sample'" in capsys.readouterr().err


def test_batch_for_a_model_not_published_uploads_nothing(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The input was uploaded first, then the run failed: batch/irsi/input/ and a failed
    # summary were left in the store for a typo.
    data = tmp_path / "rows.csv"
    data.write_text(ROWS)
    assert run(["--store", store.uri, "batch", "irsi", str(data), "--no-progress"]) == EXIT_ERROR
    assert capsys.readouterr().err == "aiaas batch: error: model 'irsi' not found\n"
    assert list(store.list_keys("batch")) == []


def test_a_store_that_is_a_file_is_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `aiaas models --store notes.txt` said "no models in notes.txt" and exited 0.
    file = tmp_path / "notes.txt"
    file.write_text("x")
    assert run(["--store", str(file), "models"]) == EXIT_ERROR
    assert capsys.readouterr().err == (
        f"aiaas models: error: the store {file} is a file, not a directory: give --store (or "
        "AIAAS_STORE) the store's directory, or s3://bucket/prefix\n"
    )


def test_train_out_never_removes_a_folder_of_the_user_s_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()  # it trains
    # `--out` was emptied with shutil.rmtree whatever it held: `aiaas train job.yaml --out .`
    # removed the current folder, data set included. A file as --out: a NotADirectoryError.
    spec = str(REPO / "training" / "specs" / "iris-logistic.yaml")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text(ROWS)
    argv = ["--store", str(tmp_path / "store"), "train", spec, "--no-progress", "--out"]
    assert run([*argv, str(mine)]) == EXIT_ERROR
    assert capsys.readouterr().err == (
        f"aiaas train: error: --out {mine} holds files a run does not write (data.csv); give a "
        "new or empty folder (a run's folder is replaced, so it is never one that holds more)\n"
    )
    assert (mine / "data.csv").read_text() == ROWS
    assert run([*argv, str(mine / "data.csv")]) == EXIT_ERROR
    assert capsys.readouterr().err == (
        f"aiaas train: error: --out {mine / 'data.csv'} is a file; give a folder for the run's files\n"
    )


def test_a_nan_in_a_job_spec_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `learning_rate: .nan` passed `--check` (NaN > 0 is False, so "> 0" never fired).
    spec = (REPO / "training" / "specs" / "iris-logistic.yaml").read_text()
    job = tmp_path / "job.yaml"
    job.write_text(spec.replace("learning_rate: 0.05", "learning_rate: .nan"))
    assert run(["--store", str(tmp_path / "store"), "train", str(job), "--check"]) == EXIT_ERROR
    assert capsys.readouterr().err == (
        "aiaas train: error: spec field 'learning_rate' must be a finite number; got nan\n"
    )


@pytest.mark.parametrize("extra", [[], ["--out", "rows.csv"]])
def test_capture_export_without_a_model_asks_for_it(
    store: LocalStore, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    assert run(["--store", store.uri, "capture", "export", *extra]) == EXIT_ERROR
    # Was "model 'export' not found": the subcommand read as a model's name.
    assert "capture export MODEL: name the model" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["publish", "{folder}", "--name", "x"], "aiaas publish: error: {folder}"),
        (["batch", "iris", "{folder}"], "aiaas batch: error: {folder}"),
        (["explain", "iris", "--file", "{folder}"], "aiaas explain: error: {folder}"),
        (
            ["publish", "{model}", "--name", "x", "--data", "{folder}"],
            "aiaas publish: error: --data: {folder}",
        ),
    ],
)
def test_a_folder_where_a_file_goes_is_called_a_folder(
    store: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    said: str,
) -> None:
    # Was "no such file: ./model": people looked for a typo in a path that exists.
    folder = tmp_path / "model"
    folder.mkdir()
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    names = {"folder": str(folder), "model": str(model)}
    assert run(["--store", store.uri, *(a.format(**names) for a in argv)]) == EXIT_ERROR
    assert capsys.readouterr().err == said.format(**names) + " is a folder, not a file\n"
