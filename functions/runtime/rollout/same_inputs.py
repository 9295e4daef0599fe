"""Whether a rollout's candidate takes every request its baseline takes.

A canary answers a share of the baseline's own callers, with the requests they already send.
A candidate published with other inputs (a dropped feature: [N, 3] where production reads
[N, 4]) answered every one of them 422, and the rollout went on to 100%: its error rate counts
the candidate's failures (5xx), and a refused request is the caller's (4xx). So a rollout
starts only with a candidate that takes what the baseline takes: the same input names and
element types, every shape the baseline accepts (a fixed size, or any where it takes any),
the records it reads by feature name, and the missing values it takes. A text model's callers
send raw text too: the candidate must read it (its tokenizer published with it), from the same
record field, and take token ids as long as the baseline takes.
"""

from __future__ import annotations

from functions.runtime.codecs.nulls import takes_missing
from functions.runtime.errors import InvalidInput
from functions.runtime.fixed_batch import as_served
from functions.runtime.inputs_apart import FIXED_SAID, apart
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.text_input import text_input


def _shape_fits(base: TensorSpec, candidate: TensorSpec) -> bool:
    if base.rank != candidate.rank:
        return False
    return all(c == -1 or c == b for b, c in zip(base.shape, candidate.shape, strict=True))


def _differs(baseline: ModelManifest, candidate: ModelManifest, base: TensorSpec) -> str | None:
    """Why `candidate` refuses what `baseline` takes in its input `base` (as served), else None;
    the element type and shape said as `aiaas show` says them (`inputs_apart`)."""
    theirs = next((spec for spec in as_served(candidate).inputs if spec.name == base.name), None)
    if theirs is None:
        return f"it has no input {base.name!r}"
    found = apart(candidate, baseline, base.name, lambda mine, its: _shape_fits(its, mine))
    if found is not None:
        said = f"its input {base.name!r} {found.verb} {found.mine}, not {found.theirs}"
        return f"{said}; {FIXED_SAID}" if found.fixed else said
    if theirs.finite and not base.finite:
        what = "infinity" if theirs.gaps else "NaN and infinity"
        return f"its input {base.name!r} refuses {what}, which the baseline takes"
    if base.gaps and not takes_missing(theirs):  # the baseline's graph imputes them
        return (
            f"its input {base.name!r} refuses missing values (null, NaN), which the baseline takes"
        )
    return None


def difference(baseline: ModelManifest, candidate: ModelManifest) -> str | None:
    """Why `candidate` would refuse requests `baseline` answers, else None. A version whose
    graph fixes its batch at 1 takes any number of rows (one call each): as if dynamic."""
    for spec in as_served(baseline).inputs:
        found = _differs(baseline, candidate, spec)
        if found is not None:
            return found
    extra = sorted({spec.name for spec in candidate.inputs} - {s.name for s in baseline.inputs})
    if extra:
        return f"it also needs input {extra[0]!r}, which the baseline's callers do not send"
    missing = sorted(set(baseline.features) - set(candidate.features))
    if missing:
        return f"it reads no feature {missing[0]!r}, which records sent to the baseline name"
    return text_difference(baseline, candidate)


def text_difference(baseline: ModelManifest, candidate: ModelManifest) -> str | None:
    """Why `candidate` would refuse text or token ids that `baseline` takes, else None."""
    base, theirs = text_input(baseline), text_input(candidate)
    if base is None:
        return None
    if theirs is None:
        return (
            "it reads no raw text (it was published without its tokenizer), which the "
            "baseline's callers may send"
        )
    if theirs.field != base.field:
        return (
            f"it reads raw text from record field {theirs.field!r}, not {base.field!r} as the "
            "baseline does"
        )
    if theirs.max_length < base.max_length:
        return (
            f"it takes at most {theirs.max_length} token ids a row where the baseline takes "
            f"{base.max_length} (raw text is cut to fit; longer rows of ids are refused)"
        )
    return None


def labelled(model: str, versions: dict[str, ModelManifest]) -> None:
    """--min-agreement judges the share of rows given the baseline's label: a version that
    answers values (a regressor) gives none, and the limit was skipped without a word (a
    candidate ~1000 off its baseline went to 100%)."""
    for version, manifest in versions.items():
        if manifest.postprocessing is None:
            raise InvalidInput(
                f"--min-agreement (min_agreement) judges the share of rows given the same label, "
                f"and {model}:{version} answers values, not classes: leave it out (the error-rate "
                f"and p99 limits still hold), or compare the versions on labelled rows first "
                f"(`aiaas compare {model} A B --data FILE --max-drop mae=...`)"
            )
