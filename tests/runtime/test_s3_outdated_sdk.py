"""A botocore that predates S3's conditional writes is named, with the version needed.

Lambda's runtime provides boto3 (the bundle ships none), and botocore before 1.35.69 refuses
IfMatch (1.35.30-1.35.68 take IfNoneMatch only; 1.34 neither): every alias move answered a bare
503 "the model store failed" and the log said only 'Unknown parameter in input: "IfNoneMatch"'.
Here a real botocore client is given S3's API model as those versions have it (the condition
parameters taken out), against the test S3 server: its own parameter check refuses them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
import pytest

from functions.runtime.errors import StoreError
from functions.runtime.s3client import MIN_BOTOCORE
from functions.runtime.s3store import S3Store
from tests.s3server import MotoServer

CONDITIONS = ("IfMatch", "IfNoneMatch")


def _old_s3_model(root: Path) -> Path:
    """A data folder holding S3's API model without the conditional-write parameters."""
    session = botocore.session.get_session()
    # A copy: botocore caches what it loaded, and the suite's other clients share it.
    model = copy.deepcopy(
        session.get_component("data_loader").load_service_model("s3", "service-2")
    )
    for shape in ("PutObjectRequest", "DeleteObjectRequest", "CompleteMultipartUploadRequest"):
        for name in CONDITIONS:
            model["shapes"][shape]["members"].pop(name, None)
    folder = root / "s3" / model["metadata"]["apiVersion"]
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    return root


@pytest.fixture
def old_sdk_store(tmp_path: Path, moto_server: MotoServer, s3_bucket: str) -> S3Store:
    session = botocore.session.Session()
    session.set_config_variable("data_path", str(_old_s3_model(tmp_path)))  # AWS_DATA_PATH's
    client = boto3.Session(botocore_session=session).client(
        "s3", endpoint_url=moto_server.endpoint, region_name="us-east-1"
    )
    return S3Store(s3_bucket, "registry", client=client)


@pytest.mark.parametrize(
    "write",
    [
        lambda store: store.put_bytes("aliases/m/production.json", b"{}", if_absent=True),
        lambda store: store.put_bytes("aliases/m/production.json", b"{}", if_match="abc"),
        lambda store: store.delete("aliases/m/production.json", if_version="abc"),
    ],
    ids=["create-only", "replace-if-match", "delete-if-match"],
)
def test_a_conditional_write_names_the_sdk_it_needs(old_sdk_store: S3Store, write: object) -> None:
    with pytest.raises(StoreError) as refused:
        write(old_sdk_store)  # type: ignore[operator]
    message = str(refused.value)
    assert f">= {MIN_BOTOCORE}" in message
    assert "conditional writes" in message and botocore.__version__ in message
    assert old_sdk_store.exists("aliases/m/production.json") is False


def test_plain_writes_still_work_on_that_sdk(old_sdk_store: S3Store) -> None:
    old_sdk_store.put_bytes("models/m/notes.txt", b"plain")
    assert old_sdk_store.get_bytes("models/m/notes.txt") == b"plain"


def test_the_floor_is_the_one_pyproject_declares() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert f'aws = ["boto3>={MIN_BOTOCORE}"]' in pyproject
    # ... and the installed one has every parameter, or the suite could not pass on S3
    model = botocore.session.get_session().get_service_model("s3")
    for operation in ("PutObject", "CompleteMultipartUpload"):
        assert set(CONDITIONS) <= set(model.operation_model(operation).input_shape.members)
    assert "IfMatch" in model.operation_model("DeleteObject").input_shape.members
