"""What a model version costs a function's memory: at its load's peak, and once loaded.

One estimate, two users: the deploy-time check (infra/model_fit.py: will the selected version
fit its function?) and the model pool (functions/runtime/pool.py: how many versions may stay
loaded side by side in this function's memory?). Both count by `load_need` over the layout
`file_layout` walks in the model file (the stored one's ranged reads, the cached one's map): the
same figure for the same version. The figures are those measured in docs/large_models.md: how
many copies of the weights a load holds at its peak depends on where the files land. External
data on disk is memory-mapped (1.0x); a single file on disk is parsed then copied (2.0x),
except the initializers a large graph file maps (functions/runtime/mapped_weights.py); from
memory, when /tmp cannot take the files, the buffers and onnxruntime's packed copy overlap
(3.0x). Weights it maps, onnxruntime reads in while it packs them (packed_weights.py): the
largest such weight counts once more. A packed copy can be larger than its weight (a MatMul
whose B has fewer than 16 columns: 16/N, `WeightLayout.padding`): what it adds counts at the
peak and once loaded. Once loaded, a version holds its weights about once (the parse buffers
are freed), that padding, and its activation arena.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from functions.runtime.cache_room import DISK_MARGIN
from functions.runtime.manifest import ModelManifest
from functions.runtime.mapped_weights import WeightLayout, weight_layout
from functions.runtime.protowire import Buffer

MB = 1024 * 1024
RUNTIME_MB = 150  # python, numpy, onnxruntime and the predict handler, before any model
TMP_MB = 512  # Lambda's default /tmp, and the most SnapStart allows
PEAK_COPIES = {  # measured, rounded up
    "external-disk": 1.1,
    "mapped-single-disk": 1.1,
    "single-disk": 2.0,
    "memory": 3.0,
}
PACKED_COPIES = 1.0  # the largest mapped weight onnxruntime packs: mapped and packed at once
ARENA_SHARE = 0.10  # activations: onnxruntime's arena grows with the model's widths
HEADROOM = 0.10  # of the function's memory, for requests and the garbage collector


# A load's peak in bytes, runtime included; where the weights load from (a PEAK_COPIES key);
# how many of their bytes are mapped rather than copied. A plain tuple: this module is on the
# predict function's cold path (a NamedTuple class costs ~0.25 ms to build at import).
LoadNeed = tuple[float, str, int]


def lands_in_memory(manifest: ModelManifest, tmp_mb: int = TMP_MB) -> bool:
    """Whether `manifest`'s files cannot land on a /tmp of `tmp_mb` (cache.py: then memory)."""
    return manifest.weight_bytes + DISK_MARGIN > tmp_mb * MB


def load_need(manifest: ModelManifest, in_memory: bool, layout: WeightLayout | None) -> LoadNeed:
    """What loading `manifest` needs at its peak, its files `in_memory` or on disk; `layout`:
    its model file's (`file_layout`), what serving maps and packs of it (None: not walked)."""
    weights = manifest.weight_bytes
    padding = layout.padding if layout is not None else 0
    # the runtime, the arena, and what the packed copies add past the weights (held from then on)
    base = RUNTIME_MB * MB + (weights + padding) * ARENA_SHARE + padding
    if in_memory:
        return base + weights * PEAK_COPIES["memory"], "memory", 0
    if manifest.weight_files:
        mapped = weights - manifest.file.size
    else:
        mapped = layout.mapped if layout is not None else 0
    packed = layout.packed if layout is not None else 0
    copied = weights - mapped
    need = base + mapped * PEAK_COPIES["external-disk"] + copied * PEAK_COPIES["single-disk"]
    need += packed * PACKED_COPIES
    return need, "external-disk" if manifest.weight_files else "single-disk", mapped


def file_layout(manifest: ModelManifest, buf: Buffer) -> WeightLayout:
    """What serving maps and packs of `manifest`'s model file, `buf`: field headers walked (a
    small single file's not even those: it is copied whole), never a weight."""
    return weight_layout(buf, external=bool(manifest.weight_files))


def local_layout(manifest: ModelManifest, path: Path) -> WeightLayout:
    """`file_layout` of the model file at `path` (the cache's verified copy)."""
    try:
        with (
            path.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf,
        ):
            return file_layout(manifest, buf)
    except (OSError, ValueError) as exc:  # onnxruntime's load will say what is wrong with it
        return WeightLayout(manifest.file.size, whole=f"it cannot be read: {exc}")


def resident_bytes(manifest: ModelManifest, padding: int = 0) -> float:
    """What a loaded version keeps while it stays loaded: its weights (mapped or copied once,
    the mapped share's page tables rounded up), what its packed copies add (`padding`:
    `WeightLayout.padding`, 0 when unknown) and its arena."""
    held = manifest.weight_bytes * PEAK_COPIES["external-disk"] + padding
    return held + (manifest.weight_bytes + padding) * ARENA_SHARE


def usable_bytes(memory_mb: int) -> float:
    """What a function of `memory_mb` has for models: less the headroom and the runtime; 0
    below ~167 MB (Lambda's 128 MB minimum said "-35 MB usable" on every load)."""
    return max(memory_mb * MB * (1 - HEADROOM) - RUNTIME_MB * MB, 0.0)
