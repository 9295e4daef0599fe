"""`aiaas train SPEC --submit`: run a training job on the stack's AWS Batch GPU queue.

The job definition (template.yaml, TrainingJobDefinition) runs the image built from
training/Dockerfile with one GPU and AIAAS_STORE pointing at the stack's registry. The spec
travels inside the job as an environment variable, written to a file by the container's
shell before `python -m training` reads it, so no upload step is needed. Data must be
reachable from the container: `bundled:`, `generated:` or `s3://` (local paths are refused).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from functions.runtime import names
from functions.runtime.errors import AiaasError, BadRequest

if TYPE_CHECKING:
    from training.spec import JobSpec

SPEC_ENV = "AIAAS_TRAIN_SPEC"
QUEUE_ENV = "AIAAS_TRAINING_JOB_QUEUE"
DEFINITION_ENV = "AIAAS_TRAINING_JOB_DEFINITION"
# Container overrides are small (ECS caps them at 8 KiB in all); specs are ~1 KiB.
MAX_SPEC_BYTES = 6 * 1024
REMOTE_DATA = ("bundled:", "generated:", "s3://")
# $0 is the spec file, "$@" the train options: the spec text never passes through the shell.
WRITE_SPEC_AND_TRAIN = 'printf "%s" "$' + SPEC_ENV + '" > "$0" && exec python -m training "$0" "$@"'


def job_name(spec_name: str, now: float | None = None) -> str:
    """`train-<model>-<UTC time>`, in the characters AWS Batch allows in a job name."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"train-{spec_name}-{stamp}")[:128]


def check_remote_data(spec: JobSpec, spec_path: Path) -> None:
    """The container has no copy of this machine's files: refuse local data paths."""
    path = spec.dataset.path
    if not path.startswith(REMOTE_DATA):
        raise BadRequest(
            f"{spec_path}: dataset.path {path!r} is a local file, which the AWS Batch job cannot "
            "read; upload it (e.g. to s3://<ArtifactsBucket>/registry/datasets/) and "
            "name its s3:// URI"
        )


def container_command(
    spec_path: Path, *, alias: str | None, version: str | None = None, reason: str | None = None
) -> list[str]:
    """The job's command: write the spec from the environment, then train and publish (a job
    that did not would leave its model on an instance that is gone)."""
    options = ["--no-progress", "--publish"]
    if alias:
        options += ["--alias", names.alias_name(alias)]
    if version:
        options += ["--version", names.new_version_name(version)]
    if reason:  # the job's own --reason: its alias move keeps it, as a local run's does
        options.append(f"--reason={reason}")  # one argument: a reason may begin with "-"
    spec_file = f"/tmp/aiaas-spec{spec_path.suffix or '.yaml'}"  # noqa: S108 - inside the job's container
    return ["sh", "-c", WRITE_SPEC_AND_TRAIN, spec_file, *options]


def submittable_spec(spec_path: Path) -> tuple[JobSpec, str]:
    """The spec and its text, if a Batch job can run it (`--submit`, and `--check --submit`)."""
    from training.spec import load_spec

    spec = load_spec(spec_path)
    check_remote_data(spec, spec_path)
    text = spec_path.read_text(encoding="utf-8")
    if len(text.encode()) > MAX_SPEC_BYTES:
        raise BadRequest(
            f"{spec_path} is {len(text.encode())} bytes; a submitted spec may be at most "
            f"{MAX_SPEC_BYTES} (AWS Batch container overrides are small)"
        )
    return spec, text


def submit_request(
    spec_path: Path,
    *,
    queue: str,
    definition: str,
    alias: str | None = None,
    version: str | None = None,
    reason: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The `SubmitJob` parameters for one training spec (validated here, before submitting)."""
    spec, text = submittable_spec(spec_path)
    return {
        "jobName": job_name(spec.name, now),
        "jobQueue": queue,
        "jobDefinition": definition,
        "containerOverrides": {
            "command": container_command(spec_path, alias=alias, version=version, reason=reason),
            "environment": [{"name": SPEC_ENV, "value": text}],
        },
        "tags": {"aiaas:model": spec.name},
    }


def submit(client: Any, request: dict[str, Any]) -> dict[str, str]:
    """Submit with a boto3 `batch` client; returns jobId, jobName and jobArn."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.submit_job(**request)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AiaasError(
            f"AWS Batch refused job {request['jobName']}: {error.get('Code')}: {error.get('Message')}"
        ) from exc
    except BotoCoreError as exc:
        raise AiaasError(f"could not reach AWS Batch: {exc}") from exc
    return {key: str(response[key]) for key in ("jobId", "jobName", "jobArn") if key in response}


def resolve_target(queue: str | None, definition: str | None) -> tuple[str, str]:
    """Queue and job definition from the options, else the environment, else a clear error."""
    queue = queue or os.environ.get(QUEUE_ENV)
    definition = definition or os.environ.get(DEFINITION_ENV)
    if not queue or not definition:
        raise BadRequest(
            "--submit needs --job-queue and --job-definition (or $"
            f"{QUEUE_ENV} and ${DEFINITION_ENV}): the stack outputs TrainingJobQueueArn and "
            "TrainingJobDefinitionArn once deployed with Training=Enabled"
        )
    return queue, definition
