"""Whether a canary's answers still hold what the baseline's callers read from them.

A canary answers a share of the baseline's callers. Taking their inputs is not enough: a
candidate re-exported without `output_names` (torch's dynamo exporter then names the output
`linear_1`, not `logits`) answered an OIP request naming `logits` with a 422 ("unknown
output"), and every simple-JSON caller found no `logits` in its 200; a variant published
without `--labels` answered `?top_k` with a 422 and no `predictions` at all. Neither is a 5xx,
so `aiaas rollout` took it to 100% and said it succeeded (hunt_journey4 1). So a canary must
answer every output the baseline answers, by name, and class scores where the baseline does.
It must also read a row sent by position as the baseline does: a weekly retrain on a CSV
whose columns came in another order (`dataset.features` left to the file's order) read
`[tenure, income, age]` where production read `[age, income, tenure]`, and a caller's
`{"inputs": [[70, 50000, 2]]}` was answered `stay` by it and `churn` by production, with a 200
each; `aiaas rollout` went to 100% (hunt_journey8 1). Records by name are read alike.
A shadow's answers reach no caller, and a promote without `--weight` moves every caller at once
(they are not refused here): such a move to a version reading the features in another order is
warned (`reorder_warning`), as a tokenizer reading ids otherwise is, not refused; and a way back
to a version the alias served before is `aiaas rollback`, not a retrain of it (rev14 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.runtime.manifest import ModelManifest
from functions.runtime.refs import DEFAULT_ALIAS

# How a candidate reading the baseline's features in another order is said: moving every
# caller to it at once (a promote without --weight) is no way out for it, as it is for a canary
# that only lacks what callers read in its answers.
REORDERED = "it reads its features in another order"
# The baseline's model file with its classes named in another order: the advice it gets names
# the promote that moves every caller at once (a renaming on purpose) itself.
RELABELLED = "it is the baseline's model with its classes named in another order"


def answers_difference(
    baseline: ModelManifest, candidate: ModelManifest, back: str | None = None
) -> tuple[str, str] | None:
    """Why `candidate`'s answers lack what callers of `baseline` read, and what to publish
    instead; else None. `back`: the command that moves every caller back to `candidate`, when
    the alias served it before (`back_command`)."""
    theirs = [spec.name for spec in candidate.outputs]
    names = [spec.name for spec in baseline.outputs]
    lost = [name for name in names if name not in theirs]
    if lost:
        shown = ", ".join(repr(name) for name in theirs)
        return (
            f"it has no output {lost[0]!r} (its outputs: {shown}): a request naming it (OIP "
            "`outputs`) would get a 422 and callers reading it would find none",
            f"publish it with the baseline's output names {names!r} ({_renaming(candidate, names)})",
        )
    moved = _reordered(baseline, candidate, back) or _relabelled(baseline, candidate)
    if moved is not None:
        return moved
    if baseline.postprocessing is not None and candidate.postprocessing is None:
        labels, ref = baseline.labels, f"{baseline.name}:{baseline.version}"
        count = f"{len(labels)} " if labels else ""
        given = (  # 25 names on one line are no advice: where to read them is
            ",".join(labels)
            if 0 < len(labels) <= 20
            else f"giving {ref}'s {count}labels (`aiaas show {ref}` lists them)"
        )
        return (
            "it answers no class scores (no labels): `?top_k` would get a 422 and its answers "
            "no `predictions`",
            f"publish it with --labels {given} as the baseline was",
        )
    return None


def back_command(
    name: str, alias: str, record: Mapping[str, Any] | None, version: str
) -> str | None:
    """`aiaas rollback NAME --to VERSION` when `record` (the alias's) served `version` before:
    the way back to a known version, which a canary of it is refused for reading the features in
    another order than the version the alias serves now."""
    history = (record or {}).get("history") or []
    if not any(isinstance(e, Mapping) and e.get("version") == version for e in history):
        return None
    where = "" if alias == DEFAULT_ALIAS else f" --alias {alias}"
    return f"aiaas rollback {name} --to {version}{where}"


def reorder_warning(name: str, old: ModelManifest, new: ModelManifest) -> str | None:
    """The warning (less its `warning: `) for a move of every caller of `old` to `new` at once
    (a promote without --weight, a rollback) when `new` reads the same features in another
    order."""
    mine, theirs = list(old.features), list(new.features)
    if mine == theirs or sorted(mine) != sorted(theirs):
        return None
    at = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b)
    return (
        f"version {new.version} of {name} reads its features in another order than "
        f"{old.version} (version {new.version}: {_shown(theirs)}; version {old.version}: "
        f"{_shown(mine)}): a row its callers send by position (simple JSON `inputs`, an OIP "
        f"tensor) in {old.version}'s order is read as other features, its value {at + 1} as "
        f"{theirs[at]!r}, not {mine[at]!r}, and answered wrong with a 200 (records by name are "
        "read alike); move such callers to records by name, or move back"
    )


def relabel_warning(name: str, old: ModelManifest, new: ModelManifest) -> str | None:
    """The warning (less its `warning: `) for a move of every caller of `old` to `new` at once
    when `new` is `old`'s model file with its classes named in another order (a renaming on
    purpose goes that way; a canary or rollout of it is refused)."""
    if _relabelled(old, new) is None:
        return None
    mine, theirs = list(old.labels), list(new.labels)
    at = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b)
    return (
        f"version {new.version} of {name} is {old.version}'s model file with its classes named "
        f"in another order (version {new.version}: {_shown(theirs)}; version {old.version}: "
        f"{_shown(mine)}): a row {old.version} answered {mine[at]!r} is answered "
        f"{theirs[at]!r}; if that renaming was not meant, move back"
    )


def _reordered(
    baseline: ModelManifest, candidate: ModelManifest, back: str | None = None
) -> tuple[str, str] | None:
    """The features both read, in another order: what a row sent by position becomes."""
    mine, theirs = list(baseline.features), list(candidate.features)
    if mine == theirs or sorted(mine) != sorted(theirs):
        return None  # the same order; or another set, which `same_inputs` refuses
    at = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b)
    return (
        f"{REORDERED} (it: {_shown(theirs)}; the baseline: {_shown(mine)}): a row sent by "
        "position (simple JSON `inputs`, an OIP tensor) would be read as other features, its "
        f"value {at + 1} as {theirs[at]!r}, not {mine[at]!r}, and answered wrong with a 200 "
        "(records by name are read alike)",
        f"it served the alias before: move every caller back to it at once (`{back}`)"
        if back is not None
        else _reorder_advice(candidate, mine),
    )


def _relabelled(baseline: ModelManifest, candidate: ModelManifest) -> tuple[str, str] | None:
    """The baseline's own model file published again with its classes named in another order:
    the same scores, answered as other classes. Version 7, v2's file with `--labels b,a,c`
    where 2 had `a,b,c`, was rolled out to 100% with no error (hunt_journey24 3): every row 2
    answered `a` was answered `b`, with a 200. A retrained model may order its classes anew (its
    labels then name its own columns); the same file cannot."""
    mine, theirs = list(baseline.labels), list(candidate.labels)
    if mine == theirs or sorted(mine) != sorted(theirs) or not _same_graph(baseline, candidate):
        return None
    at = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b)
    return (
        f"{RELABELLED} ({baseline.version}'s model file, sha256 {baseline.file.sha256[:12]}; "
        f"it: {_shown(theirs)}; the baseline: {_shown(mine)}): the same scores would be "
        f"answered as other classes, a row {baseline.version} answers {mine[at]!r} it would "
        f"answer {theirs[at]!r}, with a 200",
        f"publish it again with --labels {','.join(mine)} (the baseline's order); if "
        f"{baseline.version}'s names are the wrong ones, promote it without --weight (every "
        "caller at once: a renaming on purpose)",
    )


def _same_graph(a: ModelManifest, b: ModelManifest) -> bool:
    """Whether two versions load the same model: its file and external weights, by hash."""
    weights = [sorted(f.sha256 for f in m.weight_files) for m in (a, b)]
    return a.file.sha256 == b.file.sha256 and weights[0] == weights[1]


def _reorder_advice(candidate: ModelManifest, order: list[str]) -> str:
    """How to make a version reading `order`: a retrain for one `aiaas train` made (its
    manifest records the run), else a re-export or a publish with --features in that order: a
    version from `aiaas publish` has no spec to set `dataset.features` in (rev14 4)."""
    listed = ", ".join(order)
    if candidate.training:
        return f"retrain it with `dataset.features: [{listed}]` (the baseline's order) in its spec"
    return (
        f"export it reading [{listed}] in that order (the baseline's), or, if only its "
        f"--features were given out of order, publish it again with --features {','.join(order)}"
    )


def _shown(features: list[str]) -> str:
    return ", ".join(features[:8]) + (", ..." if len(features) > 8 else "")


def _renaming(candidate: ModelManifest, names: list[str]) -> str:
    """How the candidate's exporter names its outputs: torch's call for a torch export, else
    what applies to any graph (skl2onnx, tf2onnx and the rest name them their own way)."""
    if candidate.file.producer == "pytorch":
        return f"torch.onnx.export(..., output_names={names!r})"
    return "rename its graph's outputs to them, in its exporter or with onnx.helper"
