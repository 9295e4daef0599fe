"""One training job end to end: spec -> data -> train -> ONNX -> parity -> [int8] -> card -> publish.

The same function runs behind `aiaas train`, `python -m training` (the GPU container's
entrypoint) and the tests. Data problems fail before training; a parity failure fails before
anything is published.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime.artifact_files import describe_files
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.fit import fit as fit_drift_baseline
from functions.runtime.explain.background import BACKGROUND_FILE, Background, summarize
from functions.runtime.explain.patches import input_features_axis
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import LoadedModel
from functions.runtime.publishing import check_no_twin, check_version_free
from functions.runtime.registry import Registry
from functions.runtime.tokenizer import embed
from training import card
from training.calibration import with_calibration
from training.card_calibration import RELIABILITY, reliability_plot
from training.changes import changes, served
from training.datasets import RawData, load_raw
from training.device import cpu_threads, resolve_device, wants_amp
from training.errors import SpecError
from training.export import (
    check_parity,
    export_onnx,
    quantization_gate,
    run_onnx,
)
from training.importance import Skipped, global_importance
from training.metrics import per_class, score
from training.prepare import PreparedData, prepare
from training.preprocess_graph import mark_stripped
from training.publish import build_manifest, publish, training_record
from training.recipes import CATALOG
from training.recipes.build import build_model
from training.run_folders import sweep, work_folder
from training.spec import JobSpec
from training.table_prep import shown_names
from training.text_parity import embed_and_check
from training.trainer import Trainer, TrainResult
from training.whole_file_checks import whole_file_class_warnings

log = logging.getLogger("aiaas.training")


@dataclass
class JobResult:
    """What a job produced; `published` is False for a dry run (`aiaas train` without --publish)."""

    manifest: ModelManifest
    model_path: Path
    extra_files: dict[str, Path]
    published: bool
    alias: str | None
    timings: dict[str, float] = field(default_factory=dict)


# What a run writes in its folder (an earlier run's is replaced whole): a folder holding
# anything else is the user's, never removed. `--out .` removed the current folder, data too.
RUN_FILES = re.compile(
    r"best\.npz|card|manifest\.json|vocab\.json|background\.json|drift_baseline\.json"
    r"|model[\w.-]*\.onnx[\w.-]*"  # model.float32.onnx, model.int8.onnx (and any .data)
)


def _check_folder(out_dir: Path) -> None:
    """Refuse an `out_dir` that is a file or holds files a run does not write (nothing removed)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SpecError(f"--out {out_dir} is a file; give a folder for the run's files")
    if out_dir.is_dir():
        others = sorted(p.name for p in out_dir.iterdir() if not RUN_FILES.fullmatch(p.name))
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise SpecError(
                f"--out {out_dir} holds files a run does not write ({shown}); give a new or "
                "empty folder (a run's folder is replaced, so it is never one that holds more)"
            )


def _swap_in(work: Path, out_dir: Path) -> None:
    """Replace `out_dir` with the finished `work` folder; the last run to finish keeps it."""
    for _ in range(10):  # another run may swap its folder in between our two renames
        _check_folder(out_dir)
        if out_dir.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{work.name}.old-", dir=work.parent))
            out_dir.replace(old / "run")
            shutil.rmtree(old)
        try:
            work.replace(out_dir)
            return
        except OSError:  # out_dir came back: a run beside this one swapped its folder in
            continue
    raise SpecError(f"--out {out_dir} kept being replaced by other runs; run again")


