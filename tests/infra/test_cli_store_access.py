"""What `aiaas` says when the store cannot be used at all: no AWS credentials, no bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.errors import StoreError
from functions.runtime.store import open_store
from infra.cli.main import main
from tests.s3server import MotoServer


def test_missing_credentials_say_how_to_provide_them(
    moto_server: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # It was botocore's "S3 error on s3://.../models: Unable to locate credentials".
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent"))
    assert main(["--store", "s3://aiaas-no-creds/registry", "models"]) == 1
    assert capsys.readouterr().err == (
        "aiaas models: error: no AWS credentials found for s3://aiaas-no-creds/registry: set "
        "AWS_PROFILE (after `aws sso login` or `aws configure`), or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY\n"
    )


def test_a_missing_bucket_is_named(
    moto_server: MotoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", "s3://aiaas-never-made/registry", "versions", "m", "--json"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == (
        "",
        "aiaas versions: error: S3 bucket 'aiaas-never-made' does not exist "
        "(store s3://aiaas-never-made/registry)\n",
    )


def test_an_upload_to_a_missing_bucket_is_named(moto_server: MotoServer, tmp_path: Path) -> None:
    # `aiaas batch`'s upload (boto3's upload_file) said "S3 transfer of ... failed:
    # S3UploadFailedError('Failed to upload rows.csv to ...: An error occurred (NoSuchBucket)
    # when calling the PutObject operation ...')".
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n1,2\n")
    with pytest.raises(StoreError) as error:
        open_store("s3://aiaas-never-made/registry").upload_file(data, "batch/m/input/rows.csv")
    assert error.value.message == (
        "S3 bucket 'aiaas-never-made' does not exist (store s3://aiaas-never-made/registry)"
    )
