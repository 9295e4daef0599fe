"""Object stores, each test against the local directory and S3 (moto's server on loopback)."""

from __future__ import annotations

import hashlib
import os
import threading
from http import HTTPStatus
from pathlib import Path

import pytest

from functions.runtime import store_parts
from functions.runtime.errors import AiaasError, NotFound, StoreError
from functions.runtime.s3store import S3Store, make_s3_client
from functions.runtime.store import (
    MULTIPART_THRESHOLD,
    LocalStore,
    ObjectExists,
    ObjectStore,
    open_store,
)
from tests.s3server import MotoServer, free_port


def test_bytes_round_trip_and_overwrite(store: ObjectStore) -> None:
    store.put_bytes("a/b/c.bin", b"one")
    assert store.get_bytes("a/b/c.bin") == b"one"
    store.put_bytes("a/b/c.bin", b"two")
    assert store.get_bytes("a/b/c.bin") == b"two"
    info = store.head("a/b/c.bin")
    assert (info.key, info.size) == ("a/b/c.bin", 3) and info.etag
    assert store.exists("a/b/c.bin") and not store.exists("a/b/zzz")


def test_missing_objects_are_not_found(store: ObjectStore, tmp_path: Path) -> None:
    for read in (
        lambda: store.get_bytes("nope/x"),
        lambda: store.head("nope/x"),
        lambda: store.download_file("nope/x", tmp_path / "x"),
    ):
        with pytest.raises(NotFound, match="no object 'nope/x'") as caught:
            read()
        assert caught.value.status == HTTPStatus.NOT_FOUND
    with pytest.raises(NotFound), store.open_read("nope/x"):
        pass


