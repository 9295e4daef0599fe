"""The TrainingJobRole and the bucket policy against what a training job really sends to S3.

A real moto server records every request while the job's own container command
(`infra.aws_batch.container_command`) trains on a data set in the bucket and publishes two
versions, moving the `production` alias, and while a model over the multipart threshold is
published through the same `publish_version`. Each request must be allowed by the role's
policy together with the bucket policy, as IAM would decide (tests/iam_policy.py: IAM itself
cannot run here). And a published version is write-once for the job: a write into a version
without `If-None-Match` or `If-Match`, any replacement of a manifest or model file, and a copy
into a version are refused, while every request the job made still passes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.aws_batch import SPEC_ENV, container_command
from tests import onnx_factory
from tests.iam_policy import S3Request, decision, write
from tests.role_requests import BUCKET, RecordedStack, refused, statements
from tests.torchless import torch_or_skip

REPO = Path(__file__).resolve().parents[2]
MODEL = "registry/models/iris-logistic"
VERSION = f"{MODEL}/versions/1"
ALIASES = f"{MODEL}/versions/aliases"


@pytest.fixture(scope="module")
def policies() -> list[dict[str, Any]]:
    return statements("TrainingJobRole")


@pytest.fixture(scope="module")
def requests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[S3Request]]:
    torch_or_skip()  # the job trains: `pip install -e '.[test]'` (3.12, 3.13) errored here
    work = tmp_path_factory.mktemp("training-requests")
    stack = RecordedStack(work).start()
    try:
        data = (REPO / "training" / "data" / "iris.csv").read_bytes()
        stack.s3.put_object(Bucket=BUCKET, Key="registry/datasets/iris.csv", Body=data)
        stack.taken()  # from here on, only what the job and the publish send
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL_S3": stack.server.endpoint,
            "AIAAS_STORE": f"s3://{BUCKET}/registry",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(REPO),
            SPEC_ENV: (REPO / "training" / "specs" / "iris-logistic.yaml")
            .read_text()
            .replace("bundled:iris.csv", f"s3://{BUCKET}/registry/datasets/iris.csv")
            .replace("epochs: 60", "epochs: 2")
            # the requests to S3 are the point, not the exporter (dynamo's costs seconds a job)
            + "export: {exporter: torchscript}\n",
        }
        job = container_command(Path("spec.yaml"), alias="production")
        job[3] = str(work / "spec.yaml")  # the file the job writes its spec to, here
        for _ in range(2):  # version 1 creates the alias, version 2 moves it (If-Match)
            done = subprocess.run(job, env=env, cwd=work, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-3000:]
        big = onnx_factory.big_add(work / "big.onnx", 4_500_000)  # 18 MB: in 5 MB parts
        done = subprocess.run(
            [sys.executable, "-m", "infra.cli.main", "publish", str(big), "--name", "big"],
            env={**env, "AIAAS_TRANSFER_PART_MB": "5"},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        yield stack.taken()
    finally:
        stack.stop()


def test_every_request_of_a_training_job_and_a_big_publish_is_allowed(
    requests: list[S3Request],
) -> None:
    assert refused("TrainingJobRole", requests) == []
    calls = {r.call.split("(")[-1].rstrip(")") for r in requests if "(" in r.call}
    # what the check covered: a job's plain and conditional writes, and a multipart upload
    assert {"ListObjectsV2", "PutObject", "CreateMultipartUpload", "UploadPart"} <= calls
    assert "CompleteMultipartUpload" in calls
    moved = [r for r in requests if r.resource.endswith("/aliases/production.json")]
    assert [
        sorted(k for k in r.context if k.startswith("s3:if"))
        for r in moved
        if r.call.startswith("PUT")
    ] == [
        ["s3:if-none-match"],
        ["s3:if-match"],
    ]


def test_every_write_into_a_version_was_create_only(requests: list[S3Request]) -> None:
    """What the role's policy relies on: the job claims each file of a version (If-None-Match)."""
    writes = [
        r
        for r in requests
        if "/versions/" in r.resource and r.context.get("s3:ObjectCreationOperation") == "true"
    ]
    assert len(writes) >= 2 * 8 + 2  # two trained versions' files, the big model and manifest
    assert [r.call for r in writes if r.context.get("s3:if-none-match") != "*"] == []
    # each numeric version's claim on its number (`8` and `008` at once: one publishes)
    assert any(r.resource.endswith("iris-logistic/versions/.number-2") for r in writes)


@pytest.mark.parametrize(
    ("what", "request_", "expected"),
    [
        ("a blind overwrite of a manifest", write(BUCKET, f"{VERSION}/manifest.json"), "deny"),
        (
            "a manifest replaced over its ETag",
            write(BUCKET, f"{VERSION}/manifest.json", if_match='"e"'),
            "deny",
        ),
        ("a blind overwrite of a model", write(BUCKET, f"{VERSION}/model.onnx"), "deny"),
        (
            "a multipart completion over a model",
            write(BUCKET, f"{VERSION}/model.onnx", operation="CompleteMultipartUpload"),
            "deny",
        ),
        (
            "a copy into a version",
            write(BUCKET, f"{VERSION}/card/card.md", operation="CopyObject"),
            "deny",
        ),
        (
            "a blind overwrite of a card",
            write(BUCKET, f"{VERSION}/card/card.md"),
            "deny",
        ),
        # IAM's `*` matches '/': the alias grant (models/*/aliases/*) named these keys of a
        # version called `aliases` (now refused at publish) or a data file in an aliases/ folder
        (
            "a blind overwrite of a version named aliases",
            write(BUCKET, f"{ALIASES}/manifest.json"),
            "deny",
        ),
        (
            "a blind overwrite of its model",
            write(BUCKET, f"{ALIASES}/model.onnx.data"),
            "deny",
        ),
        (
            "a blind overwrite of a data file in an aliases/ folder",
            write(BUCKET, f"{VERSION}/aliases/weights.bin"),
            "deny",
        ),
        ("a new alias record", write(BUCKET, f"{MODEL}/aliases/staging.json"), "allow"),
        (
            "a card an interrupted publish left, replaced over its ETag",
            write(BUCKET, f"{VERSION}/card/card.md", if_match='"e"'),
            "allow",
        ),
        ("a new file", write(BUCKET, f"{VERSION}/model.onnx", if_none_match="*"), "allow"),
        (
            "a part of a new model",
            write(BUCKET, f"{VERSION}/model.onnx", operation="UploadPart"),
            "allow",
        ),
        (
            "a data set",
            write(BUCKET, "registry/datasets/x.csv", if_none_match="*"),
            "implicit deny",
        ),
    ],
)
def test_a_published_version_is_write_once(
    what: str, request_: S3Request, expected: str, policies: list[dict[str, Any]]
) -> None:
    assert decision(request_, policies, BUCKET) == expected, what
