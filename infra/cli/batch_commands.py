"""`aiaas batch MODEL FILE`: drop a file into the store's batch input and have it scored.

Locally (the default) the file is uploaded and the same SQS-wrapped S3 notification the cloud
would deliver is handed to the batch function's handler in this process; `--shards N` runs the
state machine's plan -> shards -> merge in a process pool instead. With `--deployed` the file is
only uploaded: the stack's S3 -> SQS notification does the rest, and `--wait` polls for the
run's summary (batch_wait.py), showing meanwhile what the store tells of the run. The input's
checks are batch_input.py's, the summary's printing batch_report.py's.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from functions.batch.events import s3_notification, store_location
from functions.batch.service import BatchService
from functions.runtime.batch.job import Told
from functions.runtime.batch.layout import BATCH_PREFIX, BatchObject
from functions.runtime.batch.npy import HEADER_READ, BadArrayFile, parse_npy_header
from functions.runtime.batch.records import RunSummary
from functions.runtime.batch.run import RunInput, finished_summary, may_publish
from functions.runtime.batch.settings import DEFAULT_CHUNK_ROWS, BatchSettings
from functions.runtime.batch.shard_pool import run_sharded_locally
from functions.runtime.batch.status import RunStatus
from functions.runtime.errors import AiaasError, BadRequest
from functions.runtime.pool import ModelPool
from functions.runtime.refs import DEFAULT_VERSION
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore, open_store
from infra.cli.arg_types import wait, whole
from infra.cli.batch_input import checked_input
from infra.cli.batch_report import failed_doc, print_json, report, report_json
from infra.cli.batch_undo import discard, drop, keep_aside, landed, leftovers
from infra.cli.batch_wait import wait_for_summary
from infra.cli.row_progress import Progress, add_flag
from infra.cli.stop_signals import stopped_by_signals

log = logging.getLogger("aiaas.batch")


# What one machine can use: more shards than this write a plan of tiny shards, more workers
# than this only queue for the same CPUs, a bigger chunk only holds more memory at once.
MAX_SHARDS = 10_000
MAX_WORKERS = 256
MAX_CHUNK_ROWS = 10_000_000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "batch",
        help="score a CSV, JSONL or NPY file with a model (S3 -> SQS -> batch function)",
        description="Upload FILE to batch/<model>/input/ and score it into batch/<model>/output/.",
    )
    p.add_argument("model", help=f"model name; {DEFAULT_VERSION} scores")
    p.add_argument(
        "file",
        type=Path,
        help="a .csv, .jsonl (.ndjson) or .npy file; text may be gzipped (.csv.gz)",
    )
    p.add_argument("--name", help="object name under input/ (default: the file's name)")
    p.add_argument(
        "--shards",
        type=whole(1, MAX_SHARDS),
        default=1,
        help="split into N shards scored in parallel (default 1)",
    )
    p.add_argument(
        "--workers",
        type=whole(1, MAX_WORKERS),
        help="processes for --shards (default: min(N, CPUs))",
    )
    p.add_argument(
        "--chunk-rows",
        type=whole(1, MAX_CHUNK_ROWS),
        help="rows read, scored and written at a time (default: $AIAAS_BATCH_CHUNK_ROWS, else "
        f"{DEFAULT_CHUNK_ROWS})",
    )
    p.add_argument(
        "--deployed", action="store_true", help="only upload: the deployed stack's events score it"
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="with --deployed: wait for the summary (a local run always waits)",
    )
    p.add_argument("--timeout", type=wait, default=900.0, help="seconds --wait waits (900)")
    add_flag(p, "a local run or --wait")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the run's summary as one JSON document (for scripts) instead; exit 1 when "
        "the run failed, 0 when it ran, whatever its failed_rows",
    )
    p.set_defaults(func=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    with stopped_by_signals():
        return _batch(args)


def _batch(args: argparse.Namespace) -> int:
    if args.deployed and args.shards != 1:  # before the upload, which the stack would score
        raise BadRequest("--shards applies to local runs; the stack shards big inputs itself")
    store = open_store(args.store)
    obj = checked_input(store, args)
    if args.deployed:  # the upload is the whole job: the stack scores what arrived
        store.upload_file(args.file, obj.input_key)
        return _deployed(store, obj, args)
    # Read before the upload, so a bad AIAAS_BATCH_* value does not first send the whole file.
    settings = BatchSettings.from_env(chunk_rows=args.chunk_rows)
    leftovers(store, obj)  # the copies SIGKILLed re-runs of this name kept aside
    before = store.version(obj.input_key)  # an earlier input of that name, never ours to remove
    # The earlier input, kept aside while this upload replaces it: put back if this run fails.
    kept = keep_aside(store, obj) if before is not None else None
    uploaded: str | None = None
    run: RunInput | None = None
    try:  # from before the upload: a stop as it lands (S3 shows it first) leaves nothing either
        store.upload_file(args.file, obj.input_key)
        info = store.head(obj.input_key)
        uploaded = info.etag
        run = RunInput(obj, store_location(store)[0], info)
        try:
            return _run_locally(store, run, settings, args)
        except AiaasError as exc:
            if args.json:  # a run that failed without its summary is a document too (--json)
                print_json(store.uri.rstrip("/"), failed_doc(run, exc), None)
            raise
    except BaseException:  # interrupted, or failed without a summary (the store, a bug)
        if discard(store, obj, run, uploaded or landed(store, obj, before), kept):
            kept = None  # not put back: the only copy of the earlier input stays where it is
        raise
    finally:
        if kept is not None:
            drop(store, kept)


def _deployed(store: ObjectStore, obj: BatchObject, args: argparse.Namespace) -> int:
    uri = store.uri.rstrip("/")
    if not args.json:
        print(f"uploaded {args.file} to {uri}/{obj.input_key}")
    if not store.location.notifies:  # "output will appear" there, and --wait, waited for good
        # The same --name, or the command scores the file under its own name instead.
        named = "" if obj.file == Path(args.file).name else f" --name {obj.file}"
        print(
            "note: a directory store sends no events: nothing scores it until "
            f"`aiaas batch {args.model} {args.file}{named}` (without --deployed), `aiaas invoke "
            "BatchFunction -e EVENT` or a job put to `aiaas serve`'s control plane "
            "(docs/batch.md)",
            file=sys.stderr,
        )
    if args.wait:
        run = RunInput(obj, store_location(store)[0], store.head(obj.input_key))
        summary = wait_for_summary(store, run, args.timeout, show=not args.no_progress)
        return (report_json if args.json else report)(uri, summary)
    if args.json:
        print_json(uri, {"input": obj.input_key, "output": obj.output_key}, obj)
    else:
        print(f"output will appear at {uri}/{obj.output_key}")
    return 0


def _run_locally(
    store: ObjectStore, run: RunInput, settings: BatchSettings, args: argparse.Namespace
) -> int:
    uri = store.uri.rstrip("/")
    if not args.json:
        print(f"uploaded {args.file} to {uri}/{run.obj.input_key}")
    done = finished_summary(store, run)
    if done is not None:
        _scored_by_the_model_now(store, done, args)
        if not args.json:
            # S3: the same bytes again have the same ETag, so the same run id: not scored twice.
            print("already scored: this version of the input has a finished run; nothing redone")
    try:
        _score_locally(store, run, settings, args)
    except AiaasError:  # a sharded run stops at the first shard that finds the input replaced
        if _replaced(store, run):
            raise _replaced_error(run, args) from None
        raise
    summary = finished_summary(store, run)
    if summary is None:
        if _replaced(store, run):  # the run saw it too, and rightly published nothing
            raise _replaced_error(run, args)
        raise AiaasError(f"the run wrote no summary at {uri}/{run.obj.summary_key}")
    return (report_json if args.json else report)(uri, summary)


def _scored_by_the_model_now(
    store: ObjectStore, done: RunSummary, args: argparse.Namespace
) -> None:
    """A finished run of these bytes answers only when the model serves its version still."""
    scored_by = done.get("version")
    now = Registry(store).resolve(args.model).version
    if scored_by is None or scored_by == now:
        return
    name, renamed = args.name or Path(args.file).name, _renamed(args, f"-v{now}")
    did = f"{args.model}:{scored_by} already scored these very bytes of {name}"
    if done.get("status") == RunStatus.FAILED:  # it scored no row: say why
        why = str(done.get("error"))[:300]
        did = f"the run of these very bytes of {name} with {args.model}:{scored_by} failed ({why})"
    raise BadRequest(
        f"{did}, and {args.model} is now {args.model}:{now}; a run is kept per upload, so score "
        f"them with {now} under another name: aiaas batch {args.model} {args.file} --name {renamed}"
    )


def _replaced(store: ObjectStore, run: RunInput) -> bool:
    """Whether another upload of the input's name landed since the run read it."""
    try:
        return not may_publish(store, run)
    except AiaasError:  # the store is down: say what the run failed of, not this
        return False