def test_conditional_write_refuses_an_existing_key(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes("k/manifest.json", b"first", if_absent=True)
    with pytest.raises(ObjectExists, match=r"'k/manifest\.json' already exists") as caught:
        store.put_bytes("k/manifest.json", b"second", if_absent=True)
    assert caught.value.status == HTTPStatus.CONFLICT
    src = tmp_path / "src"
    src.write_bytes(b"third")
    with pytest.raises(ObjectExists):
        store.upload_file(src, "k/manifest.json", if_absent=True)
    assert store.get_bytes("k/manifest.json") == b"first"


def test_concurrent_conditional_writes_have_one_winner(store: ObjectStore) -> None:
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            store.put_bytes("race/key", f"writer {i}".encode(), if_absent=True)
            outcomes.append(f"won {i}")
        except ObjectExists:
            outcomes.append("lost")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1 and outcomes.count("lost") == 5
    assert store.get_bytes("race/key") == f"writer {winners[0].split()[1]}".encode()


def test_streaming_write_then_read(store: ObjectStore) -> None:
    chunk = os.urandom(64 * 1024)
    with store.open_write("stream/data.bin") as out:
        for _ in range(8):
            out.write(chunk)
        # Nothing is visible until the writer closes: readers never see half an object.
        assert not store.exists("stream/data.bin")
    with store.open_read("stream/data.bin") as handle:
        parts = iter(lambda: handle.read(100_000), b"")
        assert b"".join(parts) == chunk * 8


def test_failed_streaming_write_leaves_no_object(store: ObjectStore) -> None:
    store.put_bytes("stream/keep.bin", b"old")
    with pytest.raises(RuntimeError), store.open_write("stream/keep.bin") as out:
        out.write(b"new, half written")
        raise RuntimeError("producer died")
    assert store.get_bytes("stream/keep.bin") == b"old"
    assert list(store.list_keys("stream")) == ["stream/keep.bin"]


def test_file_transfer_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(os.urandom(300_000))
    store.upload_file(src, "m/model.onnx")
    store.download_file("m/model.onnx", tmp_path / "copy.onnx")
    assert (tmp_path / "copy.onnx").read_bytes() == src.read_bytes()


def test_listing_keys_and_dirs(store: ObjectStore) -> None:
    for key in ("models/b/versions/1/x", "models/a/versions/2/y", "models/a/aliases/p.json"):
        store.put_bytes(key, b"")
    store.put_bytes("other/z", b"")
    assert list(store.list_keys("models/a")) == [
        "models/a/aliases/p.json",
        "models/a/versions/2/y",
    ]
    assert store.list_dirs("models") == ["a", "b"]
    assert store.list_dirs("models/a") == ["aliases", "versions"]
    assert store.list_dirs("nothing") == [] and list(store.list_keys("nothing")) == []
    store.delete("models/a/aliases/p.json")
    store.delete("models/a/aliases/p.json")  # deleting twice is fine
    assert not store.exists("models/a/aliases/p.json")


def test_keys_cannot_escape(store: ObjectStore) -> None:
    for key in ["", "/abs", "a/../b", "../x", "a//b", "./a", "a/."]:
        with pytest.raises(AiaasError, match="invalid storage key"):
            store.put_bytes(key, b"x")
        with pytest.raises(AiaasError, match="invalid storage key"):
            store.get_bytes(key)


def test_local_writes_leave_no_temp_files(local_store: LocalStore) -> None:
    local_store.put_bytes("d/x", b"1")
    local_store.put_bytes("d/x", b"2")
    with pytest.raises(ObjectExists):
        local_store.put_bytes("d/x", b"3", if_absent=True)
    assert sorted(p.name for p in (local_store.root / "d").iterdir()) == ["x"]


def test_local_streamed_writes_hand_pages_to_the_disk_and_keep_every_byte(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_parts, "WRITEBACK_BYTES", 4096)
    advised: list[tuple[int, int]] = []
    fadvise = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length))
        fadvise(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    pieces = [bytes([i]) * (1000 + i) for i in range(40)]
    with local_store.open_write("big/object") as out:
        for piece in pieces:
            out.write(piece)
    assert local_store.get_bytes("big/object") == b"".join(pieces)
    assert len(advised) >= 8 and all(offset == 0 for offset, _ in advised)  # ~every 4 KiB
    assert [length for _, length in advised] == sorted(length for _, length in advised)


def test_local_reader_sees_old_or_new_never_partial(local_store: LocalStore) -> None:
    old, new = b"a" * 2_000_000, b"b" * 2_000_000
    local_store.put_bytes("k", old)
    seen: set[bytes] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(local_store.get_bytes("k"))

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(10):
        local_store.put_bytes("k", new)
        local_store.put_bytes("k", old)
    done.set()
    reader.join()
    assert seen <= {old, new}


def test_s3_large_upload_goes_multipart_and_round_trips(s3_store: S3Store, tmp_path: Path) -> None:
    big = tmp_path / "big.onnx"
    big.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024 * 1024))
    s3_store.upload_file(big, "big/model.onnx")
    info = s3_store.head("big/model.onnx")
    # A multipart object's ETag is md5-of-part-md5s followed by "-<parts>".
    assert info.size == big.stat().st_size and info.etag.endswith("-2")
    s3_store.download_file("big/model.onnx", tmp_path / "back.onnx")
    assert (tmp_path / "back.onnx").read_bytes() == big.read_bytes()


def test_s3_streaming_write_of_a_large_object_goes_multipart(s3_store: S3Store) -> None:
    block = os.urandom(1024 * 1024)
    with s3_store.open_write("big/stream.bin") as out:
        for _ in range(17):
            out.write(block)
    assert s3_store.head("big/stream.bin").etag.endswith("-2")
    with s3_store.open_read("big/stream.bin") as body:
        assert body.read(len(block)) == block


def test_s3_keys_live_under_the_prefix(s3_store: S3Store) -> None:
    s3_store.put_bytes("models/m/x", b"1")
    listed = make_s3_client().list_objects_v2(Bucket=s3_store.bucket)
    assert [o["Key"] for o in listed["Contents"]] == ["registry/models/m/x"]
    assert s3_store.uri == f"s3://{s3_store.bucket}/registry"


def test_s3_client_honours_endpoint_and_standard_retries(moto_server: MotoServer) -> None:
    client = make_s3_client()
    assert client.meta.endpoint_url == moto_server.endpoint
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}  # type: ignore[attr-defined]


