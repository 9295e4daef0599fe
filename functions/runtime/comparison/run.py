"""`compare_versions`: score one file with two versions of a model and report how they differ.

The report (JSON-ready) holds: how many rows were compared and why others were not; agreement
(the share of rows with the same class, for classifiers: by name, or by class index for
versions that name their classes differently, `classes.py`) and the largest absolute and
relative difference of their outputs; metrics of both and B minus A when the file has ground
truth (accuracy and macro F1, each version against the truth read with its own labels, or MAE,
RMSE and R²); a cross-version confusion matrix (classifiers) or a sample of both versions'
predictions with the truth (regressors) to draw; and each version's latency per call, p50 and
p99, measured in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.runtime import names
from functions.runtime.batch.field_names import clashing, has_labels
from functions.runtime.batch.scoring import RowError
from functions.runtime.comparison import metrics
from functions.runtime.comparison.budget import (
    PROBE_CALLS,
    PROBE_ROWS,
    CompareBudget,
    Probe,
    expected_rows,
)
from functions.runtime.comparison.classes import ClassMatch, class_scores, classifier_quality
from functions.runtime.comparison.inputs import check_inputs
from functions.runtime.comparison.rows import CAPTURE, Batch, CompareFile, open_compare_file
from functions.runtime.comparison.scoring import PairScorer, Plan, Refused, Tally
from functions.runtime.comparison.truth import LABEL_COLUMNS, graph_named, number_truth
from functions.runtime.comparison.values import quality as values_quality
from functions.runtime.comparison.values import several_values
from functions.runtime.errors import InvalidInput
from functions.runtime.fixed_batch import as_served
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.pool import ModelPool
from functions.runtime.store import ObjectStore

MAX_ERRORS_SHOWN = 20
MAX_POINTS = 2000  # regressor predictions returned to draw: enough for a scatter plot


@dataclass(frozen=True)
class CompareRequest:
    """What to compare: `name` versions `a` and `b` on the object at `key`."""

    name: str
    a: str
    b: str
    key: str
    label: str | None = None  # the ground-truth column; default: default_labels' first found
    max_rows: int = 100_000  # rows compared at most (the rest of the file is not read)
    latency_calls: int = 1000  # single calls timed per version
    chunk_rows: int = 4096


def compare_versions(
    pool: ModelPool,
    request: CompareRequest,
    data: ObjectStore | None = None,
    *,
    budget: CompareBudget | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The comparison report (see the module docstring); raises what makes it impossible.

    The file is read from `data` (default: the registry's store, where batch inputs and
    captures are). With a `budget`, a comparison estimated or found to run past it is a 422
    (`comparison.budget`); `progress` hears the rows compared so far after each batch."""
    name = names.model_name(request.name)
    a = pool.registry.manifest(name, names.version_name(request.a))  # unknown: 404
    b = pool.registry.manifest(name, names.version_name(request.b))
    reading = check_inputs(a, b)  # A's, taking what both take (a gap only where both do)
    plan = plan_outputs(a, b)
    store = pool.registry.store if data is None else data
    opened = open_compare_file(
        store,
        request.key,
        reading,
        request.label,
        label_required=request.label is not None,
        width=plan.width,
        chunk_rows=max(1, min(request.chunk_rows, request.max_rows)),
        # B's too: a version published from ONNX records no training target, so comparing it
        # (as A) with a trained one found no labels in the trained one's own training data.
        defaults=() if request.label else (*default_labels(a), *default_labels(b)),
    )
    scorer = PairScorer(pool.load(a), pool.load(b), plan, opened.format != CAPTURE)
    run = _Run(scorer, opened, request, budget, progress)
    if budget is not None:
        run.expected = expected_rows(store, request.key, request.max_rows)
    truncated = run.score_all()
    tally = scorer.tally
    errors = sorted(opened.errors + tally.errors, key=lambda e: e.position)
    if tally.rows == 0 and not errors:
        raise InvalidInput(f"{request.key}: the file holds no rows to compare (a header at most)")
    if tally.rows == 0:
        first = f"{opened.position_key} {errors[0].position}: {errors[0].reason}"
        raise InvalidInput(
            f"{request.key}: no row could be compared ({len(errors)} bad); first: {first}"
        )
    doc: dict[str, Any] = {
        "model": name,
        "a": a.version,
        "b": b.version,
        "data": request.key,
        "format": opened.format,
        "task": "classification" if plan.labels else "regression",
        "rows": {
            "compared": tally.rows,
            "failed": len(errors),
            "truncated": truncated,
            "refused": tally.refused,
        },
        "errors": [_error(opened.position_key, e) for e in errors[:MAX_ERRORS_SHOWN]],
        "agreement": None,  # classifiers': `classes.classifier_quality`, below
        "labels_differ": None,
        # None alike (labels only): the differences below are 0 for want of anything compared.
        "outputs_compared": list(plan.numeric),
        "outputs": {"a": _outputs(a), "b": _outputs(b)},
        "max_abs_diff": tally.max_abs,
        "max_rel_diff": tally.max_rel,
        "latency": {
            "a": metrics.percentiles_ms(tally.seconds[0]),
            "b": metrics.percentiles_ms(tally.seconds[1]),
        },
    }
    doc.update(_quality(tally, plan, a, b, opened.label))
    return doc


