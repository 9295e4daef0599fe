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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.runtime import publishing
from functions.runtime.cache import sha256_file
from functions.runtime.file_hashes import sha256_stream
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests import onnx_factory

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")
REPO = Path(__file__).resolve().parents[2]
VERSION = "ci-7"
# The twin: imports, says "ready", publishes on "go"; it says a word at its hold point and
# waits for a line (holds: a comma list): "taken" once it found the model.onnx written (the stopped one's, the same
# bytes), "replaced" once its card is written, "written" once its manifest is.
TWIN = """
import sys
from functions.runtime import publishing
import infra.cli.publish_commands, boto3
from infra.cli.main import main
hold = sys.argv[1].split(",")
def wait(word):
    print(word, flush=True)
    sys.stdin.readline()
commit, replace, keep = publishing._commit, publishing._replace, publishing.keep_taken
def commit_then_wait(*args, **kwargs):
    commit(*args, **kwargs)
    if "taken" in hold and args[2].endswith("/model.onnx"):
        wait("taken")
def replace_then_wait(*args, **kwargs):
    result = replace(*args, **kwargs)
    if "replaced" in hold and args[2].endswith("/card.md"):
        wait("replaced")
    return result
def wait_then_keep(*args, **kwargs):
    if "written" in hold:
        wait("written")
    keep(*args, **kwargs)
publishing._commit, publishing._replace = commit_then_wait, replace_then_wait
publishing.keep_taken = wait_then_keep
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
    def __init__(self, argv: list[str], hold: str = "") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TWIN, hold or "none", *argv, "--json"],
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
    twin = Twin(argv, hold="taken")
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
    twin = Twin(argv)
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
    twin = Twin(argv, hold="taken")
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


CARD = f"models/m/versions/{VERSION}/card/card.md"


def listed_bytes_stored(store: ObjectStore) -> list[str]:
    """The listed files of the committed version that are missing or not its bytes."""
    manifest = Registry(store).manifest("m", VERSION)
    prefix, wrong = f"models/m/versions/{VERSION}", []
    for rel, sha in [(f.path, f.sha256) for f in manifest.files] + [
        (manifest.file.path, manifest.file.sha256)
    ]:
        if not store.exists(f"{prefix}/{rel}"):
            wrong.append(f"missing {rel}")
            continue
        with store.open_read(f"{prefix}/{rel}") as stored:
            if sha256_stream(stored) != sha:
                wrong.append(f"sha {rel}")
    return wrong


def stop_after_card(monkeypatch: pytest.MonkeyPatch, before: Callable[[], None]) -> None:
    """This process is stopped by a SIGTERM once its card is written, `before` run first."""
    replace = publishing._replace

    def replace_then_stop(*args: Any) -> Any:
        result = replace(*args)
        if args[2].endswith("/card.md"):
            before()
            os.kill(os.getpid(), signal.SIGTERM)  # taken at the next bytecode: here
        return result

    monkeypatch.setattr(publishing, "_replace", replace_then_stop)


def test_a_twin_that_replaced_the_stopped_ones_card_keeps_its_card(
    store: ObjectStore,
    twins: tuple[list[str], list[Twin]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The twin started after this one wrote its card, so it replaced that card (`_replace`),
    then this one was stopped and its cleanup deleted the card, the twin's by then: the twin
    published (exit 0) without its card/card.md, and pull refused the version (rev15 1)."""
    argv, started = twins
    twin = Twin(argv, hold="replaced")
    started.append(twin)

    def twin_replaces_it() -> None:
        twin.go()
        twin.expect("replaced")  # its model taken, our card replaced by its own

    stop_after_card(monkeypatch, twin_replaces_it)
    assert main(argv) == 128 + signal.SIGTERM
    # The twin's write is not ours to remove: kept on the directory store (a write is a new
    # inode); on S3 the same bytes have the same ETag, so the conditional delete took it, and
    # the twin writes it again once its manifest is written
    assert store.exists(CARD) or isinstance(store, S3Store)
    twin.go()
    assert_whole(store, twin.end(), Path(argv[3]))
    assert listed_bytes_stored(store) == []  # was ["missing card/card.md"]


def test_a_stopped_twin_with_another_card_puts_back_the_winners_card(
    store: ObjectStore,
    twins: tuple[list[str], list[Twin]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The winner wrote its card; this one (the same model, another description) replaced that
    card, the winner's manifest landed, and this one was stopped before its own manifest: its
    card stayed in the winner's version, a sha256 pull refuses (rev15 4). It puts back the
    winner's bytes it replaced, over its own write only."""
    argv, started = twins
    twin = Twin(argv, hold="replaced,written")
    started.append(twin)
    twin.go()
    twin.expect("replaced")  # the winner's model and card written, no manifest yet

    def winner_publishes() -> None:
        twin.go()
        twin.expect("written")  # its manifest is there; it waits before its own checks

    stop_after_card(monkeypatch, winner_publishes)
    assert main([*argv, "--description", "another run"]) == 128 + signal.SIGTERM
    assert listed_bytes_stored(store) == []  # was ["sha card/card.md"]
    twin.go()
    assert_whole(store, twin.end(), Path(argv[3]))


def test_the_winner_puts_back_its_card_a_stopped_twin_replaced(
    store: ObjectStore,
    twins: tuple[list[str], list[Twin]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As above, but this one was stopped before the winner's manifest landed, so it saw no
    version to put the card back for: the winner, once its manifest is written, finds its card
    not its own write and writes it again from its own file."""
    argv, started = twins
    twin = Twin(argv, hold="replaced")
    started.append(twin)
    twin.go()
    twin.expect("replaced")
    stop_after_card(monkeypatch, lambda: None)
    assert main([*argv, "--description", "another run"]) == 128 + signal.SIGTERM
    twin.go()
    assert_whole(store, twin.end(), Path(argv[3]))
    assert listed_bytes_stored(store) == []  # was ["sha card/card.md"]
