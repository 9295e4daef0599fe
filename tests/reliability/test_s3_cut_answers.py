"""S3 answers whose connection breaks while they are read (`s3faults.py`'s `cut_download`):
an error document (a 404's) cut, where botocore neither retries nor wraps urllib3's
ProtocolError, and a small object's body cut, where botocore does not retry the read. A cut
once is retried; a cut that lasts is the store unreachable, in one line, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import MODEL
from tests.reliability.s3faults import FaultyS3Proxy, proxied
from tests.reliability.test_faults import UNAVAILABLE, predict, publish, s3_service
from tests.s3server import MotoServer

MANIFEST = f"/models/{MODEL}/versions/1/manifest.json"


@pytest.fixture
def bucket(s3_store: S3Store, tmp_path: Path) -> str:
    """digits-mlp:1 published straight to moto; no alias set."""
    publish(s3_store, tmp_path)
    return s3_store.bucket


@pytest.fixture
def faults(
    bucket: str, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultyS3Proxy]:
    with proxied(moto_server.port, monkeypatch) as proxy:  # 3 tries a call
        yield proxy


def cli(bucket: str, *args: str) -> int:
    return main(["--store", f"s3://{bucket}/registry", *args])


def one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"aiaas {command}: error: S3 error on s3://"), err
    return lines[0]


def test_a_cut_error_answer_is_retried_then_said_as_the_store_unreachable(
    bucket: str, faults: FaultyS3Proxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aiaas publish` reads the model's prune record, a 404 for a model never pruned: its
    error document cut mid-read was a urllib3 traceback, not retried."""
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=64, classes=10)
    faults.cut_download, faults.cuts, faults.reset = "/pruned.json", 2, True  # 2 of 3 tries
    assert cli(bucket, "publish", str(model), "--name", MODEL) == 0, capsys.readouterr().err
    assert faults.cuts == 0
    assert Registry(S3Store(bucket, "registry")).versions(MODEL) == ["1", "2"]
    capsys.readouterr()
    faults.cuts = -1  # every try cut
    assert cli(bucket, "publish", str(model), "--name", MODEL) == 1
    line = one_error_line(capsys.readouterr().err, "publish")
    assert "pruned.json: the connection broke mid-answer: " in line
    assert Registry(S3Store(bucket, "registry")).versions(MODEL) == ["1", "2"]


def test_a_manifest_cut_mid_body_is_read_again(
    bucket: str, faults: FaultyS3Proxy, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest (or alias record) read whole, cut partway, failed `aiaas versions` at the
    first cut, where s3transfer retries the same cut of a model file."""
    faults.cut_download, faults.cuts = MANIFEST, 2
    assert cli(bucket, "versions", MODEL) == 0, capsys.readouterr().err
    assert faults.cuts == 0
    assert capsys.readouterr().out.split()[0] == "1"  # the version, read whole
    faults.cuts = -1
    assert cli(bucket, "versions", MODEL) == 1
    line = one_error_line(capsys.readouterr().err, "versions")
    assert "manifest.json: the connection broke mid-answer: " in line


def test_a_cut_error_answer_at_a_cold_load_is_503_then_served(
    bucket: str, tmp_path: Path, faults: FaultyS3Proxy
) -> None:
    """A model with no production alias: its alias record's 404 cut mid-read was a 502
    "the function raised an error" on every call while it lasted."""
    faults.cut_download, faults.reset = f"/models/{MODEL}/aliases/", True
    service = s3_service(bucket, tmp_path)
    assert predict(service) == (503, UNAVAILABLE)
    faults.clear()
    faults.cut_download, faults.cuts, faults.reset = f"/models/{MODEL}/aliases/", 1, True
    status, body = predict(service)
    assert (status, body["version"], faults.cuts) == (200, "1", 0)
