"""Which optional extra of the `aiaas` distribution provides which import.

`pip install aiaas` serves models from a directory store; the rest comes in extras named for
what they enable (pyproject.toml). When a command reaches code whose package is missing, the CLI
and the local gateway say which extra to install instead of showing an import traceback.
"""

from __future__ import annotations

# Top-level import name -> (extra, what it is for). Only third-party packages of an extra are
# listed: a missing module of aiaas itself is a bug and keeps its traceback.
EXTRA_OF: dict[str, tuple[str, str]] = {
    "boto3": ("aws", "S3 and AWS access"),
    "botocore": ("aws", "S3 and AWS access"),
    "fastapi": ("control", "the control plane"),
    "mangum": ("control", "the control plane"),
    "pydantic": ("control", "the control plane"),
    "torch": ("training", "training"),
    "onnx": ("training", "training"),
    "onnxscript": ("training", "training"),
    "tqdm": ("training", "training"),
    "matplotlib": ("card", "plots (model cards, drift reports, explanations)"),
    "pyarrow": ("parquet", "Parquet data"),
    "aws_xray_sdk": ("tracing", "X-Ray tracing"),
    "tokenizers": ("text", "Hugging Face tokenizers"),
}


def install_hint(exc: BaseException) -> str | None:
    """'<what> needs <module>: pip install 'aiaas[<extra>]'' when `exc` is, or was caused by, a
    missing module of an extra; else None. The chain is followed as Python prints it: an error
    raised `from None` replaced the one it was handling and says itself what to install (the
    quantize extra for `--quantize`'s onnx, where onnx's own entry would say training)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModuleNotFoundError) and current.name:
            top = current.name.partition(".")[0]
            if top in EXTRA_OF:
                extra, purpose = EXTRA_OF[top]
                return (
                    f"{purpose} needs {top}, which is not installed: pip install 'aiaas[{extra}]'"
                )
        suppressed = current.__suppress_context__
        current = current.__cause__ or (None if suppressed else current.__context__)
    return None
