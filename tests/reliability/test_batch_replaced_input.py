"""An input replaced while its run publishes: whatever the interleaving, the output, errors and
summary left at the end are the newest version's, exactly as a run of it alone writes them.

The interleavings are forced, not hoped for: on S3 the proxy in front of moto holds one PUT of
the output (its body read, the request in flight) while the test uploads the new version and
runs its handler; on a directory store the same write waits at the store's publish step (the
one hook: a rename cannot be held from outside). The handler gets real SQS events.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.batch.handler import dispatch
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectChanged, ObjectStore
from tests.batch_support import features_csv, publish_classifier, run, service, sqs_for
from tests.reliability.s3faults import HeldPut, proxied
from tests.s3server import MotoServer

KEY = "batch/iris/input/a.csv"
OUT = "batch/iris/output/a.csv"
ERRORS, SUMMARY = f"{OUT}.errors.jsonl", f"{OUT}.summary.json"
DONE: dict[str, list[Any]] = {"batchItemFailures": []}


def version(seed: int, bad_row: int) -> bytes:
    """Twelve rows, one of them (`bad_row`) not a number: each version has its own errors."""
    lines = features_csv(np.random.default_rng(seed).normal(size=(12, 4))).splitlines()
    lines[bad_row + 1] = f"r{bad_row},1,oops,3,4"
    return ("\n".join(lines) + "\n").encode()


OLD, NEW = version(1, bad_row=1), version(2, bad_row=3)


@dataclass
class Racing:
    store: ObjectStore
    hold: Callable[[str], HeldPut]  # the next write of this store key waits for its release
    refused: int  # the status a refused conditional write reports


def local_racing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Racing:
    holds: list[HeldPut] = []
    real = LocalStore._publish

    def publish(self: LocalStore, tmp: Path, key: str, expect: str | None) -> str:
        held = next((h for h in holds if h.key == key and not h.arrived.is_set()), None)
        if held is not None:
            held.arrived.set()
            held.release.wait(60)
        try:
            new = real(self, tmp, key, expect)
        except ObjectChanged:
            if held is not None:
                held.status = 412
            raise
        if held is not None:
            held.status = 200
        return new

    monkeypatch.setattr(LocalStore, "_publish", publish)

    def hold(key: str) -> HeldPut:
        holds.append(HeldPut(key))
        return holds[-1]

    return Racing(LocalStore(tmp_path / "store"), hold, 412)


@pytest.fixture(params=["local", "s3"])
def racing(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Racing]:
    if request.param == "local":
        yield local_racing(tmp_path, monkeypatch)
        return
    moto: MotoServer = request.getfixturevalue("moto_server")
    bucket = request.getfixturevalue("s3_bucket")
    with proxied(moto.port, monkeypatch) as proxy:
        store = S3Store(bucket, "registry")  # its client is made through the proxy
        yield Racing(store, lambda key: proxy.hold_put(f"registry/{key}"), 412)


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(call()), daemon=True)
    thread.start()
    return thread, answers


def handle(store: ObjectStore, workdir: Path) -> Callable[[], Any]:
    """The SQS message S3 sends for the input as it is now, for a handler of its own."""
    event = sqs_for(store, KEY)
    return lambda: dispatch(service(store, workdir), event)


def alone(tmp_path: Path, data: bytes) -> tuple[bytes, bytes, dict[str, Any]]:
    """Output, errors and summary of `data` scored alone, in a store of its own."""
    store = LocalStore(tmp_path / "alone" / "store")
    if not store.exists(SUMMARY):
        publish_classifier(store, tmp_path / "alone")
        store.put_bytes(KEY, data)
        run(store, tmp_path / "alone", KEY)
    summary = json.loads(store.get_bytes(SUMMARY))
    return store.get_bytes(OUT), store.get_bytes(ERRORS), summary


def assert_newest(store: ObjectStore, tmp_path: Path) -> None:
    output, errors, single = alone(tmp_path, NEW)
    summary = json.loads(store.get_bytes(SUMMARY))
    assert (summary["status"], summary["etag"]) == ("succeeded", store.head(KEY).etag)
    assert [summary[k] for k in ("rows", "scored_rows", "failed_rows")] == [
        single[k] for k in ("rows", "scored_rows", "failed_rows")
    ]
    assert store.get_bytes(ERRORS) == errors  # line 5: the new version's bad row
    assert store.get_bytes(OUT) == output


def test_an_older_run_held_until_the_newer_run_committed_publishes_nothing(
    racing: Racing, tmp_path: Path
) -> None:
    store = racing.store
    publish_classifier(store, tmp_path)
    store.put_bytes(KEY, OLD)
    held = racing.hold(OUT)
    older, older_answer = in_thread(handle(store, tmp_path / "older"))
    held.wait()  # the older run checked its input, wrote its marker; its output is in flight

    store.put_bytes(KEY, NEW)  # a new upload, and its own event
    assert handle(store, tmp_path / "newer")() == DONE
    assert_newest(store, tmp_path)

    held.release.set()  # the older output reaches the store after the newer run's commit
    older.join(60)
    assert_newest(store, tmp_path)
    assert held.status == racing.refused  # refused by the store
    assert older_answer == [DONE]  # superseded: final, its message is not retried


def test_a_newer_run_overtaken_by_an_older_write_publishes_again(
    racing: Racing, tmp_path: Path
) -> None:
    store = racing.store
    publish_classifier(store, tmp_path)
    store.put_bytes(KEY, OLD)
    held_old = racing.hold(OUT)
    older, older_answer = in_thread(handle(store, tmp_path / "older"))
    held_old.wait()
    store.put_bytes(KEY, NEW)
    held_new = racing.hold(OUT)
    newer, newer_answer = in_thread(handle(store, tmp_path / "newer"))
    held_new.wait()  # the newer run read the versions and checked its input: it may publish

    held_old.release.set()  # the older output lands first, then its errors; its summary cannot
    older.join(60)
    assert held_old.status == 200
    held_new.release.set()  # refused (the output changed since read): read again, publish again
    newer.join(60)
    assert held_new.status == racing.refused
    assert (older_answer, newer_answer) == ([DONE], [DONE])
    assert_newest(store, tmp_path)
