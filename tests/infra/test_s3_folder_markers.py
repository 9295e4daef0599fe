"""Folder markers in a user's bucket (an empty object whose key ends in '/', as the S3 console's
"Create folder" makes one) are no objects of the store: listed, every later call refused the
key, so `aiaas pull` of that version failed and `aiaas prune` of the model failed after
deleting its manifests, every time, leaving the model files in the bucket."""

from __future__ import annotations

from pathlib import Path

from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory


def test_pull_and_prune_step_over_folder_markers(s3_store: S3Store, tmp_path: Path) -> None:
    registry = Registry(s3_store)
    onnx = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    for version in ("1", "2", "3"):
        registry.publish(onnx_factory.manifest_for(onnx, "m", version), onnx)
    for folder in ("models/m/versions/1/", "models/m/versions/3/", "models/m/"):
        s3_store.client.put_object(Bucket=s3_store.bucket, Key=f"registry/{folder}", Body=b"")
    assert not [k for k in s3_store.list_keys("models/m") if k.endswith("/")]

    local = tmp_path / "edge"
    assert main(["--store", str(local), "pull", "m:3", "--from", s3_store.uri]) == 0
    assert Registry(LocalStore(local)).versions("m") == ["3"]
    assert main(["--store", s3_store.uri, "prune", "m", "--keep", "1", "--yes"]) == 0
    assert registry.versions("m") == ["3"]
    left = sorted(s3_store.list_keys("models/m/versions"))
    # the version kept, and the claim on its number (publishing.claim_number); no marker
    assert left and all(
        k.startswith(("models/m/versions/3/", "models/m/versions/.number-3")) for k in left
    )
