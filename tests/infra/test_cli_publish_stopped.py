"""Ctrl-C during `aiaas publish` and `aiaas pull` leaves nothing of the version, however late it
lands: while S3 completes the model's multipart upload (the object stored, its answer not yet
read), and on a directory store, where the version's folder went unremoved and took a number.

Each run is the real CLI in a process of its own, sent SIGINT at a moment known for sure:
moto's server (tests/moto_held_answer.py) holds its answer to the completion until the test
has sent the signal and the process has taken it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.runtime.s3store import make_s3_client
from infra.cli.main import EXIT_INTERRUPTED, main
from tests import onnx_factory
from tests.s3server import MotoServer

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")

REPO = Path(__file__).resolve().parents[2]
FLOATS = 5_000_000  # 20 MB: over the 16 MB at which a model goes as a multipart upload


def default_sigint() -> None:
    """In the child before exec: Ctrl-C as in a terminal, even from a background job."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MotoServer, Path]]:
    """moto's server holding the answer to the completion armed in its folder."""
    folder = tmp_path_factory.mktemp("hold")
    server = MotoServer(module="tests.moto_held_answer", env={"MOTO_HOLD_DIR": str(folder)})
    server.start(folder.parent / "moto-held.log")
    yield server, folder
    server.stop()


@pytest.fixture
def bucket(held: tuple[MotoServer, Path], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", held[0].endpoint)  # this test's and its children's
    name = f"stopped-{os.getpid()}-{time.monotonic_ns()}"
    make_s3_client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_factory.big_add(tmp_path_factory.mktemp("model") / "big.onnx", FLOATS)


def signal_taken(pid: int) -> bool:
    """Whether SIGINT sent to `pid` is no longer pending: delivered to its handler."""
    status = Path(f"/proc/{pid}/status").read_text()
    pending = [int(line.split()[1], 16) for line in status.splitlines() if "Pnd:" in line]
    return not any(mask & (1 << (signal.SIGINT - 1)) for mask in pending)


def stopped_in_completion(folder: Path, argv: list[str]) -> tuple[int, str]:
    """Run `aiaas *argv`, send it SIGINT while moto holds the answer to its completion (the
    object already stored), then let the answer go: its exit code and stderr."""
    for name in ("held", "release"):
        (folder / name).unlink(missing_ok=True)
    (folder / "armed").touch()
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli.main", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while not (folder / "held").exists():  # inside the completion call
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no completion within 120 s"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        while not signal_taken(process.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # its handler runs at once, in the thread waiting for the answer
        (folder / "release").touch()
        _, err = process.communicate(timeout=90)
    finally:
        (folder / "armed").unlink(missing_ok=True)
        (folder / "release").touch()  # a held answer never waits out its 60 s
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, err


def stored(bucket: str, prefix: str) -> list[str]:
    client = make_s3_client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [k for k in keys if k.startswith(prefix)] + [f"upload {u['Key']}" for u in uploads]


def test_ctrl_c_while_s3_completes_the_model_leaves_nothing(
    held: tuple[MotoServer, Path], bucket: str, model: Path
) -> None:
    # The completion landed and its answer was never read: versions/1/model.onnx (20 MB here,
    # gigabytes for a big model) stayed with no manifest, its number used up, and prune kept it
    # 6 hours as "a publish running?".
    uri = f"s3://{bucket}/reg"
    argv = ["--store", uri, "publish", str(model), "--name", "big", "--no-progress"]
    code, err = stopped_in_completion(held[1], argv)
    assert (code, err) == (EXIT_INTERRUPTED, "aiaas publish: interrupted\n")
    assert stored(bucket, "reg/") == []
    assert main(["--store", uri, "publish", str(model), "--name", "big", "--no-progress"]) == 0
    assert "reg/models/big/versions/1/manifest.json" in stored(bucket, "reg/")  # not 2


def test_ctrl_c_while_s3_completes_a_pull_leaves_nothing_at_the_edge(
    held: tuple[MotoServer, Path], bucket: str, model: Path
) -> None:
    source = f"s3://{bucket}/src"
    assert main(["--store", source, "publish", str(model), "--name", "big", "--no-progress"]) == 0
    before = stored(bucket, "src/")
    argv = ["--store", f"s3://{bucket}/edge", "pull", "big:1", "--from", source, "--no-progress"]
    code, err = stopped_in_completion(held[1], argv)
    assert (code, err) == (EXIT_INTERRUPTED, "aiaas pull: interrupted\n")
    assert stored(bucket, "edge/") == []
    assert stored(bucket, "src/") == before


def copying(models: Path) -> bool:
    """A temp file with bytes in it under `models`: a model is being copied into the store."""
    for path in models.rglob(".tmp-*"):
        with contextlib.suppress(FileNotFoundError):  # committed or removed meanwhile
            if path.stat().st_size:
                return True
    return False


def test_ctrl_c_during_a_publish_to_a_folder_leaves_no_folder_nor_number_used(
    tmp_path: Path, model: Path
) -> None:
    # The files went, the version's folder stayed: empty, never removed, and counted by the
    # next publish, which took version 2 (each Ctrl-C burnt a number).
    store = tmp_path / "store"
    argv = ["--store", str(store), "publish", str(model), "--name", "big", "--no-progress"]
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli.main", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 60
    while not copying(store / "models"):
        assert process.poll() is None, "it ended before it was interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (EXIT_INTERRUPTED, "aiaas publish: interrupted\n")
    assert not (store / "models" / "big").exists(), list((store / "models").rglob("*"))
    assert main(argv) == 0
    assert [p.name for p in (store / "models" / "big" / "versions").iterdir() if p.is_dir()] == [
        "1"
    ]  # not 2
