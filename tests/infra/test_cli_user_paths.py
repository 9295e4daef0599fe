"""The user's own paths that cannot be read as a file: a name too long, a file or folder it may
not read, a pipe or a device. Each is one line naming the path and what is wrong (exit 1; `-v`
adds the traceback): they were Python tracebacks, "no such file" for a path that exists, "a
folder" for a pipe, and a batch's unreadable input blamed on the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import EXIT_ERROR, run
from tests import onnx_factory

REPO = Path(__file__).resolve().parents[2]
FEATURES = "f0,f1,f2,f3"
ROWS = FEATURES + "\n5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n"
LONG = "b" * 300  # over NAME_MAX (255): stat says "File name too long"
SPEC = (REPO / "training" / "specs" / "iris-logistic.yaml").read_text()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    workdir = tmp_path_factory.mktemp("user-paths")
    store = LocalStore(workdir / "store")
    model = onnx_factory.linear_classifier(workdir / "iris.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "iris", "--features", FEATURES]
    assert run([*argv, "--labels", "a,b,c", "--no-progress"]) == 0
    (workdir / "train.csv").write_text(ROWS)  # explain needs a background
    assert run(["--store", store.uri, "baseline", "iris:1", str(workdir / "train.csv")]) == 0
    return store


def commands(model: Path, path: Path) -> list[tuple[list[str], str]]:
    """Each command that reads a user's file, given `path` for it: its argv, and what its error
    line says before the path's own words."""
    return [
        (["publish", str(path), "--name", "x"], ""),
        (["publish", str(model), "--name", "x", "--data", str(path)], "--data: "),
        (["publish", str(model), "--name", "x", "--tokenizer", str(path)], "--tokenizer: "),
        (["batch", "iris", str(path)], ""),
        (["compare", "iris", "1", "1", "--data", str(path), "--no-progress"], "--data: "),
        (["baseline", "iris", str(path)], ""),
        (["explain", "iris", "--file", str(path), "--no-progress"], ""),
    ]


