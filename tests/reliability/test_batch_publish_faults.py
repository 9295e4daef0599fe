"""A batch run whose publishing breaks half way, on S3 and on a directory store: a reader never
sees this run's errors beside an older run's output, a summary never vouches for objects of two
runs, and the re-delivery publishes the new run whole.

The faults are real ones: on S3 the proxy in front of moto (`s3faults.py`) cuts the PUT of one
object; on a directory store the rename that publishes one object fails with EIO, as a failing
disk answers (the one call patched: a disk that fails one rename cannot be made without root).
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.batch.handler import dispatch
from functions.control.jobs import JobBook
from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.run import RunInput
from functions.runtime.batch.shards import merge_run, plan_run, score_shard
from functions.runtime.errors import StoreError
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from tests.batch_support import (
    features_csv,
    pool,
    publish_classifier,
    run_settings,
    service,
    sqs_for,
)
from tests.reliability.s3faults import FaultyS3Proxy, proxied
from tests.s3server import MotoServer

KEY, OTHER = "batch/iris/input/a.csv", "batch/iris/input/b.csv"
OUT = "batch/iris/output/a.csv"
ERRORS, SUMMARY = f"{OUT}.errors.jsonl", f"{OUT}.summary.json"
WORK = "/batch/iris/work/"
# Chunks of 4 rows in the sharded runs: the first shard holds the first chunk whole, so with
# the default chunk size these 12 rows are all the first shard's and the second is empty.
SHARD_CHUNK_ROWS = 4


def version(seed: int, bad_row: int) -> bytes:
    """An input whose row `bad_row` is not a number: each version has its own errors."""
    lines = features_csv(np.random.default_rng(seed).normal(size=(12, 4))).splitlines()
    lines[bad_row + 1] = f"r{bad_row},1,oops,3,4"
    return ("\n".join(lines) + "\n").encode()


V1, V2 = version(1, bad_row=1), version(2, bad_row=3)
V2_ERRORS = b'{"line": 5, "error": "column \'x_1\' is not a number: \'oops\'"}\n'


@dataclass
class Breakable:
    """A store, and switches that make it fail: publishing one key (None: heal), and deleting
    anything under a run's work folder."""

    store: ObjectStore
    fail: Callable[[str | None], None]
    fail_work_deletes: Callable[[bool], None]
    bucket: str


def local_breakable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Breakable:
    store = LocalStore(tmp_path / "store")
    failing: list[Path] = []
    deletes = {"fail": False}
    real_replace, real_unlink = Path.replace, Path.unlink

    def replace(self: Path, target: Any) -> Path:
        if Path(target) in failing:
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(self, target)

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if deletes["fail"] and WORK in self.as_posix():
            raise PermissionError(errno.EACCES, "Permission denied")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)

    def fail(key: str | None) -> None:
        failing[:] = [store.root / key] if key else []

    return Breakable(store, fail, lambda on: deletes.update(fail=on), "aiaas-local")


@pytest.fixture(params=["local", "s3"])
def broken(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Breakable]:
    if request.param == "local":
        yield local_breakable(tmp_path, monkeypatch)
        return
    proxy = request.getfixturevalue("proxy")
    store = S3Store(request.getfixturevalue("s3_bucket"), "registry")  # through the proxy

    def fail(key: str | None) -> None:
        proxy.cut_put_key = f"{store.prefix}/{key}" if key else None

    def fail_work_deletes(on: bool) -> None:
        proxy.deny_delete = WORK if on else None

    yield Breakable(store, fail, fail_work_deletes, store.bucket)


@pytest.fixture
def proxy(
    moto_server: MotoServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultyS3Proxy]:
    with proxied(moto_server.port, monkeypatch) as faults:
        yield faults


def summary_of(store: ObjectStore) -> dict[str, Any]:
    return json.loads(store.get_bytes(SUMMARY))  # type: ignore[no-any-return]


def single_run(broken: Breakable, workdir: Path) -> bool:
    """The SQS message for a.csv, beside one for b.csv; True when a.csv's message succeeded."""
    store = broken.store
    answer = dispatch(service(store, workdir), sqs_for(store, KEY, OTHER))
    assert store.exists("batch/iris/output/b.csv.summary.json")  # the other message is scored
    return answer == {"batchItemFailures": []}


