"""What `aiaas show` prints about a version: its manifest as lines a person reads."""

from __future__ import annotations

from typing import Any

from functions.runtime.explain.patches import declared_window
from functions.runtime.manifest import ModelManifest
from functions.runtime.metric_text import metrics_text
from functions.runtime.parity_text import parity_summary
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.text_input import carries_tokenizer
from infra.cli.printable import printable_lines
from training.calibration import calibration_text


def _opset(opset: int) -> str:
    # 0: published without the onnx package, which reads the opset (onnxruntime does not), or
    # a graph that imports no default-domain opset (XGBoost's and CatBoost's: ai.onnx.ml only).
    if opset:
        return f"opset {opset}"
    return "opset not read (published without the onnx package, or ai.onnx.ml operators only)"


def describe_manifest(
    manifest: ModelManifest,
    reg: Registry,
    card_problems: list[str] | None = None,
    digest: str | None = None,
) -> list[str]:
    """Human-readable lines for `aiaas show`; `card_problems`: the card files that are not as
    the manifest lists them (infra.cli.card_check), said on the card's line."""
    aliases = [
        f"@{a}" for a, v in sorted(reg.aliases(manifest.name).items()) if v == manifest.version
    ]
    lines = [
        f"{manifest.name}:{manifest.version} {' '.join(aliases)}".rstrip(),
        f"  task:      {manifest.task}",
        f"  created:   {manifest.created_at}",
        *(
            [f"  manifest:  sha256 {digest} (checked by nothing: compare it with the approved one)"]
            if digest
            else []
        ),
        f"  file:      {manifest.file.size} bytes, sha256 {manifest.file.sha256}",
    ]
    # Every other file of the version: a 26 KB model.onnx whose weights are 2 GB beside it.
    lines += [
        f"  {'':10} {f.path}: {f.size} bytes, sha256 {f.sha256} ({f.role})" for f in manifest.files
    ]
    lines += [
        f"  producer:  {manifest.file.producer}, {_opset(manifest.file.opset)}",
        "  inputs:",
    ]
    lines += [
        f"    {s.name:20} {s.dtype:8} {list(s.shape)}{'  finite' if s.finite else ''}"
        + ("  (missing values taken: NaN, not infinity)" if s.gaps else "")
        + (f"  null as {s.missing!r}" if s.missing is not None else "")
        + (f" ({', '.join(s.na_categories)}: categories)" if s.missing and s.na_categories else "")
        + ("  null refused: send 'None'" if s.none_category else "")
        for s in manifest.inputs
    ]
    lines.append("  outputs:")
    lines += [f"    {s.name:20} {s.dtype:8} {list(s.shape)}" for s in manifest.outputs]
    if manifest.labels:
        lines.append(f"  labels:    {', '.join(manifest.labels)}")
    if manifest.features:
        lines.append(f"  features:  {', '.join(manifest.features)}")
    pre = manifest.preprocessing
    window = declared_window(manifest)
    if window is not None:  # explained in runs of one feature, drift watched per feature
        lines.append(f"  window:    features on the row's {window} side (--window-features)")
    if "vocab_file" in pre and "max_length" in pre and carries_tokenizer(manifest):
        lines.append(  # a text model: raw text in
            f"  text:      {pre.get('tokenizer', 'token ids')} tokenizer ({pre['vocab_file']}), "
            f"texts cut to {pre['max_length']} tokens"
        )
    elif "vocab_file" in pre and "max_length" in pre:
        lines.append(
            f"  text:      token ids only, from {pre['vocab_file']} (published before text "
            "models carried their tokenizer: `aiaas train` again for raw text)"
        )
    lines += _metric_lines(manifest.metrics)
    parity = manifest.extras.get("parity")
    if isinstance(parity, dict) and {"max_abs_diff", "rows", "tolerance"} <= parity.keys():
        lines.append(f"  parity:    {parity_summary(parity)}")  # training's torch vs ONNX gate
    quantization = manifest.extras.get("quantization")
    if isinstance(quantization, dict) and "method" in quantization:  # aiaas publish --quantize
        lines += _dict_lines("quantization", quantization)
    card = (
        reg.store.uri.rstrip("/")
        + "/"
        + version_prefix(manifest.name, manifest.version)
        + "/card/card.md"
    )
    if card_problems:
        lines.append(
            f"  card:      {card}  (NOT as published: {len(card_problems)} file(s) changed)"
        )
    elif reg.store.exists(f"{version_prefix(manifest.name, manifest.version)}/card/card.md"):
        lines.append(f"  card:      {card}")
    return printable_lines(lines)


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    """`test: accuracy=0.9565 macro_f1=0.9659 (46 rows)`, a line per split scored, named and
    formatted as `aiaas compare`, the card and `aiaas versions` show them."""
    lines = []
    for split, values in metrics.items():
        if not isinstance(values, dict) or not metrics_text(values):
            continue
        rows = values.get("rows")
        lines.append(f"    {split}: {metrics_text(values)}" + (f" ({rows} rows)" if rows else ""))
        calibrated = values.get("calibration")  # a classifier's: do its probabilities hold?
        if isinstance(calibrated, dict) and {"ece", "max_error", "brier"} <= calibrated.keys():
            named = f"{split.replace('_', '-')} rows"  # held_out: `of 300 held-out rows`
            lines.append(f"      calibration: {calibration_text(calibrated, named)}")
    top = metrics_text(metrics)  # published by another tool: the metrics with no split
    return ["  metrics:", *([f"    {top}"] if top else []), *lines] if top or lines else []


def _dict_lines(title: str, data: dict[str, Any], indent: str = "  ") -> list[str]:
    if not data:
        return []
    lines = [f"{indent}{title}:"]
    for key, value in data.items():
        if isinstance(value, dict):
            lines += _dict_lines(key, value, indent + "  ")
        elif isinstance(value, float):
            lines.append(f"{indent}  {key}: {value:.6g}")
        elif not isinstance(value, list):
            lines.append(f"{indent}  {key}: {value}")
        elif value and all(_is_file(v) for v in value):
            # A variant's source's data files (`model.onnx.data`): only --json showed them.
            lines.append(f"{indent}  {key}:")
            lines += [
                f"{indent}    {v['file']}: {v['size']} bytes, sha256 {v['sha256']}" for v in value
            ]
    return lines


def _is_file(value: Any) -> bool:
    """A file as a manifest records a variant's source's: name, size, sha256."""
    return isinstance(value, dict) and {"file", "size", "sha256"} <= value.keys()
