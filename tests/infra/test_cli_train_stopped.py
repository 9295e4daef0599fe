"""SIGTERM (a CI runner's timeout or cancel) during `aiaas train --publish` ends it as Ctrl-C
does: exit 143, one line, and nothing of the version left, as `publish`, `pull` and `batch` do.

It took Python's default: the process died where it stood, no line in the job's log, and a
model file already completed in S3 stayed under the version with no manifest. The retried job
(the same `--version ci-$RUN_ID`) then trained again and was refused whenever its model's bytes
differed from the first run's ("being published with a different model.onnx ... publish
another version"), and prune kept the file 6 hours as "a publish running?".

The real CLI in a process of its own; moto's server (tests/moto_held_answer.py) holds its
answer to the model's multipart completion, the object already stored, until the signal is
taken: the moment is known for sure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.runtime.s3store import make_s3_client
from infra.cli.main import main
from tests.infra.test_cli_publish_stopped import signal_taken, stored
from tests.s3server import MotoServer

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")

REPO = Path(__file__).resolve().parents[2]
# An MLP of ~4.9 M weights: a 19.5 MB model, over the 16 MiB at which it goes as a multipart
# upload (whose completion the server holds); one epoch on the bundled digits, a few seconds.
SPEC = """\
name: wide
task: classification
dataset:
  path: bundled:digits.npz
recipe:
  name: mlp
  params: {hidden: [2304, 2048]}
epochs: 1
batch_size: 256
seed: 0
# Neither the card's importance (~20 s a run) nor dynamo's export (its import and trace, seconds
# in each fresh process) is what these test: the stop mid-publish is.
export: {importance_seconds: 0, exporter: torchscript}
"""


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MotoServer, Path]]:
    folder = tmp_path_factory.mktemp("hold")
    server = MotoServer(module="tests.moto_held_answer", env={"MOTO_HOLD_DIR": str(folder)})
    server.start(folder.parent / "moto-held.log")
    yield server, folder
    server.stop()


def test_sigterm_while_train_publishes_leaves_nothing_and_the_retry_publishes(
    held: tuple[MotoServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, folder = held
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    bucket = f"train-stopped-{os.getpid()}-{time.monotonic_ns()}"
    make_s3_client().create_bucket(Bucket=bucket)
    spec = tmp_path / "wide.yaml"
    spec.write_text(SPEC)
    uri = f"s3://{bucket}/reg"
    argv = ["--store", uri, "train", str(spec), "--publish", "--version", "ci-7", "--no-progress"]
    argv += ["--out", str(tmp_path / "runs")]
    (folder / "release").unlink(missing_ok=True)
    (folder / "armed").touch()
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli.main", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        start_new_session=True,  # as a runner's job: SIGTERM from outside, no terminal
    )
    try:
        deadline = time.monotonic() + 240
        while not (folder / "held").exists():  # the model completed in S3, its answer held
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no completion within 240 s"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        while not signal_taken(process.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        (folder / "release").touch()
        _, err = process.communicate(timeout=90)
    finally:
        (folder / "armed").unlink(missing_ok=True)
        (folder / "release").touch()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (process.returncode, err) == (143, "aiaas train: interrupted (stopped by SIGTERM)\n")
    assert stored(bucket, "reg/") == []  # not versions/ci-7/model.onnx (19.5 MB) unlisted
    # The retried job: its check (`aiaas show`) finds no version, so it trains and publishes.
    assert main(["--store", uri, "show", "wide:ci-7"]) == 1
    (folder / "held").unlink(missing_ok=True)
    assert main(argv) == 0
    assert "reg/models/wide/versions/ci-7/manifest.json" in stored(bucket, "reg/")
