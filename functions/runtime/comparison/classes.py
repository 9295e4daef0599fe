"""Each version judged with its own labels, once their classes are matched.

Two versions of a model may name the same classes differently: one published with `--labels
setosa,versicolor,virginica`, the next without (its labels then read from the graph: `0, 1,
2`). Compared by name, B agreed with A on no row and scored 0 against a truth read as A's
names, though the truth was B's own labels. So the two label lists are matched first, by the
rule the shadow's agreement uses too (`functions/runtime/dataplane/class_match.py`):

- by name when they share a name (the same classes in another order, a class added or
  dropped): a row agrees when both answer the same name, each version reads the truth with its
  own labels (a class index in the file only where it is the same class to both: one that
  is another class to each, `cat, dog` against `dog, cat`, leaves the metrics out, naming why),
  and a true class a version
  lacks is an error for it; class scores are compared on the classes both have, by name, and
  the rows a version answered with a class only it has are counted (they disagree);
- by class index when they share no name but have as many classes: A's i-th class is B's i-th,
  the link a class index in a file already relies on. B's answers, and a truth given in B's
  names, are read as A's names; the report lists the pairs, so a wrong pairing shows; class
  scores are compared column by column;
- not at all when they share no name and differ in count: agreement is not comparable (None,
  with the reason), and each version is still judged with its own labels; class scores are
  not compared.

Class scores are compared by `dataplane.compare.compare` (given the output, `class_scores`),
as the shadow compares them, so `max_abs_diff` here and the shadow's means the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from functions.runtime.comparison import metrics
from functions.runtime.comparison.scoring import Tally
from functions.runtime.comparison.truth import class_truth, truth_texts, unknown_labels
from functions.runtime.dataplane.class_match import INDEX, NAME, ClassMatch
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.names import shown, shown_names

__all__ = ["INDEX", "NAME", "ClassMatch", "class_scores", "classifier_quality"]


def class_scores(a: ModelManifest, b: ModelManifest) -> str | None:
    """The class-score output both versions serve, one column per class, when their class
    lists differ but are matched (by name: another order, a class added or dropped; by class
    index): compared as the shadow compares it, on the classes both have by name (compared by
    column index, B's `virginica` column was set against A's `setosa`), or column by column
    by class index. None when the lists are the same (compared as any output alike) or
    nothing links the classes (not compared)."""
    pa, pb = a.postprocessing, b.postprocessing
    if pa is None or pb is None or pa.scores_output != pb.scores_output or a.labels == b.labels:
        return None
    if not a.labels or not b.labels or ClassMatch.of(a, b).by is None:
        return None
    specs = [_spec(m, pa.scores_output) for m in (a, b)]
    if all(_per_class(spec, m) for spec, m in zip(specs, (a, b), strict=True)):
        return pa.scores_output
    return None  # a binary sigmoid's one column: the labels say it (as the shadow leaves it out)


def _spec(manifest: ModelManifest, name: str) -> TensorSpec | None:
    return next((spec for spec in manifest.outputs if spec.name == name), None)


def _per_class(spec: TensorSpec | None, manifest: ModelManifest) -> bool:
    """A float column per class of `manifest` (a ZipMap's or a tensor's)."""
    if spec is None or spec.dtype in ("string", "bool") or len(spec.shape) != 2:
        return False
    return spec.shape[1] in (-1, len(manifest.labels))


def classifier_quality(tally: Tally, match: ClassMatch, label: str | None) -> dict[str, Any]:
    """Agreement, how the classes were matched, both versions' metrics against the truth and
    the cross-version confusion matrix (rows: A's answer, columns: B's)."""
    answers = (np.concatenate(tally.labels[0]), match.b_as_a(np.concatenate(tally.labels[1])))
    if match.by == INDEX:
        truth = _truth_as_a(tally.truth, match)
        truths = (truth, truth)
        unknown = unknown_labels(truth, match.a)
    else:
        ours = class_truth(tally.truth, match.a)
        truths = (ours, ours if match.a == match.b else class_truth(tally.truth, match.b))
        unknown = _unknown_to_both(truths, match)
    found = metrics.against_truth(label, truths, answers, metrics.classifier_metrics, str)
    unread = _indices_apart(tally.truth, truths, match, label) if match.by == NAME else None
    if unread is not None:  # each version's accuracy against another truth: no figure
        found = None
    elif found is not None:
        found["unknown_labels"] = unknown
    confusion = metrics.confusion(*answers, order=(*match.a, *match.b))
    if match.by == INDEX:  # the columns are B's classes: say what B calls them
        theirs = dict(zip(match.a, match.b, strict=True))
        confusion["b_labels"] = [theirs.get(x, x) for x in confusion["labels"]]
    doc: dict[str, Any] = {"agreement": _agreement(tally, match)}
    if doc["agreement"] is None:
        doc["agreement_unavailable"] = match.note()
    differ = match.differ()
    if differ is not None:  # rows a version answered with a class only it has: they disagree
        differ["unshared_rows"] = tally.unshared
    doc.update(labels_differ=differ, metrics=found, confusion=confusion)
    if unread is not None:
        doc["metrics_unavailable"] = unread
    return doc


def _indices_apart(
    values: Sequence[object],
    truths: tuple[list[str | None], list[str | None]],
    match: ClassMatch,
    label: str | None,
) -> str | None:
    """Why no metric is given when the file's labels are class indices that name different
    classes to the two versions (matched by name, in another order: `cat, dog` and `dog, cat`);
    else None. Each read the index in its own order, so two versions answering alike on every
    row scored accuracy 1 and 0: a truth can only be one of them (leftovers7 2)."""
    for value, ours, theirs in zip(values, *truths, strict=True):
        if ours != theirs and ours in match.a and theirs in match.b:
            versions = match.versions
            return (
                f"the labels in column {label!r} are class indices ({shown(str(value))} is "
                f"{ours!r} to version {versions[0]} (A) and {theirs!r} to version "
                f"{versions[1]} (B)), and the two order their classes differently (A: "
                f"{shown_names(match.a, quoted=False)}; B: {shown_names(match.b, quoted=False)})"
                ": nothing says which class a row holds; give the labels by name to compare "
                "the metrics"
            )
    return None


def _agreement(tally: Tally, match: ClassMatch) -> dict[str, Any] | None:
    if match.by is None:
        return None
    # The shadow's count (`dataplane/compare.py`, given the same match): by index, of B's
    # classes read as A's.
    agreed = tally.agreed
    return {"rows": tally.rows, "agreed": agreed, "rate": agreed / tally.rows, "by": match.by}


def _truth_as_a(values: Sequence[object], match: ClassMatch) -> list[str | None]:
    """The truth in A's names: A's names as they are, B's as A's of the same index, else
    class indices (when the file holds nothing but indices)."""
    table = dict(zip(match.b, match.a, strict=True))
    # As written where A or B has that class (` setosa`: review_revsess 2), else less blanks.
    texts = truth_texts(values, (*match.a, *match.b))
    return class_truth([None if t is None else table.get(t, t) for t in texts], match.a)


def _unknown_to_both(
    truths: tuple[list[str | None], list[str | None]], match: ClassMatch
) -> dict[str, int]:
    """Rows per true label that neither version has (each reading the truth its own way)."""
    a, b = set(match.a), set(match.b)
    neither = [
        ours if ours not in a and theirs not in b else None
        for ours, theirs in zip(*truths, strict=True)
    ]
    return unknown_labels(neither, ())