def test_a_name_too_long_is_one_line_naming_it(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each was an OSError traceback: Path.is_file() raises ENAMETOOLONG in Python 3.11.
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    path = tmp_path / f"{LONG}.csv"
    for argv, flag in commands(model, path):
        assert run(["--store", store.uri, *argv]) == EXIT_ERROR, argv
        err = capsys.readouterr().err
        assert err == f"aiaas {argv[0]}: error: {flag}cannot read {path}: File name too long\n"
    spec = tmp_path / f"{LONG}.yaml"  # train's spec: an argparse type's traceback
    assert run(["--store", store.uri, "train", str(spec), "--check"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == f"aiaas train: error: cannot read spec {spec}: File name too long\n"


@pytest.mark.parametrize("kind", ["pipe", "device"])
def test_a_pipe_or_a_device_is_said_to_be_one(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    # `publish <(...)` and `/dev/null` were "no such file", compare's --data "a folder".
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    path = tmp_path / "rows.csv"
    if kind == "pipe":
        os.mkfifo(path)  # what bash's <(...) gives (/dev/fd/63); nothing reads it here
        said = f"{path} is a pipe, not a file on disk: save what it gives to a file and give that"
    else:
        path = Path(os.devnull)
        said = f"{path} is a device, not a file on disk: give a file"
    for argv, flag in commands(model, path):
        assert run(["--store", store.uri, *argv]) == EXIT_ERROR, argv
        assert capsys.readouterr().err == f"aiaas {argv[0]}: error: {flag}{said}\n"


def test_compare_data_through_a_link_reads_the_file_it_names(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `rows.csv -> real/r.csv` was "no object 'rows.csv' in store .../real": the link's name
    # looked up in the target's folder, which it called a store.
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "r.csv").write_text(ROWS)
    (tmp_path / "rows.csv").symlink_to(tmp_path / "real" / "r.csv")
    argv = ["--store", store.uri, "compare", "iris", "1", "1", "--data", str(tmp_path / "rows.csv")]
    assert run([*argv, "--json", "--no-progress"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["rows"]["compared"] == 2


# Root reads every file (CAP_DAC_OVERRIDE): the commands run in a child without those
# capabilities, as the user they stand for (still uid 0, so pytest's 0700 tmp_path is theirs).
NO_DAC = (
    ["/usr/bin/setpriv", "--bounding-set=-dac_override,-dac_read_search",
     "--inh-caps=-dac_override,-dac_read_search"]
    if os.geteuid() == 0 else []
)  # fmt: skip
DRIVER = """
import contextlib, io, json, sys, traceback
from infra.cli.main import main
said = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except BaseException:
            traceback.print_exc()
            code = None
    said.append([code, err.getvalue()])
print(json.dumps(said))
"""


def without_read_permission(argvs: list[list[str]]) -> list[tuple[int | None, str]]:
    """Each argv's exit code and stderr, run through main() by a user who may not read 0o000
    files and folders."""
    if os.geteuid() == 0 and not Path(NO_DAC[0]).exists():
        pytest.skip("dropping root's read-anything capability needs setpriv")
    done = subprocess.run(
        [*NO_DAC, sys.executable, "-c", DRIVER, json.dumps(argvs)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [(code, err) for code, err in json.loads(done.stdout.splitlines()[-1])]


def test_a_file_or_folder_it_may_not_read_is_one_line_naming_the_users_file(
    store: LocalStore, tmp_path: Path
) -> None:
    # publish, baseline, compare and the rest: PermissionError tracebacks; batch: "cannot use
    # 'batch/iris/input/unread.csv' under .../store", compare: "cannot use 'unread.csv' under
    # /home/me": the store blamed for the user's file, their folder called a store.
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    locked = tmp_path / "locked"
    locked.mkdir()
    unread, inside = tmp_path / "unread.csv", locked / "rows.csv"
    for path in (unread, inside):
        path.write_text(ROWS)
    unread.chmod(0)
    spec = tmp_path / "job.yaml"  # a training set it may not read: said by main()'s net
    spec.write_text(SPEC.replace("bundled:iris.csv", str(inside)))
    locked.chmod(0)
    cases = [
        (argv, f"aiaas {argv[0]}: error: {flag}cannot read {path}: Permission denied\n")
        for path in (unread, inside)
        for argv, flag in commands(model, path)
    ]
    cases.append(
        (["train", str(spec), "--check"], f"aiaas train: error: {inside}: Permission denied\n")
    )
    # A model's external data file: onnxruntime's "SystemError : 13", said as "not an ONNX model".
    weights = onnx_factory.external_add(tmp_path / "ext.onnx", "w.bin", 4).with_name("w.bin")
    np.zeros(4, np.float32).tofile(weights)
    weights.chmod(0)
    cases.append(
        (
            ["publish", str(tmp_path / "ext.onnx"), "--name", "ext"],
            f"aiaas publish: error: {tmp_path / 'ext.onnx'} keeps weights in external data file "
            f"'w.bin': cannot read {weights}: Permission denied\n",
        )
    )
    try:
        said = without_read_permission([["--store", store.uri, *argv] for argv, _ in cases])
    finally:
        locked.chmod(0o755)
    for (argv, line), (code, err) in zip(cases, said, strict=True):
        assert (code, err) == (EXIT_ERROR, line), argv


def test_verbose_keeps_the_traceback(store: LocalStore, tmp_path: Path) -> None:
    unread, rows = tmp_path / "unread.onnx", tmp_path / "unread.csv"
    onnx_factory.linear_classifier(unread).chmod(0)
    rows.write_text(ROWS)
    rows.chmod(0)
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC.replace("bundled:iris.csv", str(rows)))
    said = without_read_permission(
        [
            ["-v", "--store", store.uri, "publish", str(unread), "--name", "x"],
            ["-v", "--store", store.uri, "train", str(spec), "--check"],
        ]
    )
    for (code, err), line in zip(
        said,
        [
            f"aiaas publish: error: cannot read {unread}: Permission denied",
            f"aiaas train: error: {rows}: Permission denied",
        ],
        strict=True,
    ):
        assert code == EXIT_ERROR
        assert err.startswith("Traceback") and err.splitlines()[-1] == line, err


def test_a_store_upload_of_an_unreadable_file_is_the_files_error(tmp_path: Path) -> None:
    # The source was opened inside the store's write, whose OS-error mapping made its
    # Permission denied the store's: "cannot use 'in/rows.csv' under STORE".
    unread = tmp_path / "unread.csv"
    unread.write_text(ROWS)
    unread.chmod(0)
    if os.geteuid() == 0 and not Path(NO_DAC[0]).exists():
        pytest.skip("dropping root's read-anything capability needs setpriv")
    code = (
        "import sys; from functions.runtime.store import LocalStore\n"
        "try:\n    LocalStore(sys.argv[1]).upload_file(sys.argv[2], 'in/rows.csv')\n"
        "except Exception as exc:\n    print(type(exc).__name__, getattr(exc, 'filename', exc))"
    )
    done = subprocess.run(
        [*NO_DAC, sys.executable, "-c", code, str(tmp_path / "store"), str(unread)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
    )  # fmt: skip
    assert done.stdout == f"PermissionError {unread}\n", done.stderr
    assert not list((tmp_path / "store").rglob("*"))  # no temp file, no folder made for it
