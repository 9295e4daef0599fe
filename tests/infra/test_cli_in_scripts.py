"""The CLI as scripts and CI jobs run it, in processes of their own (CLI hunt):
- `aiaas prune` at a terminal asked its question on stdout: `--json > out.json` got the listing
  and the prompt as text, the person saw no question (it looked hung), and --json was dropped;
- started with stdout closed (`>&-`) a command did its work, then a traceback and exit 1 (a
  CI retry published a second version);
- output to a full device (`> /dev/full`): the change made, then a traceback;
- a store path through a file (`file/sub`) read as an empty store, exit 0."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.publishing import publish_three

ROOT = Path(__file__).resolve().parents[2]


def aiaas(root: Path, *argv: str, **popen: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AIAAS_STORE": str(root / "store"), "AIAAS_CACHE_DIR": str(root / "c")}
    command = [sys.executable, "-m", "infra.cli.main", *argv]
    return subprocess.Popen(command, cwd=ROOT, env=env, **popen)  # type: ignore[call-overload]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    publish_three(Registry(LocalStore(tmp_path / "store")), tmp_path)  # @production at 1
    onnx_factory.linear_classifier(tmp_path / "m.onnx")
    return tmp_path


def test_prune_asks_on_the_terminal_and_keeps_stdout_json(root: Path) -> None:
    leader, follower = pty.openpty()
    with (root / "out.json").open("wb") as out:
        process = aiaas(root, "prune", "m", "--keep", "1", "--json", stdin=follower,
                        stdout=out, stderr=subprocess.PIPE)  # fmt: skip
        os.write(leader, b"y\n")
        _, err = process.communicate(timeout=60)
    os.close(leader)
    os.close(follower)
    assert process.returncode == 0, err
    assert b"delete 1 version(s)" in err and b"[y/N]" in err
    doc = json.loads((root / "out.json").read_text())
    assert [d["version"] for d in doc["deleted"]] == ["2"]
    assert Registry(LocalStore(root / "store")).versions("m") == ["1", "3"]


def test_stdout_closed_does_the_work_and_exits_0(root: Path) -> None:
    process = aiaas(root, "publish", str(root / "m.onnx"), "--name", "m", stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, pass_fds=(), close_fds=True,
                    preexec_fn=lambda: os.close(1))  # fmt: skip
    _, err = process.communicate(timeout=60)
    assert (process.returncode, b"Traceback" in err) == (0, False), err
    assert Registry(LocalStore(root / "store")).versions("m") == ["1", "2", "3", "4"]


def test_a_full_device_is_one_line(root: Path) -> None:
    with Path("/dev/full").open("wb") as full:
        process = aiaas(root, "models", stdout=full, stderr=subprocess.PIPE)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err.decode() == (
        "aiaas models: error: cannot write its output (No space left on device); what it did "
        "is done\n"
    )


def test_a_store_path_through_a_file_is_refused(root: Path) -> None:
    (root / "afile").write_text("x")
    env = {**os.environ, "AIAAS_STORE": str(root / "afile" / "sub")}
    done = subprocess.run([sys.executable, "-m", "infra.cli.main", "models", "--json"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert f"({root / 'afile'} is a file)" in done.stderr


def test_names_a_stdout_cannot_encode_are_written_escaped(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A label 'é' shown on a stdout that is not UTF-8 (PYTHONIOENCODING=ascii, a cp1252
    console) was a UnicodeEncodeError traceback after part of the output, exit 1."""
    path = onnx_factory.linear_classifier(root / "u.onnx")
    registry = Registry(LocalStore(root / "store"))
    registry.publish(onnx_factory.manifest_for(path, "u", "1", labels=("x", "é", "温度")), path)
    monkeypatch.setenv("PYTHONIOENCODING", "ascii")  # the child's, through `aiaas`'s env
    process = aiaas(root, "show", "u", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (0, b""), err
    assert b"\\xe9" in out and b"\\u6e29\\u5ea6" in out  # é, 温度


@pytest.mark.parametrize(
    ("env", "argv", "code", "line"),
    [
        ({}, ("--store", "", "publish"), 2, "aiaas: error: argument --store: is empty"),
        ({}, ("publish", "--store", " "), 2, "aiaas publish: error: argument --store: is empty"),
        ({"AIAAS_STORE": ""}, ("publish",), 1, "aiaas publish: error: AIAAS_STORE is set but "
         "empty (an unset variable?): set it to a directory or s3://bucket/prefix, or unset it "
         "for the default .aiaas/store"),
        ({}, ("pull", "m", "--from", ""), 2, "aiaas pull: error: argument --from: is empty"),
    ],
)  # fmt: skip
def test_an_empty_store_is_refused_not_taken_for_the_default(
    tmp_path: Path, env: dict[str, str], argv: tuple[str, ...], code: int, line: str
) -> None:
    """`aiaas --store "$REGISTRY" publish ...` (or `AIAAS_STORE=$REGISTRY`) with REGISTRY unset
    in a CI job published into the job's own `.aiaas/store` and exited 0: the model never
    reached S3. An empty setting is an error naming it; unset still means the default."""
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    if argv[-1] == "publish" or argv[0] == "publish":
        argv = (*argv, str(model), "--name", "m")
    child = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run([sys.executable, "-m", "infra.cli.main", *argv], cwd=tmp_path,
                          env=child, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert (done.returncode, done.stdout) == (code, ""), done.stderr
    said = done.stderr.splitlines()[-1]
    assert said.startswith(line), said
    if code == 2:
        assert said.endswith(": give a directory or s3://bucket/prefix")
    assert not (tmp_path / ".aiaas").exists()