class _Run:
    """Scores batches until the file ends or `max_rows` are compared, within `budget` if any."""

    def __init__(
        self,
        scorer: PairScorer,
        opened: CompareFile,
        request: CompareRequest,
        budget: CompareBudget | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.scorer, self.opened, self.request = scorer, opened, request
        self.budget, self.progress = budget, progress
        self.expected = request.max_rows
        self.done = 0  # rows compared; captured requests for a capture file (lines estimate)
        self.probed = False
        if budget is not None:
            scorer.before_call = self._check_deadline

    def score_all(self) -> bool:
        """False when the file ended, True when `max_rows` were compared with rows left."""
        tally = self.scorer.tally
        batches = self._batches()
        for whole in batches:
            self._check_deadline()
            timed = max(self.request.latency_calls - len(tally.seconds[0]), 0)
            probing = self.budget is not None and not self.probed
            began = time.perf_counter()
            batch = _head(whole, self.request.max_rows - tally.rows)
            self.scorer.add(batch, min(timed, PROBE_CALLS) if probing else timed)
            self.done = tally.rows if self.opened.format != CAPTURE else self.done + 1
            if probing:
                self.probed = True
                self._check_estimate(time.perf_counter() - began, batch)
                # The probe timed PROBE_CALLS of its rows: the rest are timed as any batch's
                # (a 50-row file timed 8 calls a version, where the CLI times 50).
                self.scorer.time_more(self.request.latency_calls - len(tally.seconds[0]))
            if self.progress is not None:
                self.progress(tally.rows)
            if tally.rows >= self.request.max_rows:
                return batch is not whole or self._rows_left(batches)
        return False

    def _rows_left(self, batches: Iterator[Batch]) -> bool:
        """Whether the file goes on with a row to compare (a file of exactly `max_rows` rows
        is not truncated). Bad rows met on the way count as failed only when no row follows
        them: then they were read, as the file's last lines."""
        errors = len(self.opened.errors)
        if next(batches, None) is None:
            return False
        del self.opened.errors[errors:]  # they lie in the part left out, with the rows after
        return True

    def _batches(self) -> Iterator[Batch]:
        """The file's batches; with a budget, the first one's first `PROBE_ROWS` apart: the
        probe, which a slow model's whole batch would make too long to learn from in time."""
        batches = iter(self.opened.batches)
        first = next(batches, None)
        if first is None:
            return
        if self.budget is not None and first.rows is not None and first.rows > PROBE_ROWS:
            yield _head(first, PROBE_ROWS)
            first = _tail(first, PROBE_ROWS)
        yield first
        yield from batches

    def _check_estimate(self, seconds: float, batch: Batch) -> None:
        assert self.budget is not None
        tally = self.scorer.tally
        rows = batch.rows if batch.rows is not None else 1
        probe = Probe.measured(seconds, rows, tally.seconds)
        calls_left = max(self.request.latency_calls - len(tally.seconds[0]), 0)
        self.budget.check_estimate(probe, self.done, self.expected, calls_left)

    def _check_deadline(self) -> None:
        # Not before the probe is done: its estimate says more (with the numbers) than "out
        # of time" would, and the probe is small (one batch, `PROBE_CALLS` timed calls).
        if self.budget is not None and self.probed:
            self.budget.check_deadline(self.done, self.expected)


def _head(batch: Batch, rows: int) -> Batch:
    """`batch`'s first `rows` rows (file rows only: a captured request is scored whole), so a
    comparison stops at `max_rows` rather than at the end of the batch that crossed it."""
    if batch.rows is None or batch.rows <= rows:
        return batch
    return batch.select(slice(0, rows))


def _tail(batch: Batch, rows: int) -> Batch:
    """`batch` from its row `rows` on (file rows only)."""
    return batch.select(slice(rows, None))


def _error(position_key: str, error: RowError) -> dict[str, Any]:
    """An errors entry: where, why, and for a refused row which version refused it."""
    found: dict[str, Any] = {position_key: error.position, "reason": error.reason}
    if isinstance(error, Refused):
        found["refused_by"] = error.by
    return found


def _outputs(manifest: ModelManifest) -> list[str]:
    return [f"{s.name} {s.dtype} {list(s.shape)}" for s in manifest.outputs]


def plan_outputs(a: ModelManifest, b: ModelManifest) -> Plan:
    """Outputs compared: those both have alike (same name, dtype and shape) and are numbers,
    except a classifier's own label output; labels when both classify. The class scores of
    versions whose class lists differ (another order, a class added) are compared as the
    shadow compares them: on the classes both have, by name (`classes.class_scores`)."""
    labels = has_labels(a) and has_labels(b)
    own = {m.postprocessing.label_output for m in (a, b) if m.postprocessing} - {None}
    theirs = {spec.name: spec for spec in as_served(b).outputs}  # a batch fixed at 1: any rows
    scores = _same_scores(a, b)
    by_class = class_scores(a, b) if labels else None
    numeric = tuple(
        spec.name
        for spec in as_served(a).outputs
        if (spec.name == by_class or _alike(spec, theirs.get(spec.name), scores))
        and _is_number(spec)
        and spec.name not in own
    )
    if not numeric and not labels:
        raise InvalidInput(
            f"versions {a.version} and {b.version} of {a.name} have no output in common to "
            f"compare ({[s.name for s in a.outputs]} vs {[s.name for s in b.outputs]}) and do "
            "not both classify"
        )
    primary = next((n for n in numeric if n != by_class and _one_value(theirs[n])), None)
    width = 1
    # A forecast's horizons (values.py): of two regressors, not of a classifier beside a
    # version published without its labels (its scores are no values with a truth to meet).
    classifies = "classification" in (a.task, b.task) or bool(a.labels or b.labels)
    if primary is None and not labels and not classifies:
        served = {spec.name: spec for spec in as_served(a).outputs}
        widths = {n: several_values(a, theirs[n], served[n]) for n in numeric}
        primary = next((n for n in numeric if widths[n]), None)
        width = widths[primary] if primary is not None else 1
    names = clashing(a) if labels else {}  # an output named `score`: `score_output` in answers
    fields = tuple(names.get(name, name) for name in numeric)
    field = None if by_class is None else names.get(by_class, by_class)
    primary = None if primary is None else names.get(primary, primary)
    return Plan(fields, labels, primary, field, width)


def training_target(manifest: ModelManifest) -> str | None:
    """The column `manifest`'s version was trained to predict, if it says: `aiaas train`
    records the spec, whose `dataset.target` it is."""
    dataset = manifest.training.get("dataset")
    found = dataset.get("target") if isinstance(dataset, dict) else None
    found = found or manifest.training.get("target")
    return found if isinstance(found, str) else None


def default_labels(manifest: ModelManifest) -> tuple[str, ...]:
    """The columns (JSONL fields) the truth is read from when none is named, the first the file
    has: the training target, the column `publish --data` scored the version against, then
    publish's own defaults; never one of the model's inputs or features."""
    held_out = manifest.metrics.get("held_out")
    scored = held_out.get("target") if isinstance(held_out, dict) else None
    named = [training_target(manifest), scored if isinstance(scored, str) else None]
    taken = {*manifest.features, *(spec.name for spec in manifest.inputs)}
    found = (n for n in (*named, *LABEL_COLUMNS) if n and n not in taken)
    return tuple(dict.fromkeys(found))


def _alike(a: TensorSpec, b: TensorSpec | None, scores: str | None = None) -> bool:
    """Same values to compare: name, dtype, shape and a ZipMap's class order. Not the
    description: `aiaas train` writes one and `aiaas publish` none, so a trained version and a
    published one were "not alike", their outputs left out, and compare said "max |B-A| 0".
    Both versions' class scores (`scores`) are alike whether served from a ZipMap or a tensor."""
    if b is None:
        return False
    keys = a.name == scores or a.map_keys == b.map_keys
    return keys and (a.name, a.dtype, a.shape) == (b.name, b.dtype, b.shape)


def _same_scores(a: ModelManifest, b: ModelManifest) -> str | None:
    """The output both versions serve their class scores from, in the same class order (the
    labels, whose order publish checks against a ZipMap's keys): LightGBM's ZipMap and
    XGBoost's tensor of one name (onnxmltools' defaults) then compare column by column."""
    pa, pb = a.postprocessing, b.postprocessing
    if pa is None or pb is None or pa.scores_output != pb.scores_output:
        return None
    return pa.scores_output if a.labels and a.labels == b.labels else None


def _is_number(spec: TensorSpec) -> bool:
    # A ZipMap (skl2onnx's default probabilities) is numbers too: predict answers one float
    # column per class. Left out, compare said "max |B-A| 0" for versions that disagree.
    return spec.dtype not in ("string", "bool")


def _one_value(spec: TensorSpec) -> bool:
    return len(spec.shape) == 1 or (len(spec.shape) == 2 and spec.shape[1] == 1)


def _quality(
    tally: Tally, plan: Plan, a: ModelManifest, b: ModelManifest, label: str | None
) -> dict[str, Any]:
    """Metrics against the truth, and what a plot needs: the confusion matrix or points;
    for classifiers agreement and how their classes were matched too."""
    if plan.labels:
        named = graph_named(tally.truth, a)  # the graph's own classes, renamed by --labels
        tally.truth = graph_named(tally.truth, b) if named is tally.truth else named
        return classifier_quality(tally, ClassMatch.of(a, b), label)
    if plan.primary is None:  # said, or it read as "no labelled rows" beside a label column
        shapes = ", ".join(f"'{s.name}' {list(s.shape[1:])}" for s in a.outputs)
        why = (
            "metrics need one value (or one label) a row from both versions, and no output "
            f"compared has one ({shapes} a row)"
        )
        bare = [m.version for m in (a, b) if m.postprocessing is None]
        if len(bare) == 1:  # the other answers labels: an int8 variant missing its --labels
            why += (
                f"; version {bare[0]} names no classes where the other does: publish it with "
                "--labels to compare labels"
            )
        return {"metrics": None, "points": None, "metrics_unavailable": why}
    values = (np.concatenate(tally.primary[0]), np.concatenate(tally.primary[1]))
    if plan.width > 1:
        several, drawn, unread = values_quality(label, values, tally.truth, plan.primary)
        return {"metrics": several, "points": drawn} | (
            {"metrics_unavailable": unread} if unread else {}
        )
    values = (values[0].reshape(-1), values[1].reshape(-1))
    numbers = number_truth(tally.truth)
    found = metrics.against_truth(
        label, (numbers, numbers), values, metrics.regressor_metrics, float
    )
    pick = np.unique(
        np.linspace(0, len(values[0]) - 1, min(len(values[0]), MAX_POINTS)).astype(int)
    )
    points = {
        "output": plan.primary,
        "a": values[0][pick].tolist(),
        "b": values[1][pick].tolist(),
        "truth": [numbers[i] for i in pick.tolist()] if found else None,
        "mean_abs_diff": float(np.mean(np.abs(values[0] - values[1]))),
    }
    given = [t for t in tally.truth if t is not None and str(t).strip()]
    if found is None and label is not None and given:  # was "no labelled rows": text labels
        why = (
            f"column {label!r} holds no numbers (its {len(given)} values are text, such as "
            f"{str(given[0])[:40]!r}) to compare {plan.primary!r}'s values with: give the "
            "column of the true values"
        )
        return {"metrics": None, "points": points, "metrics_unavailable": why}
    return {"metrics": found, "points": points}


__all__ = ["CompareRequest", "compare_versions", "plan_outputs"]
