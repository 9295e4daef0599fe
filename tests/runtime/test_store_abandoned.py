"""Temp files a killed writer left go (in a directory store at the next publish of the model,
in the model cache at the next download); a live writer's never do, however long it writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from functions.runtime.abandoned import ABANDONED_AFTER_S
from functions.runtime.cache import ArtifactCache, sha256_file
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.onnx_factory import linear_classifier
from tests.publishing import publish_linear

REPO = Path(__file__).resolve().parents[2]
KEY = "models/m/versions/1/model.onnx"

# A writer in its own process: stages a file into the store (a temp file beside KEY), says so,
# then dies by SIGKILL ("kill") or waits for a line on stdin and commits ("live").
WRITER = """
import os, signal, sys
from pathlib import Path
from functions.runtime.cache import ArtifactCache, sha256_file
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
staged = LocalStore(sys.argv[1]).stage_file(Path(sys.argv[2]), sys.argv[3])
print("staged", flush=True)
if sys.argv[4] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.readline()
staged.commit()
print("committed", flush=True)
"""


def writer(store: Path, src: Path, key: str, end: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store), str(src), key, end],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None and process.stdout.readline() == "staged\n"
    return process


def temp_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob(".tmp-*") if not p.name.startswith(".tmp-lock-")}


def age(paths: set[Path]) -> None:
    past = time.time() - ABANDONED_AFTER_S - 5  # as if written more than the wait ago
    for path in paths:
        os.utime(path, (past, past))


def test_killed_writers_temp_files_go_and_live_ones_stay(tmp_path: Path) -> None:
    store = tmp_path / "store"
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(1 << 20))
    killed = writer(store, src, KEY, "kill")
    assert killed.wait(30) == -signal.SIGKILL
    left = temp_files(store)
    assert len(left) == 1, left  # what a publish killed midway leaves
    live = writer(store, src, "models/m/versions/2/model.onnx", "live")
    held = temp_files(store) - left
    assert len(held) == 1
    age(left | held)
    (store / "models/m/versions/3").mkdir(parents=True)
    fresh_tmp = store / "models/m/versions/3/.tmp-just-made"
    fresh_tmp.write_bytes(b"x")  # a writer between mkstemp and its lock: too young to take

    assert LocalStore(str(store)).remove_abandoned("models/m") == 1
    assert temp_files(store) == held | {fresh_tmp}
    assert live.stdin is not None and live.stdout is not None
    live.stdin.write("\n")
    live.stdin.flush()
    assert live.stdout.readline() == "committed\n" and live.wait(30) == 0
    assert (store / "models/m/versions/2/model.onnx").read_bytes() == src.read_bytes()


def test_the_next_publish_of_the_model_removes_them(tmp_path: Path) -> None:
    store = tmp_path / "store"
    model = linear_classifier(tmp_path / "model.onnx")
    killed = writer(store, model, KEY, "kill")
    assert killed.wait(30) == -signal.SIGKILL
    age(temp_files(store))
    other = writer(store, model, "models/other/versions/1/model.onnx", "kill")
    assert other.wait(30) == -signal.SIGKILL
    age(temp_files(store / "models/other"))

    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.cli.main",
            "--store",
            str(store),
            "publish",
            str(model),
            "--name",
            "m",
        ],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        timeout=120,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    assert temp_files(store / "models/m") == set()
    assert len(temp_files(store / "models/other")) == 1  # another model's: its own publish's
    assert (store / "models/m/versions").is_dir()


# A download in its own process: holds a cache temp entry as the cache does, says so, waits.
HOLDER = """
import sys, tempfile
from pathlib import Path
from functions.runtime.abandoned import hold
tmp = Path(tempfile.mkdtemp(dir=sys.argv[1], prefix=".part-live-"))
held = hold(tmp)
print(tmp, flush=True)
sys.stdin.readline()
"""


def test_a_cache_download_sweeps_what_stopped_downloads_left(tmp_path: Path) -> None:
    registry = Registry(LocalStore(str(tmp_path / "store")))
    manifest = publish_linear(registry, tmp_path, "m", "1")
    cache = tmp_path / "cache"
    cache.mkdir()
    dead_file = cache / ".part-abc123"
    dead_file.write_bytes(b"half a model")
    dead_folder = cache / ".part-0123456789ab-xyz"
    (dead_folder / "model.onnx.data").parent.mkdir()
    (dead_folder / "model.onnx.data").write_bytes(b"half the weights")
    live = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(cache)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    assert live.stdout is not None and live.stdin is not None
    live_folder = Path(live.stdout.readline().strip())
    age({dead_file, dead_folder, live_folder})

    fetched = ArtifactCache(registry.store, cache).fetch(manifest)
    assert sha256_file(fetched) == manifest.file.sha256
    assert sorted(p.name for p in cache.glob(".part-*")) == [live_folder.name]
    live.stdin.write("\n")
    live.stdin.flush()
    assert live.wait(30) == 0


def test_settled_0_takes_a_new_temp_file_of_a_dead_writer_and_never_a_live_ones(
    tmp_path: Path,
) -> None:
    """What `aiaas batch --shards` calls once it has waited for its stopped workers: a temp
    part one left a moment ago goes at once (the wait was for writers not yet holding theirs)."""
    store, src = tmp_path / "store", linear_classifier(tmp_path / "m.onnx")
    writer(store, src, KEY, "kill").wait(10)
    live = writer(store, src, "models/m/versions/2/model.onnx", "live")
    dead, held = temp_files(store / "models" / "m" / "versions" / "1"), temp_files(store)
    assert LocalStore(store).remove_abandoned("models/m") == 0  # new: the default waits
    assert LocalStore(store).remove_abandoned("models/m", settled_s=0) == len(dead) == 1
    assert temp_files(store) == held - dead  # the live writer's stays
    assert live.stdin is not None
    live.stdin.write("\n")
    live.stdin.close()
    assert live.stdout is not None and live.stdout.readline() == "committed\n"
    assert live.wait(10) == 0


def test_the_next_publish_removes_version_folders_left_empty_not_a_live_writers(
    tmp_path: Path,
) -> None:
    # Each Ctrl-C'd publish (before this was fixed) left its version's folder empty, which
    # nothing removed and which the next publish counted, taking the number after it.
    store = tmp_path / "store"
    for folder in ("1", "2/card"):
        (store / "models/m/versions" / folder).mkdir(parents=True)
    src = linear_classifier(tmp_path / "model.onnx")
    live = writer(store, src, "models/m/versions/3/model.onnx", "live")
    publish_linear(Registry(LocalStore(str(store))), tmp_path, "m", "4")
    folders = (p.name for p in (store / "models/m/versions").iterdir() if p.is_dir())
    assert sorted(folders) == ["3", "4"]
    assert live.stdin is not None and live.stdout is not None
    live.stdin.write("\n")
    live.stdin.flush()
    assert live.stdout.readline() == "committed\n" and live.wait(30) == 0
