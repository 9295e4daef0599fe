"""A stream read from S3 whose connection breaks mid-body (`s3faults.py`'s `cut_download`: half
the body, then the connection closes) is resumed where it broke, by a ranged GET of the same
object only (If-Match its ETag). `aiaas batch` reads its input as one stream: a single reset
anywhere in it failed the whole run (`S3 error reading ...: 3399975 read, but total bytes
expected is 6799950.`), after every row before the cut had been scored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from functions.runtime.errors import StoreError
from functions.runtime.s3store import S3Store
from infra.cli.main import main
from tests import onnx_factory
from tests.reliability.s3faults import FaultyS3Proxy, proxied
from tests.s3server import MotoServer

ROWS = 20_000
NAME = "rows in a batch +%é.csv"
INPUT = f"/batch/lin/input/{quote(NAME)}"  # as the proxy sees the path: quoted


@pytest.fixture
def faults(
    s3_store: S3Store, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultyS3Proxy]:
    with proxied(moto_server.port, monkeypatch) as proxy:  # 3 tries a call
        yield proxy


def rows_csv(path: Path) -> Path:
    lines = [f"{i % 7}.25,{i % 5}.5,{i % 3}.75,{i % 11}.125" for i in range(ROWS)]
    path.write_text("x_0,x_1,x_2,x_3\n" + "\n".join(lines) + "\n")
    return path


def test_a_batch_input_cut_mid_read_is_resumed_and_every_row_scored(
    s3_store: S3Store, faults: FaultyS3Proxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = s3_store.uri
    model = onnx_factory.linear_classifier(tmp_path / "lin.onnx")
    assert main(["--store", uri, "publish", str(model), "--name", "lin"]) == 0
    capsys.readouterr()
    source = rows_csv(tmp_path / NAME)
    # The header's read (its first 64 KB, before the cut) and two cuts of the rows' read.
    faults.cut_download, faults.cuts = INPUT, 3
    code = main(["--store", uri, "batch", "lin", str(source), "--json", "--no-progress"])
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert code == 0 and summary["status"] == "succeeded", (summary.get("error"), err)
    assert faults.cuts == 0  # the rows' stream was cut twice, and read through
    assert (summary["rows"], summary["scored_rows"], summary["failed_rows"]) == (ROWS, ROWS, 0)
    output = s3_store.get_bytes(summary["output"]).decode().splitlines()
    assert len(output) == ROWS + 1  # a header and a line a row, none lost or repeated


def test_a_read_cut_every_time_ends_in_one_store_error_saying_so(
    s3_store: S3Store, faults: FaultyS3Proxy
) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    s3_store.put_bytes("blobs/b.bin", data)
    faults.cut_download = "/blobs/b.bin"  # every GET, resumes too: half, then cut
    with s3_store.open_read("blobs/b.bin") as body:
        assert body.read() == data  # each resume brings bytes: read through, ~20 of them
    faults.cut_after = 0  # headers, then the cut: no resume gets further
    with pytest.raises(StoreError) as exc, s3_store.open_read("blobs/b.bin") as body:
        body.read()
    assert exc.value.message.startswith(f"S3 error reading {s3_store.uri}/blobs/b.bin: ")
    assert "the connection broke mid-read, 3 times in a row" in exc.value.message
    faults.cuts, faults.cut_after = 1, None
    with s3_store.open_read("blobs/b.bin", 1000, 900_000) as body:
        assert body.read() == data[1000:900_000]  # a range resumed within its own end
    assert faults.cuts == 0


def test_an_object_replaced_before_the_resume_is_never_spliced_in(
    s3_store: S3Store, faults: FaultyS3Proxy
) -> None:
    first, second = b"a" * 1_000_000, b"b" * 1_000_000
    s3_store.put_bytes("blobs/r.bin", first)
    faults.cut_download, faults.cuts = "/blobs/r.bin", 1
    with pytest.raises(StoreError) as exc, s3_store.open_read("blobs/r.bin") as body:
        assert body.read(1000) == first[:1000]
        s3_store.put_bytes("blobs/r.bin", second)  # replaced while its first GET is read
        body.read()
    assert exc.value.message.startswith(f"{s3_store.uri}/blobs/r.bin was replaced while it ")
    assert faults.cuts == 0


def test_a_body_cut_short_with_a_length_to_match_is_refused_by_its_checksum(
    s3_store: S3Store, faults: FaultyS3Proxy
) -> None:
    """Read to its end, so botocore checks the object's checksum: a read that stopped at the
    length the answer gave would take half a batch input for all of it."""
    data = b"x_0\n" + b"1.5\n" * 100_000
    s3_store.put_bytes("blobs/s.csv", data)
    faults.short_download = "/blobs/s.csv"
    with pytest.raises(StoreError) as exc, s3_store.open_read("blobs/s.csv") as body:
        while body.read(65536):
            pass
    assert "did not match the object's checksum" in exc.value.message


def test_a_manifest_whose_checksum_fails_is_read_again_then_said_in_one_line(
    s3_store: S3Store, faults: FaultyS3Proxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """botocore retries no read whose bytes fail the object's checksum: one such answer failed
    `aiaas versions` and `pull`, saying `Expected checksum 89Lrmg== did not match ...`."""
    uri = s3_store.uri
    model = onnx_factory.linear_classifier(tmp_path / "lin.onnx")
    assert main(["--store", uri, "publish", str(model), "--name", "lin"]) == 0
    capsys.readouterr()
    faults.short_download, faults.shorts = "/models/lin/versions/1/manifest.json", 2
    assert main(["--store", uri, "versions", "lin"]) == 0, capsys.readouterr().err
    assert faults.shorts == 0 and capsys.readouterr().out.split()[0] == "1"
    faults.shorts = -1  # every try
    assert main(["--store", uri, "versions", "lin"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "manifest.json: what came did not match the object's checksum" in err


def test_a_pull_whose_download_is_cut_every_time_says_why(
    s3_store: S3Store, faults: FaultyS3Proxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """s3transfer's retries ran out: `S3 transfer of ... failed: RetriesExceededError('Max
    Retries Exceeded')` said nothing of the connection that broke each time."""
    model = onnx_factory.linear_classifier(tmp_path / "lin.onnx")
    assert main(["--store", s3_store.uri, "publish", str(model), "--name", "lin"]) == 0
    capsys.readouterr()
    faults.cut_download, faults.reset = "/models/lin/versions/1/model.onnx", True
    local = tmp_path / "edge"
    pull = ["--store", str(local), "pull", "lin", "--from", s3_store.uri, "--no-progress"]
    assert main(pull) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    # Its own ranged GETs since (transfer.py, by a deadline): a cut is said as a read's.
    where = f"{s3_store.uri}/models/lin/versions/1/model.onnx"
    assert err.startswith(f"aiaas pull: error: S3 error reading {where}: "), err
    assert ": the connection broke mid-read, 3 times in a row: " in err
    assert "RetriesExceeded" not in err
    faults.clear()
    assert main(pull) == 0
