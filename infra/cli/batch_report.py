"""What `aiaas batch` prints of a run: its summary as text or one JSON document (--json), a
run that failed without one, and the exit code (1: the run failed, why on stderr)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

from functions.runtime.batch.layout import BatchObject, parse_input_key
from functions.runtime.batch.records import RunSummary
from functions.runtime.batch.run import RunInput
from functions.runtime.batch.status import RunStatus
from functions.runtime.errors import AiaasError


def failed_doc(run: RunInput, exc: AiaasError) -> dict[str, object]:
    """What --json prints for a run that ended on an error before its summary was written (the
    store failing as it published): status and error as a failed summary has them, the same
    error as the stderr line; no summary ("summary": null) and no output to read."""
    obj = run.obj
    return {
        "model": obj.model,
        "input": obj.input_key,
        "status": RunStatus.FAILED,
        "error": exc.message,
    }


def print_json(uri: str, doc: Mapping[str, object], obj: BatchObject | None) -> None:
    """Keys as the summary has them (relative to the store), the store, and the summary's key."""
    summary_key = obj.summary_key if obj else None
    print(json.dumps({"store": uri, **doc, "summary": summary_key}, indent=2))


def report_json(uri: str, summary: RunSummary) -> int:
    print_json(uri, summary, parse_input_key(str(summary["input"])))
    return _exit_code(summary)


def _exit_code(summary: RunSummary) -> int:
    """1 for a failed run, with why on stderr in the one-line shape of every CLI error (the
    report stays on stdout); 0 otherwise, bad rows included."""
    if summary["status"] != RunStatus.FAILED:
        return 0
    why = summary.get("error") or "the run failed; its summary says no more"
    print(f"aiaas batch: error: {why}", file=sys.stderr)
    return 1


def report(uri: str, summary: RunSummary) -> int:
    version = summary.get("version")  # none when refused before a version was pinned
    model = f"{summary['model']}:{version}" if version else str(summary["model"])
    # A failed input was not read; a header-only CSV was, and its output is the header.
    failed = summary["status"] == RunStatus.FAILED
    read = summary.get("scored_rows") is not None and (bool(summary.get("rows")) or not failed)
    if read:
        seconds = summary.get("timings", {}).get("total_s")
        took = f" in {seconds:.2f} s" if isinstance(seconds, int | float) else ""
        print(
            f"{summary['status']}: scored {summary['scored_rows']} of {summary['rows']} rows "
            f"with {model}{took}, {summary['failed_rows']} failed"
        )
    else:
        print(f"{summary['status']}: no output with {model}")  # a cut stream read rows
    if summary.get("error") and not failed:  # a failed run's goes to stderr (_exit_code)
        print(f"error: {summary['error']}")
    if read:  # an unread input has neither; a run with no failed row has an empty errors file
        print(f"output:  {uri}/{summary['output']}")
        if summary.get("failed_rows"):
            print(f"errors:  {uri}/{summary['errors']}")
    obj = parse_input_key(str(summary["input"]))
    if obj is not None:
        print(f"summary: {uri}/{obj.summary_key}")
    return _exit_code(summary)
