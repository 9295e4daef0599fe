"""`aiaas train SPEC --submit`: the SubmitJob request (botocore Stubber), and the job's command.

The container command is run here for real, with `--check` in place of training, to prove
the spec survives the trip through the environment and the shell unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from functions.runtime.errors import AiaasError, BadRequest
from infra.aws_batch import SPEC_ENV, job_name, resolve_target, submit, submit_request
from infra.cli.main import main

SPECS = Path(__file__).resolve().parents[2] / "training" / "specs"
QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/TrainingJobQueue-abc"
DEFINITION = "arn:aws:batch:us-east-1:123456789012:job-definition/TrainingJobDefinition-abc:1"
NOW = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC


@pytest.fixture
def batch_client():  # type: ignore[no-untyped-def]
    return boto3.client("batch", region_name="us-east-1")


def test_request_carries_the_spec_queue_definition_and_publish(tmp_path: Path) -> None:
    spec = SPECS / "digits-mlp.yaml"
    request = submit_request(
        spec, queue=QUEUE, definition=DEFINITION, alias="staging", version="2026.1", now=NOW
    )
    assert request["jobName"] == "train-digits-mlp-20260921-141320"
    assert (request["jobQueue"], request["jobDefinition"]) == (QUEUE, DEFINITION)
    overrides = request["containerOverrides"]
    assert overrides["environment"] == [{"name": SPEC_ENV, "value": spec.read_text()}]
    assert overrides["command"][:2] == ["sh", "-c"]
    assert overrides["command"][3:] == [
        "/tmp/aiaas-spec.yaml",
        "--no-progress",
        "--publish",
        "--alias",
        "staging",
        "--version",
        "2026.1",
    ]
    assert request["tags"] == {"aiaas:model": "digits-mlp"}


def test_submit_sends_exactly_the_request(batch_client) -> None:  # type: ignore[no-untyped-def]
    request = submit_request(SPECS / "iris-logistic.yaml", queue=QUEUE, definition=DEFINITION)
    with Stubber(batch_client) as stub:
        stub.add_response(
            "submit_job",
            {
                "jobArn": "arn:aws:batch:us-east-1:123456789012:job/j-1",
                "jobName": request["jobName"],
                "jobId": "j-1",
            },
            expected_params=request,
        )
        job = submit(batch_client, request)
        stub.assert_no_pending_responses()
    assert job == {
        "jobId": "j-1",
        "jobName": request["jobName"],
        "jobArn": "arn:aws:batch:us-east-1:123456789012:job/j-1",
    }


def test_a_refused_submit_names_the_reason(batch_client) -> None:  # type: ignore[no-untyped-def]
    request = submit_request(
        SPECS / "iris-logistic.yaml", queue=QUEUE, definition=DEFINITION, now=NOW
    )
    with Stubber(batch_client) as stub:
        stub.add_client_error(
            "submit_job", "ClientException", "JobQueue TrainingJobQueue-abc not found", 400
        )
        with pytest.raises(AiaasError) as raised:
            submit(batch_client, request)
    assert raised.value.message == (
        "AWS Batch refused job train-iris-logistic-20260921-141320: ClientException: "
        "JobQueue TrainingJobQueue-abc not found"
    )


def test_local_data_is_refused_before_submitting(tmp_path: Path) -> None:
    spec = tmp_path / "mine.yaml"
    spec.write_text(
        (SPECS / "iris-logistic.yaml")
        .read_text()
        .replace(_dataset_line(SPECS / "iris-logistic.yaml"), "  path: data/iris.csv")
    )
    with pytest.raises(BadRequest) as raised:
        submit_request(spec, queue=QUEUE, definition=DEFINITION)
    assert raised.value.message == (
        f"{spec}: dataset.path 'data/iris.csv' is a local file, which the AWS Batch job cannot "
        "read; upload it (e.g. to s3://<ArtifactsBucket>/registry/datasets/) and name "
        "its s3:// URI"
    )


def _dataset_line(spec: Path) -> str:
    return next(line for line in spec.read_text().splitlines() if line.strip().startswith("path:"))


def test_queue_and_definition_come_from_options_or_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIAAS_TRAINING_JOB_QUEUE", raising=False)
    monkeypatch.delenv("AIAAS_TRAINING_JOB_DEFINITION", raising=False)
    with pytest.raises(BadRequest) as raised:
        resolve_target(None, DEFINITION)
    assert raised.value.message.startswith("--submit needs --job-queue and --job-definition")
    monkeypatch.setenv("AIAAS_TRAINING_JOB_QUEUE", QUEUE)
    assert resolve_target(None, DEFINITION) == (QUEUE, DEFINITION)


def test_job_names_use_only_allowed_characters() -> None:
    assert job_name("text.v2", NOW) == "train-text-v2-20260921-141320"


def test_the_container_command_writes_the_spec_and_runs_training(tmp_path: Path) -> None:
    spec = SPECS / "digits-mlp.yaml"
    command = submit_request(spec, queue=QUEUE, definition=DEFINITION)["containerOverrides"][
        "command"
    ]
    command = [*command[:3], str(tmp_path / "spec.yaml"), "--check"]  # validate instead of train
    env = {
        **os.environ,
        SPEC_ENV: spec.read_text(),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{tmp_path / 'spec.yaml'}: valid (digits-mlp, classification, recipe mlp)",
        "  data: bundled:digits.npz, 1797 rows (all read); 64 features: x0, x1, x2, x3, x4, x5, "
        "..., x63; target 'y': 10 classes",
    ]
    assert (tmp_path / "spec.yaml").read_text() == spec.read_text()


def test_cli_submit_without_a_queue_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AIAAS_TRAINING_JOB_QUEUE", raising=False)
    monkeypatch.delenv("AIAAS_TRAINING_JOB_DEFINITION", raising=False)
    assert main(["train", str(SPECS / "digits-mlp.yaml"), "--submit"]) == 1
    assert capsys.readouterr().err.startswith(
        "aiaas train: error: --submit needs --job-queue and --job-definition"
    )


def test_cli_submit_calls_aws_batch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = boto3.client("batch", region_name="us-east-1")
    stub = Stubber(client)
    stub.add_response(
        "submit_job",
        {"jobArn": "arn:aws:batch:us-east-1:1:job/j-9", "jobName": "n", "jobId": "j-9"},
    )
    monkeypatch.setattr(boto3, "client", lambda service, **_: client)
    with stub:
        code = main(
            [
                "train",
                str(SPECS / "digits-mlp.yaml"),
                "--submit",
                "--job-queue",
                QUEUE,
                "--job-definition",
                DEFINITION,
            ]
        )
    assert code == 0
    assert capsys.readouterr().out == f"submitted n (job id j-9) to {QUEUE}\n"


def image_argv(batch_command: list[str] | None) -> list[str]:
    """What the training image runs for a job: Docker's rule, ENTRYPOINT + (the job's command,
    which replaces CMD, or CMD), from training/Dockerfile's exec-form instructions."""
    import json

    entrypoint: list[str] = []
    cmd: list[str] = []
    for line in (SPECS.parent / "Dockerfile").read_text().splitlines():
        if line.startswith("ENTRYPOINT "):
            entrypoint = json.loads(line.removeprefix("ENTRYPOINT "))
        elif line.startswith("CMD "):
            cmd = json.loads(line.removeprefix("CMD "))
    return [*entrypoint, *(batch_command if batch_command is not None else cmd)]


