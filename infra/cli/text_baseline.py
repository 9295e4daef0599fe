"""`aiaas baseline` for a text model: the drift baseline of a file of texts like its training's.

The texts are tokenized by the model's own tokenizer exactly as serving tokenizes them (the
predict function's `TextFeeds`), each binned as its length in tokens and its share of unknown
tokens by that tokenizer's own pad, unknown token and attention mask (drift/text.py). No explain
background is written: a text is explained against an all-padding row (ours), or itself with
every token hidden by the attention mask (a tokenizer.json's), which needs none.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime.batch.jsonl import JsonlDecoder
from functions.runtime.drift.fit import fit
from functions.runtime.drift.text import NO_UNKNOWN, UNKNOWN
from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import TextInput, batch_view, is_blank
from infra.cli.baseline_command import Made, put_drift_baseline
from infra.cli.file_args import file_suffix, require_file
from infra.cli.jsonl_rows import JSONL_SUFFIXES


def text_baseline(
    plane: Any, manifest: ModelManifest, text: TextInput, args: argparse.Namespace, made: Made
) -> int:
    """The drift baseline of a text model (`made`: what it is made from, recorded in it)."""
    from infra.cli.csv_rows import read_texts

    ref = f"{manifest.name}:{manifest.version}"
    model = plane.models.model(manifest.name, manifest.version)
    path: Path = args.data
    if file_suffix(path) == ".npy":  # training's token ids (an older text model takes nothing else)
        drift = fit(model, _token_ids(path), bins=args.bins)
    else:
        texts = (
            _jsonl_texts(path, manifest)
            if file_suffix(path) in JSONL_SUFFIXES
            else read_texts(path, text.field, manifest=manifest)
        )
        if not texts:
            raise BadRequest(
                f"{path}: no texts; a baseline needs texts like the model's training data"
            )
        _refuse_blank(path, texts, model.text.vocabulary if model.text is not None else None)
        drift = fit(model, np.array(texts, dtype=object), bins=args.bins)
    if not put_drift_baseline(plane, manifest, drift.to_json(), made):
        return 0  # another run wrote it from this data meanwhile: said
    print(
        f"{ref}: drift baseline = {drift.rows} texts in {args.bins} bins a feature (tokens, "
        f"unknown_share); no background: a text is explained against {_against(manifest)}"
    )
    if UNKNOWN in drift.constant:
        print(NO_UNKNOWN.format(ref=ref))
    return 0


def _token_ids(path: Path) -> np.ndarray:
    """Token ids [N, L] from an .npy file: integers, one row of ids a text."""
    try:
        ids = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BadRequest(f"{path}: not a readable .npy file ({exc})") from None
    if not isinstance(ids, np.ndarray):  # an .npz under an .npy name
        raise BadRequest(f"{path}: an .npz archive, not one .npy array of token ids")
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or not len(ids):
        raise BadRequest(
            f"{path}: a text model's .npy holds token ids, integers [rows, tokens]; "
            f"got {ids.dtype} {list(ids.shape)}"
        )
    return np.asarray(ids, dtype=np.int64)


def _refuse_blank(path: Path, texts: list[str], tokenizer: Any) -> None:
    """Training texts all count, or the user says which to leave out: an empty one, or one the
    tokenizer keeps nothing of (serving refuses both), named with how many there are."""
    keeps = getattr(tokenizer, "keeps", None)  # a tokenizer.json's normalizer may drop it all
    bad = [i for i, t in enumerate(texts) if is_blank(t) or (keeps is not None and not keeps(t))]
    if bad:
        first = texts[bad[0]]
        raise BadRequest(
            f"{path}: text {bad[0] + 1} ({json.dumps(first[:40])}) holds nothing the "
            f"tokenizer keeps; fix or remove it ({len(bad)} such)"
        )


def _jsonl_texts(path: Path, manifest: ModelManifest) -> list[str]:
    """The texts of a JSONL (.ndjson) file read as `aiaas batch` reads them (records with the
    text field); a line it would refuse is named, with how many there are."""
    require_file(path)
    view = batch_view(manifest)
    chunk = JsonlDecoder(view).chunk(1, path.read_bytes().split(b"\n"))
    if chunk.errors:
        error = min(chunk.errors, key=lambda e: e.position)
        raise BadRequest(
            f"{path}: line {error.position}: {error.reason}; fix or remove it "
            f"({len(chunk.errors)} bad)"
        )
    texts: list[str] = chunk.features[view.inputs[0].name].tolist()
    return texts


def _against(manifest: ModelManifest) -> str:
    """What a text is explained against: the base value's row, as docs/explain.md says it. A
    transformer published with its tokenizer.json hides a token by its attention mask, ids and
    positions kept, special tokens seen (said to be "an all-padding row" until 2026-12-07)."""
    pre = manifest.preprocessing or {}
    if pre.get("tokenizer") != "huggingface":
        return "an all-padding row"
    if pre.get("mask_input"):
        return "itself with every token hidden by the attention mask (special tokens kept)"
    return "itself with every token's id the pad id (special tokens kept)"
