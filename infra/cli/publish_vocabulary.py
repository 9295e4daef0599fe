"""`aiaas publish` of a text model `aiaas train` exported: its vocabulary comes with it.

A model trained here carries its word vocabulary in the ONNX file's metadata (`aiaas.tokenizer`:
serving tokenizes raw text with it). Published again from that file (to another store, under
another name, or as an `--quantize` variant) it was served as a plain ids model: the manifest
had no `preprocessing`, raw text was a 422 and `--data` with a text column was refused, and
publish said nothing. The carried vocabulary now gives the manifest the same `preprocessing`
the training job wrote, and its `vocab.json` beside the model. Likewise a table model's text
inputs: the file says which ones training read less the blanks around a value (`aiaas.strip`),
and the manifest strips them too (it lost `strip`, " Paris" read as an unseen category).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from functions.runtime.carried_strip import METADATA_KEY as STRIP_KEY
from functions.runtime.carried_strip import stripped_inputs
from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import TEXT_FIELD
from functions.runtime.tokenizer import METADATA_KEY, VOCAB_FILE, TokenizerError, Vocabulary


def carried_vocabulary(
    manifest: ModelManifest, metadata: Mapping[str, str], work: Path
) -> tuple[ModelManifest, dict[str, Path], str] | None:
    """The manifest reading raw text through the vocabulary the file carries, its vocab.json
    and a note; None for a file that carries none."""
    raw = metadata.get(METADATA_KEY)
    if raw is None:
        return None
    try:
        vocabulary = Vocabulary.from_json(raw)
    except TokenizerError as exc:
        message = f"the model's own vocabulary ({METADATA_KEY}) cannot be read: {exc}"
        raise BadRequest(message) from None
    ids = [spec for spec in manifest.inputs if spec.dtype.startswith("int") and spec.rank == 2]
    if len(manifest.inputs) != 1 or not ids:
        raise BadRequest(
            f"the model carries a vocabulary ({METADATA_KEY}) but does not take one [N, L] "
            "integer input of token ids; publish the file `aiaas train` exported"
        )
    work.mkdir(parents=True, exist_ok=True)
    vocab = work / VOCAB_FILE
    vocab.write_text(json.dumps(vocabulary.to_json(), indent=1), encoding="utf-8")
    pre = vocabulary.preprocessing(ids[0].name, TEXT_FIELD)
    note = (
        f"raw text: the vocabulary the file carries ({len(vocabulary.tokens)} tokens, the first "
        f"{vocabulary.max_length} kept), read from field {TEXT_FIELD!r}"
    )
    return replace(manifest, preprocessing=pre), {VOCAB_FILE: vocab}, note


def carried_strip(
    manifest: ModelManifest, metadata: Mapping[str, str]
) -> tuple[ModelManifest, str] | None:
    """The manifest whose string inputs the file says training stripped (`aiaas.strip`) strip
    what they are sent as training did, and a note; None for a file that says nothing."""
    try:
        named = stripped_inputs(metadata)
    except ValueError as exc:
        raise BadRequest(f"the model's own metadata cannot be read: {exc}") from None
    if named is None:
        return None
    strings = {spec.name for spec in manifest.inputs if spec.dtype == "string"}
    unknown = sorted(set(named) - strings)
    if unknown:
        raise BadRequest(
            f"the model's metadata ({STRIP_KEY}) names {', '.join(map(repr, unknown))}, which "
            "is no string input of its graph; publish the file `aiaas train` exported"
        )
    inputs = tuple(replace(s, strip=s.strip or s.name in named) for s in manifest.inputs)
    note = (
        f"text inputs {', '.join(named)}: blanks around a value stripped, as training read "
        f"its cells (the file's {STRIP_KEY})"
    )
    return replace(manifest, inputs=inputs), note