def test_the_image_runs_the_batch_command_as_given(tmp_path: Path) -> None:
    """The exact argv a Batch container runs (the image's entrypoint and the job's command),
    run here in this venv: it writes the spec and reaches training (`--check`: no GPU here)."""
    spec = SPECS / "iris-logistic.yaml"
    command = submit_request(spec, queue=QUEUE, definition=DEFINITION)["containerOverrides"][
        "command"
    ]
    argv = image_argv([*command[:3], str(tmp_path / "spec.yaml"), "--check"])
    assert argv[0] == "sh"  # nothing in front of the job's command
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, SPEC_ENV: spec.read_text(), "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "valid (iris-logistic" in done.stdout
    default = image_argv(None)  # no command given: the image's CMD alone
    assert subprocess.run(default, env=env, capture_output=True, timeout=60).returncode == 0


def test_check_with_submit_checks_and_submits_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # --check is "validate, then exit": with --submit it sent a GPU job instead.
    client = boto3.client("batch", region_name="us-east-1")
    monkeypatch.setattr(boto3, "client", lambda service, **_: client)
    target = ["--submit", "--job-queue", QUEUE, "--job-definition", DEFINITION]
    with Stubber(client) as stub:  # no response queued: any call to AWS Batch fails the test
        assert main(["train", str(SPECS / "iris-logistic.yaml"), "--check", *target]) == 0
        stub.assert_no_pending_responses()
    assert capsys.readouterr().out.startswith(f"{SPECS / 'iris-logistic.yaml'}: valid (")
    local = tmp_path / "job.yaml"  # what the job could not read is refused by the check too
    local.write_text((SPECS / "iris-logistic.yaml").read_text().replace("bundled:", ""))
    (tmp_path / "iris.csv").write_text((SPECS.parent / "data" / "iris.csv").read_text())
    assert main(["train", str(local), "--check", *target]) == 1
    assert "is a local file, which the AWS Batch job cannot read" in capsys.readouterr().err


def test_submit_with_json_prints_one_json_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = boto3.client("batch", region_name="us-east-1")
    job = {"jobArn": "arn:aws:batch:us-east-1:1:job/j-9", "jobName": "n", "jobId": "j-9"}
    monkeypatch.setattr(boto3, "client", lambda service, **_: client)
    with Stubber(client) as stub:
        stub.add_response("submit_job", job)
        argv = ["train", str(SPECS / "digits-mlp.yaml"), "--submit", "--json"]
        code = main([*argv, "--job-queue", QUEUE, "--job-definition", DEFINITION])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "submitted": True,
        "model": "digits-mlp",
        "job_name": "n",
        "job_id": "j-9",
        "job_arn": job["jobArn"],
        "queue": QUEUE,
        "job_definition": DEFINITION,
    }