def _replaced_error(run: RunInput, args: argparse.Namespace) -> AiaasError:
    return AiaasError(
        f"{run.obj.input_key} was replaced in the store while this run scored it (another "
        "upload of that name), so it published nothing: the output is the newer version's, "
        "scored by its own run (a deployed stack's event; here `aiaas batch` of that file). "
        "To score this file too, upload it under another name: "
        f"aiaas batch {args.model} {args.file} --name {_renamed(args, '-2')}"
    )


def _renamed(args: argparse.Namespace, tag: str) -> str:
    """The object name with `tag` before its extensions: rows.csv.gz -> rows-v2.csv.gz."""
    name = str(args.name or Path(args.file).name)
    suffix = "".join(Path(name).suffixes)
    return f"{name[: len(name) - len(suffix)]}{tag}{suffix}"


def _score_locally(
    store: ObjectStore, run: RunInput, settings: BatchSettings, args: argparse.Namespace
) -> None:
    # What an earlier run killed outright (SIGKILL, OOM) left: temp files no writer holds.
    swept = store.remove_abandoned(f"{BATCH_PREFIX}/{run.obj.model}")
    if swept:
        log.info("removed %d temp file(s) that killed runs left under %s", swept, BATCH_PREFIX)
    pool = ModelPool(Registry(store))
    what = f"{run.obj.model} batch {run.obj.input_key.rsplit('/', 1)[-1]}"
    show = not args.no_progress
    with Progress(what, verb="scored", of=_extent(args.file, run), show=show) as shown:
        if args.shards > 1:
            run_sharded_locally(
                store, pool, run, args.shards, settings, workers=args.workers, progress=shown
            )
        else:
            _fire_event(store, pool, run, settings, shown.add)