def sharded_run(broken: Breakable, workdir: Path) -> bool:
    """Plan, two shards, merge (the state machine's steps); True when the merge succeeded."""
    store = broken.store
    obj = parse_input_key(KEY)
    assert obj is not None
    models = pool(store, workdir)
    run_input = RunInput(obj, broken.bucket, store.head(KEY))
    plan = plan_run(store, models, run_input, 2, run_settings(SHARD_CHUNK_ROWS))
    if "plan_key" not in plan:
        return True
    for item in json.loads(store.get_bytes(plan["plan_key"])):
        score_shard(store, models, item, run_settings())
    try:
        merge_run(store, plan)
    except StoreError:
        return False
    return True


@pytest.mark.parametrize("scoring", [single_run, sharded_run], ids=["single", "sharded"])
@pytest.mark.parametrize("failing", [OUT, ERRORS], ids=["output-fails", "errors-fail"])
def test_a_run_that_fails_to_publish_never_pairs_its_errors_with_an_older_output(
    broken: Breakable, tmp_path: Path, scoring: Callable[[Breakable, Path], bool], failing: str
) -> None:
    store = broken.store
    publish_classifier(store, tmp_path)
    store.put_bytes(KEY, V1)
    store.put_bytes(OTHER, V1)
    assert scoring(broken, tmp_path)
    old_output, old_errors, old_summary = (
        store.get_bytes(OUT),
        store.get_bytes(ERRORS),
        summary_of(store),
    )
    assert old_summary["status"] == "succeeded" and old_errors != V2_ERRORS

    store.put_bytes(KEY, V2)
    broken.fail(failing)
    assert not scoring(broken, tmp_path)
    # The summary no longer vouches for the old run, nor yet for the new one: a reader waits.
    summary = summary_of(store)
    assert summary["status"] == "publishing"
    assert summary["run_id"] != old_summary["run_id"] and summary["etag"] == store.head(KEY).etag
    assert store.get_bytes(ERRORS) == old_errors  # never the new errors beside the old output
    assert JobBook(store, Registry(store), None).status("iris", "a.csv")["status"] == "pending"
    if failing == OUT:
        assert store.get_bytes(OUT) == old_output  # nothing of the new run is visible

    broken.fail(None)  # the re-delivery (SQS) or the state machine's retry publishes it all
    assert scoring(broken, tmp_path)
    summary = summary_of(store)
    assert (summary["status"], summary["failed_rows"], summary["scored_rows"]) == (
        "succeeded",
        1,
        11,
    )
    assert store.get_bytes(ERRORS) == V2_ERRORS
    assert store.get_bytes(OUT) != old_output
    assert b"r3," not in store.get_bytes(OUT)  # the new version's bad row


def plan_and_score(broken: Breakable, workdir: Path, key: str) -> dict[str, Any]:
    """Plan `key` in two shards and score both: the run merge_run finishes."""
    store = broken.store
    obj = parse_input_key(key)
    assert obj is not None
    models = pool(store, workdir)
    run_input = RunInput(obj, broken.bucket, store.head(key))
    plan = plan_run(store, models, run_input, 2, run_settings(SHARD_CHUNK_ROWS))
    assert plan["status"] == "planned"
    for item in json.loads(store.get_bytes(plan["plan_key"])):
        score_shard(store, models, item, run_settings())
    return dict(plan)


def merged_leaving_work(broken: Breakable, workdir: Path, key: str) -> dict[str, Any]:
    """A sharded run of `key` whose work folder the store refuses to delete after the merge."""
    plan = plan_and_score(broken, workdir, key)
    broken.fail_work_deletes(True)
    summary = merge_run(broken.store, plan)  # committed: the refused cleanup is only logged
    broken.fail_work_deletes(False)
    assert summary["status"] == "succeeded"
    left = list(broken.store.list_keys(plan["work"]))
    assert f"{plan['work']}/plan.json" in left and len(left) > 1
    return plan


def redelivered_message(broken: Breakable, workdir: Path, plan: dict[str, Any]) -> str:
    answer = dispatch(service(broken.store, workdir), sqs_for(broken.store, KEY))
    assert answer == {"batchItemFailures": []}
    return "skipped"


def retried_merge(broken: Breakable, workdir: Path, plan: dict[str, Any]) -> str:
    return merge_run(broken.store, plan)["status"]


