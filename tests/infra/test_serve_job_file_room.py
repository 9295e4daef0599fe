"""Job file names a directory store cannot hold, over a running `aiaas serve` (control hunt, #4).

The rule says parts of 1-255 characters, but a directory store writes a job's summary as
`<name>.summary.json` beside a temp file `.tmp-XXXXXXXX<name>.summary.json.<hex>`, and a file
name holds 255 bytes: a 222-character name was taken (202) and read "pending" for good (the
run's thread died with "File name too long"), 243-255 a 503 "the model store failed". Such a
name is a 400 naming the limit that applies; S3, which holds any part, takes it. And a local
run that fails without its summary (a corrupt manifest, an output folder that is a file) reads
"failed" with the reason, never "pending" for good."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.runtime import names
from functions.runtime.registry import Registry
from functions.runtime.s3store import make_s3_client
from functions.runtime.store import LocalStore, ObjectStore, open_store
from tests import onnx_factory
from tests.infra.test_serve_capture import ServeUri
from tests.s3server import MotoServer

JOBS = "/control/batch/{model}/jobs"
ROWS = b"x_0,x_1,x_2,x_3\n1,2,3,4\n"
SUMMARY = len(".summary.json")


def publish(store: ObjectStore, work: Path, model: str) -> None:
    onnx = onnx_factory.linear_classifier(work / f"{model}.onnx")
    Registry(store).publish(onnx_factory.manifest_for(onnx, model, "1"), onnx)


@dataclasses.dataclass
class Served:
    client: httpx.Client
    store: ObjectStore
    work: Path

    def put(self, file: str, model: str = "iris") -> httpx.Response:
        quoted = urllib.parse.quote(file)
        return self.client.put(f"{JOBS.format(model=model)}/{quoted}", content=ROWS)

    def get(self, file: str, model: str = "iris") -> httpx.Response:
        return self.client.get(f"{JOBS.format(model=model)}/{urllib.parse.quote(file)}")

    def finished(self, file: str, model: str = "iris") -> dict[str, Any]:
        """The job's status once it is no longer pending (a local run takes ~0.1 s)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = self.get(file, model)
            assert answer.status_code == 200, answer.text
            if answer.json()["status"] != "pending":
                return dict(answer.json())
            time.sleep(0.1)
        raise AssertionError(f"{file} still pending after 30 s")


@contextlib.contextmanager
def serve(uri: str, work: Path) -> Iterator[Served]:
    """`aiaas serve` on `uri`, with iris:1 published."""
    store = open_store(uri)
    publish(store, work, "iris")
    server = ServeUri(uri, work, {})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=30) as client:
            yield Served(client, store, work)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("job-room")
    with serve(str(work / "store"), work) as served:
        yield served


def room(served: Served) -> int:
    """The most bytes a job file name's last part may have on this store (220 on ext4)."""
    assert served.store.name_bytes is not None
    return served.store.name_bytes - SUMMARY


def too_long(served: Served, file: str) -> str:
    last = file.rsplit("/", 1)[-1]
    return (
        f"job file name {names.shown(file)} is too long for this store: its last part has "
        f"{len(last.encode())} bytes (UTF-8) and may have at most {room(served)}, as the run "
        f"writes '<name>.summary.json' beside it and the store holds names of at most "
        f"{served.store.name_bytes} bytes; use a shorter name"
    )


def test_the_longest_name_a_directory_store_takes_is_scored(local: Served) -> None:
    assert isinstance(local.store, LocalStore) and room(local) <= 255 - 22 - SUMMARY
    file = "c" * (room(local) - 4) + ".csv"
    assert local.put(file).status_code == 202
    assert local.finished(file)["status"] == "succeeded"


@pytest.mark.parametrize(
    "file",
    [
        "one-byte-over",  # the room plus one: taken, and pending for good
        "c" * 251 + ".csv",  # 255: the rule's longest part, a 503
        "day/" + "é" * 110 + ".csv",  # 114 characters, 224 bytes: pending for good
    ],
)
def test_a_name_too_long_for_the_store_is_a_400_naming_the_limit(local: Served, file: str) -> None:
    if file == "one-byte-over":
        file = "o" * (room(local) + 1 - 4) + ".csv"
    submitted = local.put(file)
    assert submitted.status_code == 400, submitted.text
    assert submitted.json() == {"error": too_long(local, file)}
    uploads = f"uploads/{uuid.uuid4().hex}.csv"
    local.store.put_bytes(uploads, ROWS)
    copied = local.client.post(JOBS.format(model="iris"), json={"source": uploads, "file": file})
    assert copied.status_code == 400, copied.text
    assert copied.json() == {"error": too_long(local, file)}
    followed = local.get(file)  # no such job can be: the same 400, not a 404
    assert (followed.status_code, followed.json()) == (400, {"error": too_long(local, file)})
    assert not [key for key in local.store.list_keys("batch") if file.split("/")[-1] in key]
    leftovers = list((local.work / "store" / "batch").rglob(".tmp-*"))
    assert not [p for p in leftovers if p.is_file() and not p.name.startswith(".tmp-lock-")]


