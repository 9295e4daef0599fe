"""The training job's own entrypoint (`python -m training`, what AWS Batch runs) stopped by
SIGTERM while it publishes: exit 143, one line, nothing of the version left, and the retry
publishes it.

Batch stops a job (terminate-job, its timeout, a Spot reclaim) with SIGTERM, then SIGKILL 30 s
later. The entrypoint took Python's default: a process dies where it stands (and as the
container's process 1, the kernel drops the signal: killed 30 s later); either way the model
it had completed in S3 stayed under the version with no manifest, refusing a retry whose bytes
differ. The job's command (infra.aws_batch.container_command) in a process of its own; moto's
server holds its answer to the model's multipart completion until the signal is taken.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from functions.runtime.s3store import make_s3_client
from infra.aws_batch import SPEC_ENV, container_command
from tests.infra.test_cli_publish_stopped import signal_taken, stored
from tests.infra.test_cli_train_stopped import SPEC, held  # noqa: F401 - the fixture
from tests.s3server import MotoServer

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")
REPO = Path(__file__).resolve().parents[2]


def test_sigterm_while_the_job_publishes_leaves_nothing_and_its_retry_publishes(
    held: tuple[MotoServer, Path],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, folder = held
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    bucket = f"job-stopped-{os.getpid()}-{time.monotonic_ns()}"
    make_s3_client().create_bucket(Bucket=bucket)
    job = container_command(Path("spec.yaml"), alias=None, version="ci-7")
    job[3] = str(tmp_path / "spec.yaml")  # the file the job writes its spec to, here
    env = os.environ | {
        "PYTHONPATH": str(REPO),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "AIAAS_STORE": f"s3://{bucket}/reg",
        SPEC_ENV: SPEC,
    }
    (folder / "release").unlink(missing_ok=True)
    (folder / "held").unlink(missing_ok=True)
    (folder / "armed").touch()
    process = subprocess.Popen(
        job,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
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
    assert (process.returncode, err) == (143, "training: interrupted (stopped by SIGTERM)\n")
    assert stored(bucket, "reg/") == []  # not versions/ci-7/model.onnx (19.5 MB) unlisted
    (folder / "held").unlink(missing_ok=True)
    done = subprocess.run(job, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "reg/models/wide/versions/ci-7/manifest.json" in stored(bucket, "reg/")