def run_job(
    spec: JobSpec,
    registry: Registry,
    out_dir: Path,
    *,
    spec_dir: Path | None = None,
    publish_model: bool = False,
    alias: str | None = None,
    reason: str | None = None,
    progress: bool | None = None,
    on_published: Callable[[], object] | None = None,
) -> JobResult:
    """Run `spec`, write artifacts under `out_dir` and, if asked, publish them to `registry`
    (`reason`: why its alias is set, kept in the alias history); `on_published` is told as soon
    as the version exists (training/publish.py `publish`)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if publish_model and spec.version:
        check_version_free(registry.store, spec.name, spec.version)
        check_no_twin(registry.store, spec.name, spec.version)
    kind = CATALOG[spec.recipe.name].kind
    raw = load_raw(spec.dataset, kind, spec_dir)
    data = prepare(raw, spec, kind)  # every data error surfaces here, before training
    for warning in whole_file_class_warnings(spec, raw, data):
        print(f"warning: {warning}", file=sys.stderr)
    timings["data_s"] = time.perf_counter() - started
    _check_folder(out_dir)
    sweep(out_dir)  # the work folders of runs SIGKILLed earlier (an OOM kill)
    work, lock = work_folder(out_dir)  # its own, locked while this run lives
    try:
        result = _run_in(
            spec, registry, raw, data, work, publish_model, alias, progress, timings,
            on_published, reason=reason,
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    else:
        _swap_in(work, out_dir)
    finally:
        os.close(lock)
    result.model_path = out_dir / result.model_path.relative_to(work)
    result.extra_files = {k: out_dir / p.relative_to(work) for k, p in result.extra_files.items()}
    timings["total_s"] = time.perf_counter() - started
    return result


def _run_in(
    spec: JobSpec,
    registry: Registry,
    raw: RawData,
    data: PreparedData,
    out_dir: Path,
    publish_model: bool,
    alias: str | None,
    progress: bool | None,
    timings: dict[str, float],
    on_published: Callable[[], object] | None = None,
    reason: str | None = None,
) -> JobResult:
    """The job once its data is ready: train, export, card, publish, all into `out_dir`, the
    run's own work folder (`_work_folder`), so publishing reads only this run's files."""
    result, validation = _train(spec, data, out_dir, progress, timings)
    model_path, facts = _export(spec, data, result, out_dir, timings)
    # Test metrics are those of the file that will be served, scored by onnxruntime.
    test_outputs = run_onnx(model_path, data.served_test())
    test = score(spec.task, data.test.y, test_outputs, len(data.labels))
    facts.update(
        metrics={"test": test, "validation": validation},
        training=training_record(spec, result),
        feature_names=raw.feature_names,
        generated_names=raw.generated_names,
    )
    version = spec.version or registry.next_version(spec.name)
    manifest = build_manifest(
        spec, version, data, model_path, facts,
        part_checksums=registry.store.takes_part_checksums,
    )  # fmt: skip
    manifest = with_calibration(manifest, test_outputs, data.test.y)  # the probabilities served
    earlier = served(registry, spec.name)  # what this version would replace: what changed
    if earlier is not None:
        extras = {**manifest.extras, "changes": changes(earlier, manifest)}
        manifest = replace(manifest, extras=extras)
    # What explanations compare a row with: a k-means summary of the training rows.
    background = (
        summarize(data.served_train(), strings=_strings(data)) if data.vocabulary is None else None
    )
    extra_files = _card_files(
        manifest, data, result, test_outputs, model_path, background,
        spec.export.importance_seconds,
    )  # fmt: skip
    if data.vocabulary is not None:
        extra_files["vocab.json"] = out_dir / "vocab.json"
        extra_files["vocab.json"].write_text(json.dumps(data.vocabulary.to_json(), indent=1))
    if background is not None:
        extra_files[BACKGROUND_FILE] = out_dir / BACKGROUND_FILE
        extra_files[BACKGROUND_FILE].write_text(background.to_json())
    # What served rows are compared with for drift: the training rows' bins and the served
    # file's own predictions on them. Text: the held-out splits' length and unknown-token
    # share (the vocabulary was built from the training split, which has no unknown words).
    drift_rows = (
        data.raw_served_train()
        if data.vocabulary is None
        else np.concatenate([data.validation.x, data.test.x])
    )
    drift = fit_drift_baseline(LoadedModel(manifest, model_path), drift_rows)
    extra_files[BASELINE_FILE] = out_dir / BASELINE_FILE
    extra_files[BASELINE_FILE].write_text(drift.to_json())
    # Listed with sizes and sha256 here, as publishing lists them: the run folder's manifest
    # is the one stored, and a later publish of the folder verifies every file against it.
    manifest = replace(manifest, files=describe_files(model_path, extra_files))
    (out_dir / "manifest.json").write_text(manifest.to_json())
    alias = (alias or spec.alias) if publish_model else None
    if publish_model:
        published = publish(
            registry,
            manifest,
            model_path,
            extra_files,
            alias,
            numbered=spec.version is None,
            on_published=on_published,
            reason=reason,
        )
        if published != manifest:  # its publish_id; its number, when another run took this one
            manifest = published
            (out_dir / "manifest.json").write_text(manifest.to_json())
    return JobResult(manifest, model_path, extra_files, publish_model, alias, timings)


def _train(
    spec: JobSpec,
    data: PreparedData,
    out_dir: Path,
    progress: bool | None,
    timings: dict[str, float],
) -> tuple[TrainResult, dict[str, Any]]:
    model = build_model(spec, data)
    parameters = sum(p.numel() for p in model.parameters())
    amp = wants_amp(spec.precision, parameters, spec.batch_size)
    device = resolve_device(spec.device, cpu_threads(spec.cpu_threads, parameters), amp)
    if spec.precision == "amp" and not device.amp:  # a spec for a GPU host, run on the CPU
        print(
            "note: precision 'amp' is for CUDA GPUs and torch sees none: this run trains in "
            "float32 on the CPU, and its manifest records precision fp32",
            file=sys.stderr,
        )
    trainer = Trainer(spec, data, device, progress=progress, checkpoint_dir=out_dir)
    mark = time.perf_counter()
    result = trainer.fit(model)
    timings["train_s"] = time.perf_counter() - mark
    _, validation = trainer.evaluate(result.model, data.validation)
    return result, validation


def _export(
    spec: JobSpec, data: PreparedData, result: TrainResult, out_dir: Path, timings: dict[str, float]
) -> tuple[Path, dict[str, Any]]:
    """Export, check parity (a failure raises: nothing is published), then the int8 gate."""
    mark = time.perf_counter()
    float_path = export_onnx(result.model, data, spec.export, out_dir / "model.float32.onnx")
    rows = spec.export.parity_rows
    parity = check_parity(
        result.model, float_path, data.test.x, spec.export, _output_scale(data),
        served=None if data.table is None else data.served_test(rows),
    )  # fmt: skip
    if data.vocabulary is not None:  # the file carries its tokenizer, checked text to logits
        parity["text"] = embed_and_check(result.model, float_path, data, spec.export)
    timings["export_s"] = time.perf_counter() - mark
    model_path, quantization = float_path, {"enabled": False}
    if spec.export.quantize:
        model_path, quantization = quantization_gate(
            float_path, data, spec.export, out_dir / "model.int8.onnx"
        )
        if data.vocabulary is not None and model_path != float_path:
            embed(str(model_path), data.vocabulary)
    if data.table is not None:  # its text inputs strip, as build_manifest says: the file too
        for path in dict.fromkeys((float_path, model_path)):
            mark_stripped(path)
    return model_path, {"parity": parity, "quantization": quantization}


def _strings(data: PreparedData) -> tuple[int, ...]:
    """The served rows' string columns (a table's text columns, one input each)."""
    return data.table.text_indices if data.table is not None else ()


def _output_scale(data: PreparedData) -> float:
    """What one unit of the network's output is in the exported output's units (parity gate)."""
    return 1.0 if data.labels else float(data.train.y.astype(np.float64).std())


def _card_files(
    manifest: ModelManifest,
    data: PreparedData,
    result: TrainResult,
    test_outputs: np.ndarray,
    model_path: Path,
    background: Background | None,
    importance_seconds: float,
) -> dict[str, Path]:
    folder = model_path.parent / "card"
    # The trainer's loss: cross-entropy (weighted where class_weight is: its values are not
    # the plain loss's), or a regression's MSE over the target's variance.
    weighted = "weighted " if manifest.training.get("class_weight") else ""
    named = f"{weighted}cross-entropy" if data.labels else "MSE / train variance of target"
    loss = card.loss_plot(
        result.history, result.monitor, folder / "loss.png", result.best_epoch, named
    )
    plots = {"Loss curves": loss}
    if data.labels:
        matrix = manifest.metrics["test"]["confusion_matrix"]
        plots["Confusion matrix"] = card.confusion_plot(
            matrix, data.labels, folder / "confusion.png"
        )
    else:
        plots["Residuals"] = card.residual_plot(
            data.test.y, test_outputs, folder / "residuals.png", _target_name(manifest)
        )
    # A table served one input per column is explained from its raw columns (strings, gaps).
    test = data.served_test() if data.table is not None and data.table.per_column else data.test.x
    try:  # export.importance_seconds 0: the spec's own choice, no note
        importance = (
            global_importance(str(model_path), manifest, background, test, importance_seconds)
            if background is not None and importance_seconds > 0
            else None
        )
    except Skipped as skipped:  # the card's plot, never the run (the model is trained)
        print(f"note: no feature importance in the card: {skipped}", file=sys.stderr)
        importance = None
    top = None
    if importance is not None:
        names, values, rows = importance
        plots["Feature importance"] = card.importance_plot(
            names, values, folder / "importance.png", rows=rows, axis=input_features_axis(manifest)
        )
        top = card.top_importance(names, values, rows)  # the plot's numbers, read without it
    facts = manifest.to_dict()
    facts.update(
        # quoted as the Features line quotes them: `monthly income, €` read as two inputs
        inputs=[f"{shown_names([s.name])} {s.dtype} {list(s.shape)}" for s in manifest.inputs],
        outputs=[f"{s.name} {s.dtype} {list(s.shape)}" for s in manifest.outputs],
        opset=manifest.file.opset,
        size=manifest.file.size,
        parity=manifest.extras["parity"],
        quantization=manifest.extras["quantization"],
        metrics={
            k: {m: v for m, v in vals.items() if m != "rows"}
            for k, vals in manifest.metrics.items()
        },
        classes=_class_rows(data, manifest.metrics["test"].get("confusion_matrix")),
        importance=top,
    )
    card_md = card.write_card(folder / "card.md", facts, {t: p.name for t, p in plots.items()})
    files = {"card/card.md": card_md}
    calibrated = manifest.metrics["test"].get("calibration")
    if calibrated:  # drawn in its own section (card_calibration), not with the plots
        files[f"card/{RELIABILITY}"] = reliability_plot(calibrated, folder / RELIABILITY)
    files.update({f"card/{p.name}": p for p in plots.values()})
    return files


def _class_rows(data: PreparedData, confusion: list[list[int]] | None) -> list[dict[str, Any]]:
    """Each class (the model's order: its scores, the confusion matrix's rows and columns) with
    its rows in each split: the card named none, so its matrix and metrics read as numbers; and
    its test precision, recall and F1 (a 99:1 model answering only the majority read 0.99)."""
    if not data.labels:  # a regression
        return []
    splits = {"train": data.train, "validation": data.validation, "test": data.test}
    counts = {k: np.bincount(s.y, minlength=len(data.labels)) for k, s in splits.items()}
    scores = per_class(confusion) if confusion else [{} for _ in data.labels]
    return [
        {"name": label, **{k: int(c[i]) for k, c in counts.items()}, **scores[i]}
        for i, label in enumerate(data.labels)
    ]


def _target_name(manifest: ModelManifest) -> str:
    """The spec's target column (its units), "" where the spec names none (an array's y)."""
    return str((manifest.training.get("dataset") or {}).get("target") or "")