def test_a_folder_too_long_for_the_store_is_a_400(local: Served) -> None:
    file = "é" * 120 + "/a.csv"  # 126 characters; the folder 240 bytes
    submitted = local.put(file)
    assert submitted.status_code == 400, submitted.text
    assert submitted.json() == {
        "error": f"job file name {names.shown(file)} is too long for this store: its folder "
        f"{names.shown('é' * 120)} has 240 bytes (UTF-8), and the store holds names of at most "
        f"{local.store.name_bytes}; use a shorter name"
    }


def test_a_long_named_input_already_there_is_refused_not_pending(local: Served) -> None:
    """One taken before the check (or copied in by hand): no run of it could finish."""
    file = "h" * (room(local) + 5) + ".csv"
    local.store.put_bytes(f"batch/iris/input/{file}", ROWS)
    followed = local.get(file)
    assert followed.status_code == 200, followed.text
    assert followed.json()["status"] == "refused"
    assert followed.json()["error"] == too_long(local, file)
    listed = local.client.get(JOBS.format(model="iris"), params={"limit": 1000}).json()["jobs"]
    assert [job["status"] for job in listed if job["file"] == file] == ["refused"]


def test_a_local_run_that_raises_reads_failed_with_the_reason(local: Served) -> None:
    """A corrupt manifest is the store's fault (a 5xx: AWS retries the message, then the
    dead-letter queue); the local run's thread died with it and the job read pending."""
    publish(local.store, local.work, "broken")
    manifest = local.work / "store" / "models" / "broken" / "versions" / "1" / "manifest.json"
    manifest.write_text('{"name": "broken"')
    assert local.put("rows.csv", "broken").status_code == 202
    job = local.finished("rows.csv", "broken")
    assert job["status"] == "failed"
    assert job["error"] == (
        "the run failed 3 times: model broken:1 has a corrupt manifest in the registry; the "
        "server's log says why (submit the job again to retry)"
    )
    assert job["rows"] == 0 and job["etag"] == local.store.head(job["input"]).etag
    assert local.store.exists("batch/broken/output/rows.csv.summary.json")  # as any failure's


def test_a_local_run_that_cannot_write_its_summary_reads_failed(local: Served) -> None:
    """`batch/blocked/output` a file: no output, errors or summary can be written, so the
    failure is said from the control plane's memory of the run."""
    publish(local.store, local.work, "blocked")
    (local.work / "store" / "batch" / "blocked").mkdir(parents=True)
    (local.work / "store" / "batch" / "blocked" / "output").write_bytes(b"in the way")
    assert local.put("rows.csv", "blocked").status_code == 202
    job = local.finished("rows.csv", "blocked")
    assert job["status"] == "failed"
    assert job["error"] == (
        "the run failed 3 times: cannot use 'batch/blocked/output/rows.csv.summary.json': "
        "'batch/blocked/output' is a file where a folder should be (a directory store cannot "
        "hold both keys; S3 can); the server's log says why (submit the job again to retry)"
    )
    assert local.put("rows.csv", "blocked").status_code == 202  # a new upload: its own run
    again = local.finished("rows.csv", "blocked")
    assert again["status"] == "failed" and again["etag"] != job["etag"]


def test_s3_takes_a_part_of_255_characters(moto_server: MotoServer, tmp_path: Path) -> None:
    """S3 holds any part: the directory store's bound is its own (`name_bytes`)."""
    bucket = f"aiaas-job-room-{uuid.uuid4().hex[:8]}"
    make_s3_client().create_bucket(Bucket=bucket)
    with serve(f"s3://{bucket}/registry", tmp_path) as served:
        assert served.store.name_bytes is None
        file = "s" * 251 + ".csv"
        submitted = served.put(file)
        assert submitted.status_code == 202, submitted.text
        assert served.get(file).json()["status"] == "pending"  # no notifications from moto


def test_a_lone_surrogate_in_a_copied_job_s_name_is_a_400(local: Served) -> None:
    """JSON can send `"\\ud800.csv"`, which no key can be (S3's are UTF-8; a file name's
    encoding failed): a plain-text 500."""
    uploads = f"uploads/{uuid.uuid4().hex}.csv"
    local.store.put_bytes(uploads, ROWS)
    body = b'{"source": "%s", "file": "\\ud800.csv"}' % uploads.encode()
    answer = local.client.post(
        JOBS.format(model="iris"), content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith("invalid job file name '\\ud800.csv': use ")