def test_s3_dead_endpoint_is_a_store_error_after_retries(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    client = make_s3_client()
    attempts: list[str] = []
    client.meta.events.register("before-send.s3", lambda **kw: attempts.append("try"))
    store = S3Store(s3_bucket, "p", client=client)
    with pytest.raises(StoreError, match="Could not connect") as caught:
        store.get_bytes("k")
    assert caught.value.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert caught.value.public_message == "model is not available"
    assert len(attempts) == 2  # AIAAS_S3_MAX_ATTEMPTS=2 in conftest: one try, one retry


def test_s3_missing_bucket_is_a_store_error(moto_server: MotoServer) -> None:
    store = S3Store("aiaas-no-such-bucket", "p")
    with pytest.raises(StoreError, match=r"S3 bucket .aiaas-no-such-bucket. does not exist"):
        store.get_bytes("k")


def test_open_store_from_uri_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer
) -> None:
    local = open_store(str(tmp_path / "s"))
    assert isinstance(local, LocalStore) and local.uri == str(tmp_path / "s")
    s3 = open_store("s3://bucket-x/some/prefix/")
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("bucket-x", "some/prefix")
    monkeypatch.setenv("AIAAS_STORE", "s3://bucket-y")
    from_env = open_store()
    assert isinstance(from_env, S3Store) and from_env.uri == "s3://bucket-y"
    monkeypatch.delenv("AIAAS_STORE")
    monkeypatch.chdir(tmp_path)
    default = open_store()
    assert isinstance(default, LocalStore) and default.root == tmp_path / ".aiaas" / "store"


def test_s3_large_conditional_upload_is_conditional_too(s3_store: S3Store, tmp_path: Path) -> None:
    big = tmp_path / "big.onnx"
    big.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024))
    s3_store.upload_file(big, "big/model.onnx", if_absent=True)
    assert s3_store.head("big/model.onnx").etag.endswith("-2")
    other = tmp_path / "other.onnx"
    other.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024))
    with pytest.raises(ObjectExists, match=r"'big/model\.onnx' already exists"):
        s3_store.upload_file(other, "big/model.onnx", if_absent=True)
    s3_store.download_file("big/model.onnx", tmp_path / "back.onnx")
    assert (tmp_path / "back.onnx").read_bytes() == big.read_bytes()
    # The refused upload was aborted, not left behind to be billed.
    pending = make_s3_client().list_multipart_uploads(Bucket=s3_store.bucket)
    assert pending.get("Uploads", []) == []


@pytest.mark.parametrize("size", [1000, MULTIPART_THRESHOLD + 1024], ids=["put", "multipart"])
def test_a_staged_file_is_hashed_as_sent_and_unseen_until_committed(
    store: ObjectStore, tmp_path: Path, size: int
) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(os.urandom(size))
    staged = store.stage_file(src, "v/weights.bin", if_absent=True)
    assert (staged.sha256, staged.size) == (hashlib.sha256(src.read_bytes()).hexdigest(), size)
    assert not store.exists("v/weights.bin") and list(store.list_keys("v")) == []
    staged.commit()
    assert store.get_bytes("v/weights.bin") == src.read_bytes()
    # A claim on a taken key is refused at commit; an aborted one leaves nothing anywhere.
    src.write_bytes(os.urandom(size))
    with pytest.raises(ObjectExists):
        store.stage_file(src, "v/weights.bin", if_absent=True).commit()
    store.stage_file(src, "v/other.bin").abort()
    assert list(store.list_keys("v")) == ["v/weights.bin"]
    assert store.get_bytes("v/weights.bin") != src.read_bytes()
    if isinstance(store, S3Store):  # neither left parts behind to be billed
        pending = make_s3_client().list_multipart_uploads(Bucket=store.bucket)
        assert pending.get("Uploads", []) == []
    else:  # nor temp files
        assert sorted(p.name for p in (tmp_path / "store" / "v").iterdir()) == ["weights.bin"]


# ---- the wider interface: ranged reads, copies, location -----------------------------------


@pytest.mark.parametrize("start", [0, 1, 9, 10])
def test_open_read_from_a_byte_offset(store: ObjectStore, start: int) -> None:
    store.put_bytes("batch/m/input/rows.csv", b"0123456789")
    with store.open_read("batch/m/input/rows.csv", start) as stream:
        assert stream.read() == b"0123456789"[start:]


