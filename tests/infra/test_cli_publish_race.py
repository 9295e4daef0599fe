"""`aiaas publish` without --version while another publisher takes the same number.

Both read the next number from the store and claim it; the store lets one win (conditional
writes). The loser used to exit 1 with "m:1 is already published; versions are immutable", a
version its user never asked for. It now takes the next free number, as a later run would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from functions.runtime.cache import sha256_file
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import ObjectStore
from infra.cli.main import main
from tests import onnx_factory

REPO = Path(__file__).resolve().parents[2]


def test_a_version_taken_after_the_number_was_read_gets_the_next(
    capsys: pytest.CaptureFixture[str],
    store: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mine = onnx_factory.linear_classifier(tmp_path / "mine.onnx", seed=1)
    theirs = onnx_factory.linear_classifier(tmp_path / "theirs.onnx", seed=2)
    registry = Registry(store)
    read_number = Registry.next_version

    # The race's window, made certain: another publisher completes the very number this one
    # read, right after it was read (a real publish of other bytes on the same store).
    def read_then_lose(self: Registry, name: str) -> str:
        number = read_number(self, name)
        if name == "m" and not registry.versions("m", missing_ok=True):
            manifest = onnx_factory.manifest_for(theirs, "m", number)
            registry.publish(manifest, theirs)
        return number

    monkeypatch.setattr(Registry, "next_version", read_then_lose)
    code = main(["--store", store.uri, "publish", str(mine), "--name", "m", "--alias", "prod"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.startswith("published m:2 ") and "m@prod -> 2" in out
    assert registry.versions("m") == ["1", "2"]
    assert registry.manifest("m", "2").file.sha256 == sha256_file(mine)
    assert registry.manifest("m", "1").file.sha256 == sha256_file(theirs)


def test_an_explicit_version_taken_meanwhile_is_still_an_error(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    other = onnx_factory.linear_classifier(tmp_path / "other.onnx", seed=2)
    assert main(["--store", store.uri, "publish", str(path), "--name", "m", "--version", "7"]) == 0
    code = main(["--store", store.uri, "publish", str(other), "--name", "m", "--version", "7"])
    assert code == 1  # asked for 7 by name: no other number is what was asked (the same file
    # again is done already: test_cli_registry.py)
    assert "m:7 is already published" in capsys.readouterr().err


def test_four_processes_publishing_at_once_on_s3_all_succeed(
    s3_store: S3Store, tmp_path: Path
) -> None:
    files = [onnx_factory.linear_classifier(tmp_path / f"m{i}.onnx", seed=i) for i in range(4)]
    # Every process imports, says so, and waits for one go on stdin: they publish together,
    # once all are ready (a fixed start time cost 8 s of every run, and was a guess under load).
    script = (
        "import sys\n"
        "import infra.cli.publish_commands, functions.runtime.introspect, boto3\n"
        "from infra.cli.main import main\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def publish(path: Path) -> subprocess.Popen[str]:
        argv = ["--store", s3_store.uri, "publish", str(path), "--name", "race"]
        return subprocess.Popen(
            [sys.executable, "-c", script, *argv],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    procs = [publish(path) for path in files]
    assert [p.stdout.readline() for p in procs if p.stdout] == ["ready\n"] * 4
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0] * 4, results
    registry = Registry(s3_store)
    assert registry.versions("race") == ["1", "2", "3", "4"]
    stored = sorted(registry.manifest("race", v).file.sha256 for v in ["1", "2", "3", "4"])
    assert stored == sorted(sha256_file(path) for path in files)
