"""The TrainingJobRole lets a stopped publish remove what it sent, and nothing more.

A training job stopped midway (SIGTERM: Batch's job timeout or `aws batch terminate-job`; a
retry attempt) unwinds as Ctrl-C does: `publishing.publish_version` deletes the files it wrote
and its number claim, so the retried job can publish the same version (4c27469). The role had
no s3:DeleteObject: in AWS each delete was refused (swallowed by the cleanup), and the
manifest-less model file stayed under the version, refusing a retry whose bytes differ.

A real moto server records what the stopped publish sends; each request must be allowed as
IAM would decide (tests/iam_policy.py). A version's manifest stays undeletable for the job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.runtime import publishing
from functions.runtime.registry import Registry
from functions.runtime.store_uri import open_store
from tests import onnx_factory
from tests.iam_policy import TLS, S3Request, decision
from tests.role_requests import BUCKET, RecordedStack, refused, statements

PREFIX = "registry/models/stopped"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedStack]:
    stack = RecordedStack(tmp_path).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", stack.server.endpoint)
    try:
        yield stack
    finally:
        stack.stop()


def test_a_publish_stopped_after_its_model_went_up_removes_it_within_the_role(
    stack: RecordedStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    card = tmp_path / "card.md"
    card.write_text("# stopped\n")
    real_replace = publishing._replace

    def stopped_after(*args: Any) -> None:  # the SIGTERM lands once the card is written too
        real_replace(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(publishing, "_replace", stopped_after)
    registry = Registry(open_store(f"s3://{BUCKET}/registry"))
    with pytest.raises(KeyboardInterrupt):
        registry.publish(
            onnx_factory.manifest_for(model, "stopped", "1"), model, {"card/card.md": card}
        )
    made = stack.taken()
    deletes = sorted(r.resource.rpartition("/stopped/")[2] for r in made if "Delete" in r.action)
    assert deletes == ["versions/.number-1", "versions/1/card/card.md", "versions/1/model.onnx"]
    assert refused("TrainingJobRole", made) == []
    left = stack.s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("KeyCount")
    assert left == 0  # the retry finds the version free


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (f"{PREFIX}/versions/1/model.onnx", "allow"),
        (f"{PREFIX}/versions/1/model.onnx.data", "allow"),
        (f"{PREFIX}/versions/.number-1", "allow"),
        (f"{PREFIX}/versions/1/manifest.json", "deny"),  # a published version stays one
        (f"{PREFIX}/aliases/production.json", "implicit deny"),  # aliases move, never vanish
        ("registry/datasets/iris.csv", "implicit deny"),
        ("batch/stopped/output/run.csv", "implicit deny"),
    ],
)
def test_the_job_deletes_only_a_versions_files_never_its_manifest(key: str, expected: str) -> None:
    request = S3Request("s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/{key}", TLS, f"DELETE {key}")
    assert decision(request, statements("TrainingJobRole"), BUCKET) == expected
