"""Records by feature name: whether an object names features, and what a missing feature's
refusal says (simple JSON and batch JSONL read them the same way)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from functions.runtime.manifest import ModelManifest


def by_feature(keys: Mapping[str, object], manifest: ModelManifest) -> bool:
    """Whether an object names features rather than inputs: it does not name the input, or it
    names every feature, one of them no input (a table trained with a column `x`, the name
    training gives its input: `{"x": 1.5, "y": 0.1}` was read as the input x and refused as
    shape [1, 1]; `{"x": [1.5, 0.1]}` is still the input)."""
    if not manifest.features:
        return False
    if manifest.inputs[0].name not in keys:
        return True
    named = all(feature in keys for feature in manifest.features)
    if not named:
        return False
    # Sets: each of a record's fields looked up in the tuple of features was quadratic.
    features = set(manifest.features).difference(spec.name for spec in manifest.inputs)
    return not features.isdisjoint(keys)


def missing_feature(
    where: str, feature: str, manifest: ModelManifest, stray: Sequence[str] = ()
) -> str:
    """The missing feature, and a field sent that is no feature when it looks like its
    misspelling (`petal_widht`): docs/registry.md promises it is named."""
    shown = ", ".join(manifest.features[:8]) + (", ..." if len(manifest.features) > 8 else "")
    text = f"{where} is missing feature {feature!r}"
    if stray:
        import difflib  # here: 2 ms of a cold start, for a refusal only

        likely = difflib.get_close_matches(feature, list(stray), n=1, cutoff=0.6)
        if likely:
            text += f" ({likely[0]!r}, which it has, is no feature: a misspelling?)"
    return f"{text}; this model reads {shown}"


def value_columns(where: str, keys: Sequence[str], manifest: ModelManifest) -> str | None:
    """For a record keyed by the columns that name several inputs' values (x1_0, ..., x2_1, as
    CSV files, `aiaas baseline` and explanations name them), the refusal saying a record holds
    each input whole; None for other keys. They were refused as "unknown input 'x2_1' (a
    misspelling of 'x1'?)", naming one key of five."""
    from functions.runtime.input_columns import indexed_names  # a refusal's: not a cold start's

    fixed = [s for s in manifest.inputs if len(s.shape) >= 2 and -1 not in s.shape[1:]]
    widths = {s.name: math.prod(s.shape[1:]) for s in fixed}
    columns = {c for name, width in widths.items() for c in indexed_names(name, width)}
    stray = [key for key in keys if key in columns and key not in widths]
    if len(manifest.inputs) < 2 or not stray:
        return None
    whole = ", ".join(f'"{name}": [{width} values]' for name, width in widths.items())
    return (
        f"{where} names the values of the model's inputs one by one ({', '.join(stray[:3])}"
        f"{', ...' if len(stray) > 3 else ''}), as CSV files and explanations do; a record holds "
        f"each input whole: {{{whole}}}"
    )
