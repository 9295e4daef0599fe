"""Whether one file can feed two versions: they must read the same inputs, as `aiaas compare`
reads its file once for both."""

from __future__ import annotations

from functions.runtime.errors import InvalidInput
from functions.runtime.fixed_batch import as_served
from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import text_input


def check_inputs(a: ModelManifest, b: ModelManifest) -> None:
    """One file feeds both versions: they must read the same inputs (their descriptions, which
    training writes and `aiaas publish` does not, are no part of what they read)."""
    text = text_input(a)
    if text is not None:  # the file is read as A reads it: text, which each version
        _check_text(a, b, text.field)  # tokenizes its own way
        return
    if _read(as_served(a)) == _read(as_served(b)) and a.features == b.features:
        return
    raise InvalidInput(
        f"versions {a.version} and {b.version} of {a.name} read different inputs "
        f"({_inputs(a)} vs {_inputs(b)}); compare scores one file with both, so they must match"
    )


def _check_text(a: ModelManifest, b: ModelManifest, field: str) -> None:
    """B must read raw text as A does, from the same record `field`."""
    theirs = text_input(b)
    if theirs is not None and theirs.field == field:
        return
    how = (
        f"from field {theirs.field!r}"
        if theirs is not None
        else "none (it was published without its tokenizer)"
    )
    raise InvalidInput(
        f"versions {a.version} and {b.version} of {a.name} read different inputs: {a.version} "
        f"reads raw text from field {field!r}, {b.version} {how}; compare scores one file "
        "with both, so they must read it alike"
    )


def _read(manifest: ModelManifest) -> list[tuple[str, str, tuple[int, ...], bool]]:
    return [(s.name, s.dtype, s.shape, s.finite) for s in manifest.inputs]


def _inputs(manifest: ModelManifest) -> str:
    shown = ", ".join(
        f"{s.name} {s.dtype} {list(s.shape)}{' finite' if s.finite else ''}"
        for s in manifest.inputs
    )
    return shown + (f" features {','.join(manifest.features[:6])}" if manifest.features else "")
