"""The model card `aiaas publish` writes for every version, stored under `card/` as a trained one.

What the model is (task, producer and opset from the ONNX file, inputs and outputs with dtypes
and shapes, labels, features, every file with its size and sha256, what publish noted), and with
`--data` its held-out metrics and plots (`publish_scoring`); without, the card says so and how
to add them. The card is an extra file of the version: committed before the manifest, which
lists it with its sha256, so it is as immutable as the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.runtime.file_hashes import sha256_file
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.metric_text import metrics_text
from infra.cli.output_change import outputs_only
from training.card_calibration import TITLE, calibration_lines
from training.card_text import md_code, md_paragraphs, md_text

CARD = "card/card.md"
NO_DATA = (
    "No labelled data was given, so this card has no metrics or plots. To add them, publish "
    "the same file again (a new version) with `--data FILE --target COLUMN`: FILE holds "
    "held-out rows (CSV, JSONL or NPZ) as the predict API takes them, COLUMN their true class "
    "or value (default: `label`, else `target`, else `y`)."
)

OUTPUTS_ONLY = (
    "The model answers several values a row and names no classes, so no metric can be scored "
    "against labels. The `--data` rows compared the quantized variant's outputs with its "
    "source's (see the notes above and the manifest's `extras.quantization.evaluation`)."
)


@dataclass(frozen=True)
class Scored:
    """What the card shows about the data: the manifest's metrics, plots, and why any is missing."""

    metrics: dict[str, Any]
    plots: dict[str, Path]  # title -> PNG
    remarks: tuple[str, ...]
    uncalibrated: str | None = None  # why a classifier's held-out rows have no calibration


