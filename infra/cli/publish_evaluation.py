"""The accuracy (or error) of a model before and after quantization, on the user's labelled data.

`--data FILE` is read by `publish_data` (JSONL, CSV or NPZ, as `aiaas baseline` and `explain
--file` read theirs). Both files are run as serving runs them (`LoadedModel.predict`, then the
labels the predict API answers): classifiers are scored by accuracy against the label, other
models by RMSE against a number.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime.artifact_files import unlisted_external_data
from functions.runtime.batch.sizes import in_order, is_ragged, picked, size_groups
from functions.runtime.codecs import simple
from functions.runtime.comparison.truth import bool_classes, graph_classes
from functions.runtime.comparison.values import MAX_VALUES
from functions.runtime.drift.watched import prediction_output, value_output
from functions.runtime.errors import BadRequest, InvalidInput
from functions.runtime.manifest import ArtifactFile, ModelManifest
from functions.runtime.model import LoadedModel
from infra.cli.held_out_sizes import at_lines
from infra.cli.output_change import same_share
from infra.cli.publish_data import LabelledData, read_data


def _rows_named(message: str, data: LabelledData, start: int) -> str:
    """`message` with a chunk's `row i` (a text the model's tokenizer refused) as the line it
    is on in the file: `input 'text' row 49 is empty` named the 50th row of the chunk, where
    the file said it on line 51 (hunt_journey6 3); an .npz's row counted from the file's first."""

    def named(match: re.Match[str]) -> str:
        index = start + int(match.group(1))
        return f"on line {data.lines[index]}" if index < len(data.lines) else f"row {index}"

    return re.sub(r"\brow (\d+)\b", named, message)


def load(manifest: ModelManifest, path: Path) -> LoadedModel:
    """The model at `path` as serving loads it, before it is published."""
    return LoadedModel(_listing_own_data(manifest, path), path)


def served_answers(
    model: LoadedModel, data: LabelledData, path: Path, batch: int | None = None
) -> tuple[list[Any], Any]:
    """(the answer per row: label, or the value of the output of one value a row; the raw
    scores: that output or a classifier's scores output, the one drift bins, `prediction_output`);
    rows the model refuses are a BadRequest naming `path`, the --data file they came from. A
    classifier's first output may be skl2onnx's label output, string classes that are no number."""
    manifest = model.manifest
    raw = prediction_output(manifest)
    rows = len(data.labels)
    answers: list[Any] = []
    firsts = []
    batch = batch or model.max_batch_size
    for start in range(0, rows, batch):
        chunk = {k: v[start : start + batch] for k, v in data.inputs.items()}
        try:
            outputs = _predicted(model, chunk)
        except InvalidInput as exc:
            said = at_lines(_rows_named(exc.public_message, data, start), [*data.lines[start:]])
            raise BadRequest(f"--data {path}: {said}") from None
        doc = simple.encode(manifest, outputs)
        first = np.asarray(outputs[raw], dtype=np.float64)
        firsts.append(first.reshape(len(first), -1))
        if "predictions" in doc:
            answers += [row["label"] for row in doc["predictions"]]
        elif firsts[-1].shape[1] > 1 and _targets(data) == firsts[-1].shape[1]:
            answers += firsts[-1].tolist()  # a forecast's horizons against as many targets
        elif firsts[-1].shape[1] > 1:  # its column 0 was scored as the value: RMSE 11.9, R2 -16
            raise BadRequest(_several_values(manifest, raw, firsts[-1].shape[1], path))
        else:
            answers += firsts[-1][:, 0].tolist()
    return answers, np.concatenate(firsts)


def _predicted(model: LoadedModel, chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's outputs for `chunk`, one run a size where its rows are of several (windows
    of several lengths for a model of any: `publish_data._each_size`)."""
    if not any(is_ragged(value) for value in chunk.values()):
        return model.predict(chunk)
    rows = len(next(iter(chunk.values())))
    parts = [
        (indices, _each_size_predicted(model, picked(chunk, indices), indices))
        for indices in size_groups(chunk, rows)
    ]  # as by_size, the rows of a value refused named as the chunk's
    return {name: in_order([(i, out[name]) for i, out in parts], rows) for name in parts[0][1]}


def _each_size_predicted(
    model: LoadedModel, features: dict[str, np.ndarray], indices: np.ndarray
) -> dict[str, np.ndarray]:
    """The outputs of one size's rows (`indices` of the chunk); a value refused at `[k, 1, 11]`
    of them as `[row, 1, 11]` of the chunk: the string on line 3 was said at `[0, 1, 11]`."""
    try:
        return model.predict(features)
    except InvalidInput as exc:
        said = exc.public_message
        place = re.search(r"(?:at index|value) \[(\d+), ", said)
        if place is None or int(place.group(1)) >= len(indices):
            raise
        row = int(indices[int(place.group(1))])
        raise InvalidInput(f"{said[: place.start(1)]}{row}{said[place.end(1) :]}") from None


SEVERAL = (
    "give as many targets a row as it answers values: columns y_0, y_1, ... (--target y), a "
    "JSONL field or an NPZ array holding them, or publish it without --data"
)


def _targets(data: LabelledData) -> int:
    """Targets a row of `data` holds: several where its labels are lists of 2 to MAX_VALUES
    (a forecast's horizons, compared as `aiaas compare` compares them), else 1."""
    first = data.labels[0] if data.labels else None
    several = isinstance(first, list | tuple) and 1 < len(first) <= MAX_VALUES
    return len(first) if several and first is not None else 1


def _several_values(manifest: ModelManifest, raw: str, width: int, path: Path) -> str:
    """Why `width` values a row and no label cannot be scored by --data, and what works: --labels
    only where they may be class scores (task other); a regressor's refuses it (a circle)."""
    said = (
        f"--data {path}: output {raw!r} holds {width} values a row and the model names no "
        "classes and has no output of one value a row, so nothing can be scored against the "
        "file's labels"
    )
    several = SEVERAL
    if manifest.task == "regression":
        return f"{said}: {several}"
    return (
        f"{said}: if they are class scores, publish it with --labels (one per column) to score "
        f"it as a classifier; if they are a regressor's targets, {several}"
    )


def _listing_own_data(manifest: ModelManifest, path: Path) -> ModelManifest:
    """`manifest` listing the external data files beside `path` that the model names: the
    user's own files, evaluated before publishing (serving refuses a model naming files its
    manifest does not list; a quantized variant's source keeps its own data file names)."""
    own = unlisted_external_data(path, (f.path for f in manifest.weight_files))
    found = tuple(
        ArtifactFile(name, (path.parent / name).stat().st_size, "", "weights") for name in own
    )
    return replace(manifest, files=(*manifest.files, *found)) if found else manifest


def truth_labels(
    labels: list[Any], manifest: ModelManifest, own: tuple[str, ...] = ()
) -> list[str]:
    """The labels as the API names classes: as given, or class indices turned into names. A CSV
    cell is its text: a class name as written (`01`, which as a number was `1`, no class:
    hunt_ownmodels 4), else read as a number (`1.0` for class `1`, or an index). A text that
    is no class as written is one less the blanks around it, as training and `aiaas compare`
    read it (` setosa` for class `setosa`); as written first (a model fit on `pd.read_csv` of
    `5.1, 3.5, 1.4, 0.2, setosa` has the class ` setosa`: review_revinfra 4). `own`: the
    graph's own classes where --labels renamed them (`graph_classes`), read before indices."""
    classes = set(manifest.labels)
    texts = [y if isinstance(y, str) else _name(y) for y in labels]
    texts = [t if t in classes else t.strip() for t in texts]
    if set(texts) <= classes:
        return texts
    if own and set(texts) <= set(own):  # the graph's own classes, renamed by --labels
        return [manifest.labels[own.index(t)] for t in texts]
    named = bool_classes(texts, manifest.labels)  # `True`/`False`: hunt_ownmodels 4
    if named is not None:
        return [named[t] for t in texts]
    return _numbered([_number(y) for y in labels], manifest)


def _name(y: Any) -> str:
    return str(int(y)) if isinstance(y, float) and y.is_integer() else str(y)


def _number(y: Any) -> Any:
    """A CSV cell's text as the number it reads as (`1.0`, `2`); other text as it is."""
    if not isinstance(y, str):
        return y
    try:
        return float(y)
    except ValueError:
        return y


def _numbered(labels: list[Any], manifest: ModelManifest) -> list[str]:
    names = [_name(y) for y in labels]
    count = len(manifest.labels)
    indices = all(
        isinstance(y, int | float) and float(y).is_integer() and 0 <= y < count for y in labels
    )
    if set(names) <= set(manifest.labels) or not indices:
        return names
    return [manifest.labels[int(y)] for y in labels]


def check_numeric(manifest: ModelManifest, data: LabelledData, path: Path) -> None:
    """A model that is no classifier is scored by RMSE, so its labels must be numbers: a class
    name there means the classes were not given (the graph of a network names none)."""
    spec = next(s for s in manifest.outputs if s.name == value_output(manifest))
    width = int(np.prod(spec.shape[1:])) if all(d > 0 for d in spec.shape[1:]) else None
    for y in data.labels:
        if isinstance(y, list | tuple | np.ndarray) and np.size(y) > 1:  # y of [N, T] targets:
            if np.size(y) == width == _targets(data):  # numbers all: number_truth's to judge
                _numbers(y, path)
                continue
            raise BadRequest(f"--data {path}: {_targets_apart(manifest, data.column, y)}")
        try:  # it was told to pass --labels as a classifier's (hunt_journey2 3)
            float(y)
        except (TypeError, ValueError):
            raise BadRequest(
                f"--data {path}: label {y!r} is not a number, and a model with no classes is "
                "scored as a regressor: for a classifier pass --labels, one per class"
            ) from None


def _numbers(y: Any, path: Path) -> None:
    """Several targets of a row, each a finite number (a gap: leave the row out)."""
    for value in np.asarray(y, dtype=object).reshape(-1).tolist():
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not np.isfinite(number):
            raise BadRequest(
                f"--data {path}: target {value!r} of {list(y)[:8]} is not a finite number: "
                "give each row all its targets, or leave the row out"
            )


def _targets_apart(manifest: ModelManifest, column: str, y: Any) -> str:
    """Why a label of several values `y` cannot be scored, by the model's width and the file's:
    a model of 1 output given [N, 2] was told "a regressor of several targets cannot be scored",
    where the file held the several targets and the model one (review_rev8 6)."""
    spec = next(s for s in manifest.outputs if s.name == value_output(manifest))
    width = int(np.prod(spec.shape[1:])) if all(d > 0 for d in spec.shape[1:]) else None
    given = np.size(y)
    if width == 1:
        return (
            f"the model answers 1 value a row (output {spec.name!r}) and {column!r} holds "
            f"{given} a row: give the one target this model predicts (a column, or an array "
            "of one value a row, named by --target)"
        )
    if width is not None and width != given:
        return (
            f"the model answers {width} values a row (output {spec.name!r}) and {column!r} "
            f"holds {given} a row, so they are not the same targets; {SEVERAL}"
        )
    return f"label {y!r} holds {given} values; {SEVERAL}"


def _score(
    manifest: ModelManifest, answers: list[Any], labels: list[Any], own: tuple[str, ...]
) -> float:
    if manifest.postprocessing is not None:
        truth = truth_labels(labels, manifest, own)
        return float(np.mean([a == t for a, t in zip(answers, truth, strict=True)]))
    error = np.asarray(answers, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
    return float(np.sqrt(np.mean(error**2)))


def evaluate(
    before: tuple[ModelManifest, Path],
    after: tuple[ModelManifest, Path],
    path: Path,
    target: str | None = None,
    *,
    alone: bool = False,
) -> dict[str, Any]:
    """Accuracy (classifiers) or RMSE of both models on `path`, and how far their outputs
    differ; `alone`: also how far the variant's answer for a row sent alone is from its answer
    in a batch (int8's activations are scaled per request, over all its rows)."""
    data = read_data(path, before[0], target)
    if before[0].postprocessing is None:
        check_numeric(before[0], data, path)
    answers_before, raw_before = served_answers(load(*before), data, path)
    variant = load(*after)
    answers_after, raw_after = served_answers(variant, data, path)
    extra = {"alone": _alone(variant, data, path, answers_after, raw_after)} if alone else {}
    metric = "accuracy" if before[0].postprocessing is not None else "rmse"
    own = graph_classes(before[0])  # the variant's graph names the same classes
    score_before = _score(before[0], answers_before, data.labels, own)
    score_after = _score(after[0], answers_after, data.labels, own)
    agree = same_share(answers_before, answers_after, classified=metric == "accuracy")
    return {
        "data": path.name,
        "rows": len(data.labels),
        **({"rows_in_file": data.total} if (data.total or 0) > len(data.labels) else {}),
        "metric": metric,
        "before": round(score_before, 6),
        "after": round(score_after, 6),
        "change": round(score_after - score_before, 6),
        "same_answer_share": round(agree, 6),
        "max_abs_output_diff": float(np.abs(raw_after - raw_before).max()),
        **extra,
    }


ALONE_ROWS = 500  # rows a variant is run on one at a time (a run each: seconds for a big model)


def _alone(
    model: LoadedModel, data: LabelledData, path: Path, batched: list[Any], raw: Any
) -> dict[str, Any]:
    """The variant on the first ALONE_ROWS rows, one row a request, against its answers for
    the same rows in the file's batches: the share answered alike and the largest change."""
    rows = min(len(data.labels), ALONE_ROWS)
    first = replace(data, inputs={k: v[:rows] for k, v in data.inputs.items()})
    first = replace(first, labels=data.labels[:rows])
    answers, scores = served_answers(model, first, path, batch=1)
    classified = model.manifest.postprocessing is not None
    same = same_share(batched[:rows], answers, classified=classified)
    return {
        "rows": rows,
        "same_answer_share": round(same, 6),
        "max_abs_output_diff": float(np.abs(scores - raw[:rows]).max()),
    }