def test_copy_within_the_store(store: ObjectStore) -> None:
    store.put_bytes("uploads/a.csv", b"x_0\n1\n")
    store.copy("uploads/a.csv", "batch/m/input/a.csv")
    assert store.get_bytes("batch/m/input/a.csv") == b"x_0\n1\n"
    assert store.get_bytes("uploads/a.csv") == b"x_0\n1\n"
    with pytest.raises(NotFound):
        store.copy("uploads/none.csv", "batch/m/input/none.csv")
    assert not store.exists("batch/m/input/none.csv")


def test_location_names_the_bucket_events_carry(local_store: LocalStore, s3_store: S3Store) -> None:
    assert (local_store.location.bucket, local_store.location.key_prefix) == ("aiaas-local", "")
    assert not local_store.location.notifies  # the caller fires local events itself
    assert s3_store.location.bucket == s3_store.bucket and s3_store.location.notifies
    assert s3_store.location.key_prefix == f"{s3_store.prefix}/"


def test_no_module_checks_a_store_concrete_type_or_private_parts() -> None:
    """Code that takes an ObjectStore uses its interface, so a new store needs no other change."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"isinstance\([^)]*(S3Store|LocalStore)\)|store\._[a-z]")
    offenders = [
        str(path.relative_to(repo))
        for folder in ("functions", "infra", "training")
        for path in (repo / folder).rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert offenders == []


def test_os_errors_of_the_directory_store_are_store_errors(tmp_path: Path) -> None:
    """A file where the store expects a folder stands in for a read-only or broken disk (the
    tests run as root, whom permissions do not stop): every operation names the object."""
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "models").write_bytes(b"not a folder")
    store = LocalStore(tmp_path / "store")
    with pytest.raises(
        StoreError, match=r"cannot use 'models/m/aliases/p\.json' under .*: Not a directory"
    ):
        store.put_bytes("models/m/aliases/p.json", b"{}")
    with pytest.raises(StoreError, match="Not a directory"):
        store.put_bytes("models/m/aliases/p.json", b"{}", if_match="abc")
    with pytest.raises(StoreError, match="Not a directory"):
        store.get_bytes("models/m/aliases/p.json")
    with pytest.raises(StoreError, match="Not a directory"), store.open_write("models/m/x") as out:
        out.write(b"x")
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["models"]  # nothing left


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("AccessDenied", "S3 refused access to s3://b/registry/models/m (AccessDenied): check"),
        ("SlowDown", "S3 is throttling requests to s3://b/registry/models/m (SlowDown)"),
        ("NoSuchBucket", "S3 bucket 'b' does not exist (store s3://b/registry)"),
    ],
)
def test_s3_refusals_say_what_to_check(code: str, message: str) -> None:
    """botocore's own exception type, as the client raises it for these S3 answers (moto's
    server does not enforce IAM or throttle, so the answer is built here)."""
    from botocore.exceptions import ClientError

    error = ClientError({"Error": {"Code": code, "Message": "..."}}, "GetObject")
    mapped = S3Store("b", "registry")._error(error, "models/m")
    assert isinstance(mapped, StoreError) and mapped.message.startswith(message)
    assert mapped.status == HTTPStatus.SERVICE_UNAVAILABLE


def test_a_delete_removes_the_folders_it_leaves_empty(tmp_path: Path) -> None:
    """As on S3, where a prefix without objects does not exist: a swept run's work folder
    stayed, empty, in every listing of the directory store's work folders."""
    store = LocalStore(tmp_path / "store")
    store.put_bytes("batch/m/work/run1/part-0.body", b"x")
    store.put_bytes("batch/m/work/run1/plan.json", b"[]")
    store.put_bytes("batch/m/input/a.csv", b"x")
    store.delete("batch/m/work/run1/part-0.body")
    assert store.list_dirs("batch/m/work") == ["run1"]  # its plan is still there
    store.delete("batch/m/work/run1/plan.json")
    assert store.list_dirs("batch/m") == ["input"]  # work/run1 and work/ went; input/ stays
    store.delete("batch/m/input/a.csv")
    assert store.root.is_dir() and [p.name for p in store.root.iterdir()] == [".tmp-generation"]
    store.put_bytes("batch/m/work/run2/plan.json", b"[]")  # a writer makes them again
    assert store.list_dirs("batch/m/work") == ["run2"]
