"""`AIAAS_TRANSFER_PART_MB` had no upper bound: `AIAAS_TRANSFER_PART_MB=100000 aiaas publish`
to S3 died with a raw MemoryError traceback (each part read allocated the whole part size), and
a publish holding `AIAAS_TRANSFER_WORKERS` parts at once was never checked against memory. A
part size past S3's largest part (5 GiB) is a settings error at start, a part is never read
bigger than the file, and parts in flight beyond the memory available are refused before
anything is sent."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from bench.synthetic_transformer import SyntheticShape, write_model
from functions.runtime import s3upload
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from infra.cli.main import main


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A ~20 MB model in one file: a multipart upload (over 16 MB)."""
    path = tmp_path / "export" / "model.onnx"
    write_model(path, SyntheticShape.of_bytes(20_000_000, width=64), external=False)
    return path


def publish(store: S3Store, model: Path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--store", store.uri, "publish", str(model), "--name", "pm",
                     "--task", "other", "--no-progress"])  # fmt: skip
    return code, err.getvalue()


def test_a_part_size_over_s3s_largest_is_a_settings_error(
    s3_store: S3Store, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_TRANSFER_PART_MB", "100000")
    code, err = publish(s3_store, model)
    assert code == 1
    assert (
        "AIAAS_TRANSFER_PART_MB must be a number, from 5 to 5120 (the part sizes S3 takes); got '100000'"
        in err
    )
    assert "Traceback" not in err and "MemoryError" not in err
    monkeypatch.delenv("AIAAS_TRANSFER_PART_MB")  # the test's own client reads it too
    assert list(s3_store.list_keys("models")) == []


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("AIAAS_TRANSFER_WORKERS", "0", "a whole number, 1 or more (the parts sent at once)"),
        ("AIAAS_TRANSFER_WORKERS", "-1", "a whole number, 1 or more (the parts sent at once)"),
        ("AIAAS_TRANSFER_WORKERS", "2.5", "a whole number, 1 or more (the parts sent at once)"),
        ("AIAAS_TRANSFER_PART_MB", "0", "a number, from 5 to 5120 (the part sizes S3 takes)"),
        ("AIAAS_TRANSFER_PART_MB", "-5", "a number, from 5 to 5120 (the part sizes S3 takes)"),
    ],
)
def test_each_transfer_setting_names_itself_and_its_own_range(
    s3_store: S3Store, model: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str,
    said: str,
) -> None:  # fmt: skip
    """WORKERS=-1 said "0 or more", and 0 was then refused by a message naming PART_MB first;
    PART_MB=-5 said "0 or more", and 0 "from 5 to 5120"."""
    monkeypatch.setenv(name, value)
    code, err = publish(s3_store, model)
    monkeypatch.delenv(name)  # the test's own client reads it too
    assert code == 1
    assert err == f"aiaas publish: error: {name} must be {said}; got {value!r}\n"
    assert list(s3_store.list_keys("models")) == []


def test_the_largest_part_size_publishes_a_file_smaller_than_one_part(
    s3_store: S3Store, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_TRANSFER_PART_MB", "5120")
    assert publish(s3_store, model) == (0, "")
    assert Registry(s3_store).manifest("pm", "1").file.size == model.stat().st_size


def test_parts_in_flight_beyond_the_memory_available_are_refused_before_sending(
    s3_store: S3Store, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_TRANSFER_PART_MB", "5")
    monkeypatch.setattr(s3upload, "_available_memory", lambda: 12_000_000)  # a small machine
    code, err = publish(s3_store, model)
    assert code == 1
    assert "holds up to 21 MB of parts in memory" in err, err
    assert "more than the 12 MB available; lower AIAAS_TRANSFER_PART_MB" in err
    assert list(s3_store.list_keys("models")) == []
    pending = s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket)
    assert pending.get("Uploads", []) == []
