"""A `publish --quantize` variant's answers against its source's: without --data on made-up
rows, and with --data for a model of several values a row and no classes (an embedding, raw
scores, several targets), which cannot be scored against labels. Rows are "the same" as
`output_change` says.

Such a model's made-up rows were not compared at all: the answers came through --data's
scoring, which refuses several values a row, and that refusal was taken for the model refusing
made-up values, so a variant 3.9x off (fp16 clamping a weight) or an int8 LSTM encoder 65% off
was published without a word. Now only a row the source itself refuses is left out; a variant
that fails where its source answers has changed that row; and where nothing could be compared,
publish says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from functions.runtime.codecs import simple
from functions.runtime.drift.watched import prediction_output
from functions.runtime.errors import AiaasError, BadRequest, InvalidInput
from functions.runtime.manifest import ModelManifest
from functions.runtime.probe_outputs import LENGTH, probe_feeds
from infra.cli import output_change
from infra.cli.model_files import total_bytes

if TYPE_CHECKING:
    from functions.runtime.model import LoadedModel

# Without --data: made-up rows each run alone through both files, and the share of them that
# may get another answer before publish warns.
PROBE_ROWS = 64
MAX_PROBE_CHANGED = 0.1
KEPT_DIRECTION = 0.9995  # a lowest cosine over this: said as a change of length alone
CHECK_ON_DATA = "; check it on real rows with --data FILE, which refuses a drop over a point"
# Both comparisons open a serving session of each file (the weights repacked: twice their bytes
# in memory for a moment); from this size on they are skipped and only --data measures.
MAX_COMPARED_BYTES = 2**30


_Answer = tuple[Any, np.ndarray]  # a row's label (None without classes) and output values


def _each_row(
    manifest: ModelManifest, path: Path, feeds: Mapping[str, np.ndarray], rows: Sequence[int]
) -> dict[int, _Answer | str]:
    """The model's answer to each of `rows` of `feeds`, sent alone (its label where it has
    classes, and its prediction output's values), or why it failed."""
    from infra.cli.publish_evaluation import load

    model = load(manifest, path)
    answers: dict[int, _Answer | str] = {}
    for row in rows:
        try:
            outputs = model.predict({name: values[row : row + 1] for name, values in feeds.items()})
        except AiaasError as exc:
            answers[row] = str(exc)[:200]
            continue
        label = None
        if manifest.postprocessing is not None:
            label = simple.encode(manifest, outputs)["predictions"][0]["label"]
        values = np.asarray(outputs[prediction_output(manifest)], np.float64).reshape(-1)
        answers[row] = (label, values)
    return answers


def probe_rows(manifest: ModelManifest) -> dict[str, np.ndarray]:
    """PROBE_ROWS made-up rows, each to be sent alone (so a graph whose batch is fixed at 1
    gets them too); none where an input has no rows (a scalar)."""
    inputs = tuple(
        replace(spec, shape=(-1, *spec.shape[1:])) if spec.rank else spec
        for spec in manifest.inputs
    )
    feeds = probe_feeds(inputs, PROBE_ROWS, LENGTH)
    if any(v.ndim == 0 or len(v) != PROBE_ROWS for v in feeds.values()):
        return {}
    return feeds


def compare_on_probe(
    source: tuple[ModelManifest, Path], variant: tuple[ModelManifest, Path]
) -> dict[str, Any]:
    """Both files' answers to PROBE_ROWS made-up rows (features at scales 0 to 10,000), each row
    alone: how many changed (`output_change`: a label, a value by over 1%, a row of several
    values by over 2% in L2); a row the variant fails on where the source answers it is
    changed. {"skipped": why} where nothing could be compared: the source takes no rows,
    refuses every one, or is over MAX_COMPARED_BYTES (rows it refuses say nothing about its
    variant; a failure of the comparison itself is never taken for one)."""
    if total_bytes(source[1]) > MAX_COMPARED_BYTES:
        return {"skipped": "its source is over 1 GiB (two more sessions would hold it twice)"}
    feeds = probe_rows(source[0])
    if not feeds:
        return {"skipped": "the model takes no rows (an input without a batch dimension)"}
    before = _each_row(*source, feeds, range(PROBE_ROWS))
    answered = {row: answer for row, answer in before.items() if not isinstance(answer, str)}
    if not answered:
        return {"skipped": f"the model refuses made-up rows ({before[0]})"}
    after = _each_row(*variant, feeds, list(answered))
    record = _compared(answered, after, classified=source[0].postprocessing is not None)
    if len(answered) < PROBE_ROWS:
        record["source_refused"] = PROBE_ROWS - len(answered)
    return record


def _compared(
    before: dict[int, _Answer], after: dict[int, _Answer | str], *, classified: bool
) -> dict[str, Any]:
    """How many rows changed: a row the variant failed on, or answered another label or
    another number of values, and (without classes) values `output_change` counts changed."""
    failed = {row: a for row, a in after.items() if isinstance(a, str)}
    fits = [r for r in before if r not in failed and len(after[r][1]) == len(before[r][1])]
    odd = len(before) - len(failed) - len(fits)  # another number of values a row
    if classified:
        changed = sum(before[r][0] != after[r][0] for r in fits)
        record: dict[str, Any] = {"rows": len(before), "changed": int(changed)}
    elif fits:
        stack = [np.stack([side[r][1] for r in fits]) for side in (before, after)]
        record = {**output_change.value_change(*stack), "rows": len(before)}
    else:
        record = {"rows": len(before), "changed": 0}
    record["changed"] += len(failed) + odd
    if failed:
        record["variant_failed"] = len(failed)
        record["variant_error"] = next(iter(failed.values()))
    return record


