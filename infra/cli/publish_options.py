"""`aiaas publish` options that change the file published: `--tokenizer` and `--quantize`.

Both run before anything is written, on copies in the publish's private folder (never in the
user's model folder): the quantizer on its own copy of the source, the graph and tokenizer
checks on the source, the tokenizer embedded into the file that is published (the variant, when
quantized), and with `--data` both files scored as serving scores them (the card scores the
published one: publish_scoring.py). A model's external data
files go with each copy (`model_files`). Any refusal leaves the store untouched.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime.errors import BadRequest
from functions.runtime.file_hashes import sha256_file
from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import TEXT_FIELD
from infra.cli import publish_quantize, publish_variant_answers, publish_variant_check
from infra.cli.file_args import require_file
from infra.cli.publish_text import text_setup
from infra.cli.publish_vocabulary import carried_strip, carried_vocabulary


def add_publish_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tokenizer",
        type=Path,
        help="a Hugging Face tokenizer.json: the model (a transformer reading token ids) then "
        "answers raw text; checked against the graph's embedding (needs aiaas[text])",
    )
    p.add_argument(
        "--max-length",
        type=int,
        help="with --tokenizer: the most tokens the model reads; longer texts are truncated "
        "(default: tokenizer.json's own truncation, up to what the model reads: the ids "
        "input's width, else the graph's position table; without a truncation, that)",
    )
    p.add_argument(
        "--text-field",
        default=TEXT_FIELD,
        help="with --tokenizer: the record field / batch column raw text is read from "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--quantize",
        choices=publish_quantize.METHODS,
        help="publish a smaller variant: int8 (dynamic quantization) or fp16 weights; inputs "
        "and outputs keep their types; refused where it makes the model no smaller",
    )
    p.add_argument(
        "--data",
        type=Path,
        help="held-out labelled rows (.jsonl, .csv/.txt or .npz), scored as the predict API answers: "
        "the version's card gets metrics (accuracy, F1, confusion matrix; or R2, RMSE, "
        "residuals) and feature importance, the manifest the metrics; with --quantize also "
        "the accuracy or error before and after (for a model of several values a row and no "
        "classes, rows without labels: the variant's outputs against the source's)",
    )
    p.add_argument(
        "--max-drop",
        type=float,
        metavar="POINTS",
        help="with --quantize and --data: the most points of accuracy (or of R2 x 100, for a "
        "regressor) the variant may lose; more is refused, as aiaas train refuses int8 "
        f"(default: {publish_variant_check.MAX_DROP:g})",
    )
    p.add_argument(
        "--target",
        metavar="COLUMN",
        help="with --data: the column (NPZ: array) holding each row's true class or value "
        "(default: label, else target, else y)",
    )


@dataclass(frozen=True)
class Prepared:
    manifest: ModelManifest
    model: Path
    extra_files: dict[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _check(args: argparse.Namespace) -> None:
    if args.tokenizer is None and (args.max_length is not None or args.text_field != TEXT_FIELD):
        raise BadRequest("--max-length and --text-field go with --tokenizer")
    if args.target is not None and args.data is None:
        raise BadRequest("--target goes with --data: it names the data's label column")
    if args.data is not None:
        require_file(args.data, "--data")
    if args.max_drop is not None and (args.quantize is None or args.data is None):
        raise BadRequest("--max-drop goes with --quantize and --data: it limits the metric drop")
    if args.max_drop is not None and not args.max_drop >= 0:
        raise BadRequest(f"--max-drop {args.max_drop:g}: give the points allowed, 0 or more")
    if args.tokenizer is not None:
        require_file(args.tokenizer, "--tokenizer")


def _with_text(
    args: argparse.Namespace, manifest: ModelManifest, model: Path, graph_of: Path, work: Path
) -> Prepared:
    setup = text_setup(
        manifest,
        model,
        args.tokenizer,
        work,
        graph_of=graph_of,
        length=args.max_length,
        field=args.text_field,
    )
    return Prepared(setup.manifest, setup.model, setup.extra_files, setup.notes)


def _evaluated(
    args: argparse.Namespace, source: Prepared, result: Prepared, quantization: dict[str, Any]
) -> list[str]:
    """Both files scored on --data (recorded in `quantization`) and the notes saying so; a
    BadRequest when the variant lost more than --max-drop points (training's default). A model
    of several values a row and no classes has its outputs compared instead."""
    from infra.cli.publish_card import rows_read
    from infra.cli.publish_data import read_data
    from infra.cli.publish_evaluation import evaluate

    compared = publish_variant_answers.compare_on_data(
        (source.manifest, source.model),
        (result.manifest, result.model),
        args.data,
        args.target,
        alone=args.quantize == "int8",
    )
    if compared is not None:  # several values a row and no classes: nothing to score
        quantization["evaluation"] = compared
        notes = publish_variant_answers.data_notes(args.quantize, compared)
        if compared.get("alone", {}).get("same_answer_share", 1) < 1:
            notes.append(publish_quantize.batch_note(compared["alone"], "outputs"))
        return notes
    measured = evaluate(
        (source.manifest, source.model),
        (result.manifest, result.model),
        args.data,
        args.target,
        alone=args.quantize == "int8",
    )
    variance = 0.0
    if measured["metric"] != "accuracy":  # R2's denominator: the labels' variance
        labels = read_data(args.data, source.manifest, args.target).labels
        variance = float(np.var(np.asarray(labels, dtype=np.float64)))
    dropped = publish_variant_check.drop_points(measured, variance)
    allowed = publish_variant_check.MAX_DROP if args.max_drop is None else args.max_drop
    publish_variant_check.check_drop(args.quantize, measured, dropped, allowed, args.data)
    quantization["evaluation"] = {
        **measured,
        "drop_points": round(dropped, 4),
        "max_drop_points": allowed,
    }
    notes = [
        f"{measured['metric']} on {rows_read(measured['rows'], measured.get('rows_in_file'))} "
        f"of {args.data.name}: "
        f"{measured['before']:.4g} before, {measured['after']:.4g} after"
    ]
    if "alone" in measured and measured["alone"]["same_answer_share"] < 1:
        notes.append(publish_quantize.batch_note(measured["alone"], measured["metric"]))
    return notes


def apply_publish_options(
    args: argparse.Namespace,
    manifest: ModelManifest,
    model: Path,
    work: Path,
    metadata: Mapping[str, str] | None = None,
) -> Prepared:
    """The manifest and file to publish under these options (as given when there are none);
    `metadata`: the file's, where a model `aiaas train` exported carries its vocabulary or the
    text inputs it strips."""
    _check(args)
    extra: dict[str, Path] = {}
    carried_notes: tuple[str, ...] = ()
    stripped = carried_strip(manifest, metadata or {})
    if stripped is not None:
        manifest, note = stripped
        carried_notes = (note,)
    if args.tokenizer is None:
        carried = carried_vocabulary(manifest, metadata or {}, work / "vocabulary")
        if carried is not None:
            manifest, extra, note = carried
            carried_notes = (*carried_notes, note)
    variant = publish_quantize.quantize(model, args.quantize, work) if args.quantize else None
    source = Prepared(manifest, model, extra, carried_notes)
    if args.tokenizer is not None:
        source = _with_text(args, manifest, model, model, work / "source")
    if variant is None:
        return source
    sized = replace(manifest.file, sha256=sha256_file(variant), size=variant.stat().st_size)
    sized_manifest = replace(manifest, file=sized)
    result = Prepared(sized_manifest, variant, extra, carried_notes)
    if args.tokenizer is not None:
        result = _with_text(args, result.manifest, variant, model, work / "variant")
    quantization = publish_quantize.record(args.quantize, model, variant)
    notes = [
        f"{args.quantize}: {quantization['source_bytes']} -> {quantization['quantized_bytes']} bytes"
    ]
    if args.data is not None:
        notes += _evaluated(args, source, result, quantization)
    else:
        probe = publish_variant_answers.compare_on_probe(
            (manifest, model), (sized_manifest, variant)
        )
        quantization["probe"] = probe
        notes += filter(None, [publish_variant_answers.probe_note(args.quantize, probe)])
    timed = publish_variant_check.latency(model, variant, manifest)
    if timed is not None:
        quantization["latency"] = timed
        notes += filter(None, [publish_variant_check.latency_note(args.quantize, timed)])
    extras = {**result.manifest.extras, "quantization": quantization}
    return Prepared(
        replace(result.manifest, extras=extras),
        result.model,
        result.extra_files,
        (*result.notes, *notes),
    )