def replanned(broken: Breakable, workdir: Path, plan: dict[str, Any]) -> str:
    obj = parse_input_key(KEY)
    assert obj is not None
    run = RunInput(obj, broken.bucket, broken.store.head(KEY))
    return plan_run(broken.store, pool(broken.store, workdir), run, 2, run_settings())["status"]


@pytest.mark.parametrize("again", [redelivered_message, retried_merge, replanned])
def test_work_a_merge_could_not_delete_goes_with_the_next_touch_of_the_run(
    broken: Breakable, tmp_path: Path, again: Callable[[Breakable, Path, dict[str, Any]], str]
) -> None:
    store = broken.store
    publish_classifier(store, tmp_path)
    store.put_bytes(KEY, V1)
    plan = merged_leaving_work(broken, tmp_path, KEY)
    finished = summary_of(store)
    assert again(broken, tmp_path, plan) == "skipped"
    assert list(store.list_keys(plan["work"])) == []
    assert summary_of(store) == finished  # nothing else rewritten


def test_the_next_sharded_run_of_the_model_sweeps_the_work_of_runs_that_are_over(
    broken: Breakable, tmp_path: Path
) -> None:
    store = broken.store
    publish_classifier(store, tmp_path)
    for name in ("a", "b", "c", "d"):
        store.put_bytes(f"batch/iris/input/{name}.csv", V1)
    finished = merged_leaving_work(broken, tmp_path, "batch/iris/input/a.csv")
    replaced = plan_and_score(broken, tmp_path, "batch/iris/input/b.csv")
    store.put_bytes("batch/iris/input/b.csv", V2)  # b's run can never publish now
    in_flight = plan_and_score(broken, tmp_path, "batch/iris/input/c.csv")  # not merged yet

    latest = plan_and_score(broken, tmp_path, "batch/iris/input/d.csv")  # planning sweeps
    assert list(store.list_keys(finished["work"])) == []
    assert list(store.list_keys(replaced["work"])) == []
    # Their folders went too: a directory store kept them, empty, for every sweep to list.
    assert store.list_dirs("batch/iris/work") == sorted(
        plan["work"].rsplit("/", 1)[-1] for plan in (in_flight, latest)
    )
    assert len(list(store.list_keys(in_flight["work"]))) > 1  # a run in flight keeps its parts
    assert merge_run(store, in_flight)["status"] == "succeeded"


def test_recording_a_failure_drops_the_parts_and_never_overwrites_a_finished_run(
    broken: Breakable, tmp_path: Path
) -> None:
    store = broken.store
    publish_classifier(store, tmp_path)
    store.put_bytes(KEY, V1)
    batch = service(store, tmp_path)
    error = {"Error": "States.Timeout", "Cause": "shard 1 timed out"}
    plan = plan_and_score(broken, tmp_path, KEY)
    failed = dispatch(batch, {"aiaas_batch": "fail", "plan": plan, "error": error})
    assert (failed["status"], summary_of(store)["status"]) == ("failed", "failed")
    assert list(store.list_keys(plan["work"])) == []
    assert store.list_dirs("batch/iris/work") == []

    store.put_bytes(KEY, V2)
    plan = merged_leaving_work(broken, tmp_path, KEY)
    finished = summary_of(store)
    # The state machine's catch-all after a committed merge (its cleanup raised, say).
    answer = dispatch(batch, {"aiaas_batch": "fail", "plan": plan, "error": error})
    assert (answer["status"], summary_of(store)) == ("succeeded", finished)
    assert list(store.list_keys(plan["work"])) == []


def test_a_sweep_the_store_refuses_does_not_fail_the_new_run(
    proxy: FaultyS3Proxy, s3_bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = S3Store(s3_bucket, "registry")
    publish_classifier(store, tmp_path)
    store.put_bytes(KEY, V1)
    proxy.deny = "prefix=registry%2Fbatch%2Firis%2Fwork%2F&"  # listing the work folders only
    plan = plan_and_score(Breakable(store, print, print, s3_bucket), tmp_path, KEY)
    assert "could not list batch/iris/work to remove what earlier runs left" in caplog.text
    assert [method for method, path in proxy.seen if proxy.deny in path] == ["GET"]
    proxy.clear()
    assert merge_run(store, plan)["status"] == "succeeded"