def card_files(
    manifest: ModelManifest,
    scored: Scored | None,
    notes: tuple[str, ...],
    others: Mapping[str, tuple[Path, str]],
    folder: Path,
) -> dict[str, Path]:
    """The card's files (`card/...` -> local path): card.md written into `folder`, beside the
    plots `scored` drew there; `others` are the version's other files (path -> file, role)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(card_lines(manifest, scored, notes, others))
    (folder / "card.md").write_text(text + "\n", encoding="utf-8")
    plots = scored.plots.values() if scored else ()
    return {CARD: folder / "card.md", **{f"card/{path.name}": path for path in plots}}


def card_lines(
    manifest: ModelManifest, scored: Scored | None, notes: tuple[str, ...],
    others: Mapping[str, tuple[Path, str]],
) -> list[str]:  # fmt: skip
    """The card as Markdown lines; every string aiaas did not write reads as itself
    (`card_text`): a model file's names and producer, the data file's name, the description."""
    lines = [f"# {md_text(manifest.name)}:{md_text(manifest.version)}", ""]
    if manifest.description.strip():
        lines += [*md_paragraphs(manifest.description), ""]
    lines += [*_about(manifest), "", "## Inputs", "", *_tensors(manifest.inputs), ""]
    lines += ["## Outputs", "", *_tensors(manifest.outputs), ""]
    lines += ["## Files", "", *_files(manifest, others), ""]
    if notes:
        lines += ["## Notes from publishing", "", *[f"- {md_text(note)}" for note in notes], ""]
    lines += ["## Held-out metrics", ""]
    if scored is None:
        return [*lines, OUTPUTS_ONLY if outputs_only(manifest) else NO_DATA]
    held_out = scored.metrics["held_out"]
    lines += _metrics(held_out)
    lines += ["", *[f"- {md_text(remark)}" for remark in scored.remarks]] if scored.remarks else []
    reliability = scored.plots.get(TITLE)
    calibrated = calibration_lines(
        held_out.get("calibration"), scored.uncalibrated, f"rows of {held_out['data']}",
        reliability.name if reliability else None,
    )  # fmt: skip
    lines += ["", *calibrated[:-1]] if calibrated else []
    plots = {t: p for t, p in scored.plots.items() if t != TITLE}  # in its own section
    if plots:
        lines += ["", "## Plots", "", *[f"![{t}]({p.name})" for t, p in plots.items()]]
    return lines


def _about(manifest: ModelManifest) -> list[str]:
    opset = f"opset {manifest.file.opset}" if manifest.file.opset else "opset not read"
    lines = [
        # No date: the same publish writes the same bytes, so a retry of an interrupted one
        # (or a twin) finds the card it left equal to its own (publishing.py).
        f"- Task: {manifest.task}; published with `aiaas publish` from an ONNX file",
        f"- Producer: {md_text(manifest.file.producer)} ({opset})",
    ]
    if manifest.labels:
        lines.append(
            f"- Labels ({len(manifest.labels)}): {', '.join(map(md_text, manifest.labels))}"
        )
    if manifest.postprocessing is not None:
        post = manifest.postprocessing
        lines.append(
            f"- Class scores: output {md_code(post.scores_output)}, activation {post.activation}"
        )
    if manifest.features:
        lines.append(
            f"- Features ({len(manifest.features)}): {', '.join(map(md_text, manifest.features))}"
        )
    return lines


def _tensors(specs: tuple[TensorSpec, ...]) -> list[str]:
    rows = ["| name | dtype | shape |", "|---|---|---|"]
    for spec in specs:
        dtype = spec.dtype
        if spec.map_keys:  # a ZipMap: one {class: score} map a row, served as [N, classes]
            keys = "string" if isinstance(spec.map_keys[0], str) else "int64"
            dtype = f"map({keys} -> {spec.dtype}), {len(spec.map_keys)} classes"
        rows.append(f"| {md_text(spec.name)} | {md_text(dtype)} | {md_text(list(spec.shape))} |")
    return rows


def _files(manifest: ModelManifest, others: Mapping[str, tuple[Path, str]]) -> list[str]:
    rows = ["| file | role | bytes | sha256 |", "|---|---|---|---|"]
    model = manifest.file
    rows.append(f"| {md_text(model.path)} | model | {model.size} | `{model.sha256}` |")
    for name, (path, role) in sorted(others.items()):
        size, digest = path.stat().st_size, sha256_file(path)
        rows.append(f"| {md_text(name)} | {md_text(role)} | {size} | `{digest}` |")
    return [*rows, "", "The card's own files are listed, with their sha256, in manifest.json."]


def rows_read(rows: int, in_file: int | None) -> str:
    """How many rows --data scored, as publish's output and the card say it: "300 rows", or
    "the first 100,000 of 100,010 rows" (it read "on 100000 rows", and rows past those, however
    badly predicted, moved no metric without a word)."""
    if in_file is None or in_file <= rows:
        return f"{rows} rows"
    return f"the first {rows:,} of {in_file:,} rows"


def _metrics(held_out: dict[str, Any]) -> list[str]:
    shown = metrics_text(held_out)
    data = md_code(held_out["data"])
    lines = [
        f"Scored as the predict API answers, on "
        f"{rows_read(held_out['rows'], held_out.get('rows_in_file'))} of "
        f"{data} (true values in {md_code(held_out['target'])}"
        + (f", against output {md_code(held_out['output'])}" if "output" in held_out else "")
        + "):",
        "",
        "| data | rows | metrics |",
        "|---|---|---|",
        f"| {md_text(held_out['data'])} | {held_out['rows']} | {shown} |",
    ]
    if held_out.get("rows_in_file"):
        lines.append(f"\n{data} has {held_out['rows_in_file']:,} rows: `--data` "
                     "scores a file's first 100,000 at most, and the rest are in no metric or "
                     "plot here.")  # fmt: skip
    if held_out.get("rows_not_finite"):
        lines.append(f"\n{held_out['rows_not_finite']} rows had a non-finite prediction or "
                     "label and are left out.")  # fmt: skip
    return lines
