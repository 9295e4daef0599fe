"""Two `aiaas publish --version V` of one file at once (a CI job and its retry), one stopped by
SIGTERM: the other's version keeps every file its manifest lists, on both stores.

The stopped one removed the model.onnx it had written, which the twin had found there with its
own bytes and listed: the twin exited 0, a retry said "already published", and serving
answered 503 "incomplete" (rev13 1). Its cleanup looked for a manifest once, before deleting,
and the twin's manifest could land after that look. Each window is held open here: the twin
is a real `aiaas publish` process that goes on when told, this process the real CLI, stopped
by a real SIGTERM right after its model.onnx became visible.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.runtime import publishing
from functions.runtime.cache import sha256_file
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests import onnx_factory

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")
REPO = Path(__file__).resolve().parents[2]
VERSION = "ci-7"
# The twin: imports, says "ready", publishes on "go"; with "hold", it says "taken" once it found
# the model.onnx written (the stopped one's, the same bytes) and waits for a line.
TWIN = """
import sys
from functions.runtime import publishing
import infra.cli.publish_commands, boto3
from infra.cli.main import main
hold = sys.argv[1] == "hold"
commit = publishing._commit
def commit_then_wait(*args, **kwargs):
    commit(*args, **kwargs)
    if hold and args[2].endswith("/model.onnx"):
        print("taken", flush=True)
        sys.stdin.readline()
publishing._commit = commit_then_wait
print("ready", flush=True)
sys.stdin.readline()
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(params=["directory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "s3":
        return S3Store(request.getfixturevalue("s3_bucket"), "registry")
    return LocalStore(tmp_path / "store")


class Twin:
    def __init__(self, argv: list[str], hold: bool) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TWIN, "hold" if hold else "free", *argv, "--json"],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.expect("ready")

    def expect(self, line: str) -> None:
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == f"{line}\n"

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def end(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


@pytest.fixture
def twins(store: ObjectStore, tmp_path: Path) -> Iterator[tuple[list[str], list[Twin]]]:
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "m"]
    started: list[Twin] = []
    yield [*argv, "--version", VERSION, "--no-progress"], started
    for twin in started:
        if twin.proc.poll() is None:
            twin.proc.kill()
            twin.proc.communicate()


def assert_whole(store: ObjectStore, twin: tuple[int, str, str], model: Path) -> None:
    code, out, err = twin
    assert code == 0, err
    assert '"already_published": false' in out
    manifest = Registry(store).manifest("m", VERSION)
    assert manifest.file.sha256 == sha256_file(model)
    prefix = f"models/m/versions/{VERSION}"
    listed = [manifest.file.path, *(f.path for f in manifest.files)]
    missing = [rel for rel in listed if not store.exists(f"{prefix}/{rel}")]
    assert missing == []  # was ["model.onnx"]


def test_a_twin_that_writes_its_manifest_after_the_stopped_one_removed_the_model(
    store: ObjectStore,
    twins: tuple[list[str], list[Twin]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The twin found the model written, then the stopped one removed it (no manifest yet),
    then the twin wrote its manifest: the twin puts the model back."""
    argv, started = twins
    twin = Twin(argv, hold=True)
    started.append(twin)
    commit = publishing._commit

    def commit_then_stop(*args: Any) -> None:
        commit(*args)
        if args[2].endswith("/model.onnx"):
            twin.go()
            twin.expect("taken")  # it found our model.onnx, and waits
            os.kill(os.getpid(), signal.SIGTERM)  # taken at the next bytecode: here

    monkeypatch.setattr(publishing, "_commit", commit_then_stop)
    assert main(argv) == 128 + signal.SIGTERM
    assert not store.exists(f"models/m/versions/{VERSION}/model.onnx")  # removed: no version
    twin.go()  # its card, its manifest
    assert_whole(store, twin.end(), Path(argv[3]))


def test_a_twin_manifest_landing_between_the_look_and_the_deletes(
    store: ObjectStore,
    twins: tuple[list[str], list[Twin]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stopped one looked for a manifest (none), the twin then published in full, and the
    stopped one removed the model: it looks again after its deletes and puts the model back."""
    argv, started = twins
    twin = Twin(argv, hold=False)
    started.append(twin)
    commit, kind = publishing._commit, type(store)
    exists = kind.exists
    stopping: list[str] = []
    ended: list[tuple[int, str, str]] = []

    def commit_then_stop(*args: Any) -> None:
        commit(*args)
        if args[2].endswith("/model.onnx"):
            stopping.append("stopped")
            os.kill(os.getpid(), signal.SIGTERM)

    def look_then_twin(self: Any, key: str) -> bool:
        there: bool = exists(self, key)
        if stopping and not ended and key.endswith("/manifest.json"):
            twin.go()  # the whole twin publish, between the cleanup's look and its deletes
            ended.append(twin.end())
        return there

    monkeypatch.setattr(publishing, "_commit", commit_then_stop)
    monkeypatch.setattr(kind, "exists", look_then_twin)
    assert main(argv) == 128 + signal.SIGTERM
    assert len(ended) == 1
    assert_whole(store, ended[0], Path(argv[3]))


def test_a_model_rewritten_in_place_is_not_put_back(
    store: ObjectStore,
    twins: tuple[list[str], list[Twin]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the first test, but the user's model.onnx is rewritten in place (an export into the
    same workspace) before the twin puts the model back: its staged copy is a hard link to it,
    and the put-back uploaded those bytes under the manifest's sha256 (rev15 2). Only bytes
    that hash to the listed sha256 go up; else the file stays out, with a warning."""
    argv, started = twins
    twin = Twin(argv, hold=True)
    started.append(twin)
    commit = publishing._commit

    def commit_then_stop(*args: Any) -> None:
        commit(*args)
        if args[2].endswith("/model.onnx"):
            twin.go()
            twin.expect("taken")
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(publishing, "_commit", commit_then_stop)
    assert main(argv) == 128 + signal.SIGTERM
    model = Path(argv[3])
    listed = sha256_file(model)
    with model.open("r+b") as rewritten:  # in place: the same inode, so every hard link
        rewritten.seek(0, os.SEEK_END)
        rewritten.write(b"\0junk")
    twin.go()
    code, _, err = twin.end()
    key = f"models/m/versions/{VERSION}/model.onnx"
    assert Registry(store).manifest("m", VERSION).file.sha256 == listed
    assert not store.exists(key)  # was there, with the rewritten bytes under `listed`
    assert f"{key} is missing and not put back" in err
    assert code == 0
