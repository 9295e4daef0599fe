"""Store URIs `open_store` refuses, each in one line saying what a store URI is."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.errors import AiaasError
from functions.runtime.s3store import S3Store
from functions.runtime.store import open_store
from infra.cli.main import main
from tests.onnx_factory import linear_classifier


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://", "names no bucket"),
        ("gs://b/p", "unsupported store URI"),
        # A typo an operator made: it served (and published) a local directory 's3:/team'.
        ("s3:/team", "is not s3://bucket"),
        # ... and its colon lost: publish made a local directory ./s3/bucket/x (exit 0)
        ("s3//bucket/x", r"is not s3://bucket\[/prefix\] \(the colon is missing\)"),
        ("S3//bucket", "the colon is missing"),
    ],
)
def test_open_store_rejects_bad_uris(uri: str, message: str) -> None:
    with pytest.raises(AiaasError, match=message):
        open_store(uri)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        # An ARN was taken for a directory path: publish wrote ./arn:aws:s3:::bucket/... (exit 0).
        ("arn:aws:s3:::bucket", "store URI 'arn:aws:s3:::bucket' is an S3 ARN: use s3://bucket"),
        ("arn:aws:s3:::bucket/reg/", "is an S3 ARN: use s3://bucket/reg"),
        ("https://bucket.s3.amazonaws.com/reg", "is an S3 https URL: use s3://bucket/reg"),
        (
            "https://bucket.s3.eu-west-1.amazonaws.com/a/b/",
            "is an S3 https URL: use s3://bucket/a/b",
        ),
        (
            "https://s3.eu-west-1.amazonaws.com/bucket/reg",
            "is an S3 https URL: use s3://bucket/reg",
        ),
        (
            "https://s3.console.aws.amazon.com/s3/buckets/bucket?region=eu-west-1&prefix=reg%2F",
            "is the S3 console's address: use s3://bucket/reg",
        ),
        # A prefix of its own (`reg `): publish wrote there, exit 0, and `reg` had no such model.
        ("s3://bucket/reg ", "store URI 's3://bucket/reg ' has a space at an end"),
        ("\ts3://bucket/reg", "(a prefix of its own): use s3://bucket/reg"),
    ],
)
def test_a_bucket_named_another_way_is_refused_naming_its_s3_uri(uri: str, message: str) -> None:
    with pytest.raises(AiaasError) as error:
        open_store(uri)
    assert message in error.value.message


def test_an_upper_case_scheme_is_s3() -> None:
    store = open_store("S3://bucket/reg")
    assert isinstance(store, S3Store)
    assert store.uri == "s3://bucket/reg"


def test_a_publish_to_an_arn_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = linear_classifier(tmp_path / "model.onnx")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = ["--store", "arn:aws:s3:::bucket/reg", "publish", str(model), "--name", "m"]
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        "aiaas publish: error: store URI 'arn:aws:s3:::bucket/reg' is an S3 ARN: "
        "use s3://bucket/reg\n"
    )
    assert list(work.iterdir()) == []