def probe_note(method: str, probe: Mapping[str, Any]) -> str | None:
    """A warning when many made-up rows got another answer from the variant (or it failed on
    any), a note when none could be compared."""
    if "skipped" in probe:
        return (
            f"the {method} variant was not compared with its source on made-up rows: "
            f"{probe['skipped']}; check it on real rows with --data FILE"
        )
    check = CHECK_ON_DATA
    if probe.get("width", 1) > 1:
        check = "; check it on real rows with --data FILE, which compares their outputs"
    return _change_note(method, probe, "made-up rows (features at scales 0 to 10,000)", check)


def _change_note(
    method: str, change: Mapping[str, Any], rows: str, check: str = CHECK_ON_DATA
) -> str | None:
    failed = change.get("variant_failed", 0)
    if change["changed"] <= change["rows"] * MAX_PROBE_CHANGED and not failed:
        return None
    how = ""
    if change.get("width", 1) > 1:  # several values a row: what "otherwise" means there
        how = f" (rows of {change['width']} values moved by over 2% of their length"
        cosine = change.get("min_cosine")
        if cosine is not None and cosine < KEPT_DIRECTION:
            how += f"; cosine similarity down to {cosine:.3g}"
        elif cosine is not None:  # one scale: 3.9x off, every row pointing the same way
            how += f", their direction kept (cosine similarity over {KEPT_DIRECTION:g})"
        how += ")"
    if failed:
        how += f"; it fails on {failed} of them ({change['variant_error']})"
    return (
        f"warning: the {method} variant answers {change['changed']} of {change['rows']} {rows} "
        f"otherwise than the source{how}{check}"
    )


def several_values(manifest: ModelManifest) -> bool | None:
    """Whether the model answers several values a row and no classes, which --data cannot score
    against labels (an embedding, raw scores, several targets); None where its declared shape
    does not tell (a dimension past the batch is dynamic)."""
    if manifest.postprocessing is not None:
        return False
    spec = next(s for s in manifest.outputs if s.name == prediction_output(manifest))
    if any(dim < 1 for dim in spec.shape[1:]):
        return None
    return math.prod(spec.shape[1:]) > 1


def compare_on_data(
    source: tuple[ModelManifest, Path], variant: tuple[ModelManifest, Path], data: Path,
    target: str | None, *, alone: bool,
) -> dict[str, Any] | None:  # fmt: skip
    """For a model of several values a row and no classes (which --data cannot score), given
    rows without a label column: both files' outputs on them, compared as on made-up rows, and
    with `alone` (int8) the variant's on the first ALONE_ROWS sent one a request against its
    batched ones; None for any other model, scored against the labels (`evaluate`)."""
    from infra.cli.publish_data import read_data
    from infra.cli.publish_evaluation import ALONE_ROWS, load

    several = several_values(source[0])
    if several is False or target is not None:
        return None
    read = read_data(data, source[0], labelled=False)
    if read.column:  # labels to score: evaluate's refusal says why it cannot and what works
        return None
    rows, model = read.inputs, load(*source)
    if several is None and _outputs(model, rows, data, 1, 1).shape[1] == 1:
        return None
    before = _outputs(model, rows, data, model.max_batch_size)
    variant_model = load(*variant)
    after = _outputs(variant_model, rows, data, variant_model.max_batch_size)
    output = prediction_output(source[0])
    record: dict[str, Any] = {"data": data.name, "compared": "outputs", "output": output}
    record |= output_change.value_change(before, after)
    if alone:
        count = min(len(after), ALONE_ROWS)
        single = output_change.value_change(
            after[:count], _outputs(variant_model, rows, data, 1, count)
        )
        same = 1 - single["changed"] / count if count else 1.0
        record["alone"] = {"rows": count, "same_answer_share": round(same, 6),
                           "max_abs_output_diff": single["max_abs_output_diff"]}  # fmt: skip
    return record


def _outputs(
    model: LoadedModel, inputs: Mapping[str, np.ndarray], data: Path, batch: int,
    rows: int | None = None,
) -> np.ndarray:  # fmt: skip
    """The prediction output's values for the first `rows` (all) of `inputs`, `batch` a run, as
    (rows, values); rows the model refuses are a BadRequest naming `data`."""
    count = len(next(iter(inputs.values()))) if rows is None else rows
    raw, chunks = prediction_output(model.manifest), []
    for start in range(0, count, batch):
        chunk = {k: v[start : min(start + batch, count)] for k, v in inputs.items()}
        try:
            answered = model.predict(chunk)[raw]
        except InvalidInput as exc:
            raise BadRequest(f"--data {data}: {exc.public_message}") from None
        values = np.asarray(answered, np.float64)
        chunks.append(values.reshape(len(values), -1))
    return np.concatenate(chunks) if chunks else np.empty((0, 1))


def data_notes(method: str, change: Mapping[str, Any]) -> list[str]:
    """What publish says of a --data comparison of outputs: the figures, the card without
    metrics, and a warning when many rows changed."""
    said = (
        f"output {change['output']!r} holds {change.get('width', 0)} values a row and no classes, "
        f"so the card has no metrics; --data compared the variant's outputs with the source's "
        f"on {change['rows']} rows of {change['data']}: {change['changed']} moved by over 2% of "
        "their length"
    )
    if change.get("median_cosine") is not None:
        said += f" (cosine similarity median {change['median_cosine']:.4g}, lowest {change['min_cosine']:.4g})"
    warning = _change_note(method, change, f"rows of {change['data']}", "")
    return [said] if warning is None else [said, warning]