def _extent(path: Path, run: RunInput) -> int | None:
    """What the run reads, as its chunks tell it: bytes (text), rows (NPY); None for a gzip."""
    if run.obj.compressed:
        return None
    if run.obj.format != "npy":
        return run.info.size
    try:  # the header alone, as the run reads it (numpy's memmap warned of overflows)
        with path.open("rb") as handle:
            return parse_npy_header(handle.read(HEADER_READ), str(path)).rows
    except (BadArrayFile, OSError):  # not an array it reads: no percent; the run says why
        return None


def _fire_event(
    store: ObjectStore,
    pool: ModelPool,
    run: RunInput,
    settings: BatchSettings,
    progress: Told | None = None,
) -> None:
    """Hand the handler the notification S3 sends for this upload, as the deployed stack's
    function gets it (less the SQS envelope: a local run has no queue, and the SQS route's
    "message ... returns to the queue" line was wrong under a failed run's error line)."""
    from functions.batch.dispatch import dispatch

    bucket, prefix = store_location(store)
    notification = s3_notification(bucket, prefix + run.obj.input_key, run.info.etag, run.info.size)
    try:
        dispatch(BatchService(store, pool, settings, progress), notification)
    except AiaasError:
        raise
    except Exception as exc:  # a bug in the function: said as the function's, traceback with -v
        raise AiaasError(f"the batch function failed: {exc!r}") from exc
