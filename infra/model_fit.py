"""Will a model fit its predict function? Checked before deploying, with the numbers.

    python -m infra.model_fit --store s3://bucket/registry      # every model in template.yaml
    python -m infra.model_resources --write --store URI         # refuses to generate if not

A function holds the runtime, the model's weights as onnxruntime keeps them, and its arena for
activations. How many copies of the weights a load holds at its peak depends on where the files
land (measured on a 1 GB synthetic transformer, docs/large_models.md): external data on disk is
memory-mapped (1.0x), and so is a single file on disk of 64 MB or more, through a graph file
pointing at its weights (functions/runtime/mapped_weights.py); a smaller single file is parsed
then packed (1.9x, a few MB more at most); from memory, when
/tmp cannot take the files (SnapStart allows 512 MB), the buffers and onnxruntime's packed copy
overlap (2.9x). A version that cannot fit is refused with what to change.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from functions.runtime.cache import DISK_MARGIN
from functions.runtime.manifest import ModelManifest
from functions.runtime.mapped_weights import MIN_FILE_BYTES
from infra.cfn_yaml import DEFAULT_TEMPLATE, load_template
from infra.model_settings import MEMORY_MB, ModelSettings, template_models

MB = 1024 * 1024
RUNTIME_MB = 150  # python, numpy, onnxruntime and the predict handler, before any model
TMP_MB = 512  # Lambda's default /tmp, and the most SnapStart allows
PEAK_COPIES = {  # measured, rounded up
    "external-disk": 1.1,
    "mapped-single-disk": 1.1,
    "single-disk": 2.0,
    "memory": 3.0,
}
ARENA_SHARE = 0.10  # activations: onnxruntime's arena grows with the model's widths
HEADROOM = 0.10  # of the function's memory, for requests and the garbage collector


@dataclass(frozen=True)
class Fit:
    """What loading one version needs, against what its function has."""

    ref: str
    weights_mb: float
    loads_from: str  # a PEAK_COPIES key
    need_mb: int
    memory_mb: int

    @property
    def fits(self) -> bool:
        return self.need_mb <= self.memory_mb * (1 - HEADROOM)

    def problem(self) -> str | None:
        if self.fits:
            return None
        copies = PEAK_COPIES[self.loads_from]
        wanted = -(-round(self.need_mb / (1 - HEADROOM)) // 64) * 64
        fix = (
            f"raise MemorySize to {wanted}"
            if wanted <= MEMORY_MB[1]
            else f"no Lambda function has that much (at most {MEMORY_MB[1]} MB)"
        )
        return (
            f"{self.ref} needs ~{self.need_mb} MB ({self.weights_mb:.0f} MB of weights x {copies} "
            f"loading from {self.loads_from.replace('-', ' ')} + {RUNTIME_MB} MB runtime + "
            f"{ARENA_SHARE:.0%} arena) but its function has {self.memory_mb} MB with "
            f"{HEADROOM:.0%} headroom: {fix}, or publish it smaller (external data, "
            "--quantize int8)"
        )


def model_fit(manifest: ModelManifest, memory_mb: int, tmp_mb: int = TMP_MB) -> Fit:
    """The fit of `manifest` in a function of `memory_mb` with `tmp_mb` of /tmp."""
    weights = manifest.weight_bytes
    if weights + DISK_MARGIN > tmp_mb * MB:
        where = "memory"
    elif manifest.weight_files:
        where = "external-disk"
    else:
        mapped = manifest.file.size >= MIN_FILE_BYTES
        where = "mapped-single-disk" if mapped else "single-disk"
    need = RUNTIME_MB * MB + weights * (PEAK_COPIES[where] + ARENA_SHARE)
    return Fit(
        f"{manifest.name}:{manifest.version}", weights / MB, where, round(need / MB), memory_mb
    )


def template_fits(store_uri: str, template: Path = DEFAULT_TEMPLATE) -> tuple[list[Fit], list[str]]:
    """(the fit of each model's selected version, notes on models not yet published)."""
    from functions.runtime.errors import NotFound
    from functions.runtime.registry import Registry
    from functions.runtime.store import open_store

    registry = Registry(open_store(store_uri))
    fits, notes = [], []
    for model, raw in template_models(load_template(template)).items():
        settings = ModelSettings.of(raw)
        try:
            manifest = registry.resolve(f"{model}{settings.selector}")
        except NotFound:
            notes.append(f"{model}{settings.selector}: not published yet, not checked")
            continue
        fits.append(model_fit(manifest, settings.memory_mb))
    return fits, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.model_fit", description=__doc__)
    parser.add_argument("--store", required=True, help="the registry: a directory or s3://...")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    args = parser.parse_args(argv)
    fits, notes = template_fits(args.store, args.template)
    for note in notes:
        print(note)
    for fit in fits:
        print(fit.problem() or f"{fit.ref}: fits ({fit.need_mb} of {fit.memory_mb} MB)")
    return 1 if any(not fit.fits for fit in fits) else 0


if __name__ == "__main__":
    sys.exit(main())
