"""Will a model fit its predict function? Checked before deploying, with the numbers.

    python -m infra.model_fit --store s3://bucket/registry      # every model in template.yaml
    python -m infra.model_resources --write --store URI         # refuses to generate if not

A function holds the runtime, the model's weights as onnxruntime keeps them, and its arena for
activations: the estimate is functions/runtime/memory_fit.py's, which the model pool uses too
(how many versions stay loaded side by side), counted from the same walk of the model file. In
a single file of 64 MB or more, onnxruntime maps the initializers whose raw_data it holds
(functions/runtime/mapped_weights.py); weights kept in Constant nodes, in typed fields
(float_data, ...) or in small initializers are still copied; and the largest mapped weight it
packs is held twice while it packs it, and a packed copy of a MatMul's B narrower than 16
columns is larger than the weight (functions/runtime/packed_weights.py). So the stored
model file's fields are walked (ranged reads of their headers, never a weight) to count them.
A version that cannot fit is refused with what to change.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

from functions.runtime.artifact_files import nested_external_data
from functions.runtime.cache_room import DISK_MARGIN
from functions.runtime.errors import AiaasError
from functions.runtime.manifest import ModelManifest
from functions.runtime.mapped_weights import MIN_FILE_BYTES, WeightLayout
from functions.runtime.memory_fit import (
    ARENA_SHARE,
    HEADROOM,
    MB,
    PEAK_COPIES,
    RUNTIME_MB,
    TMP_MB,
    file_layout,
    lands_in_memory,
    load_need,
)
from functions.runtime.packed_weights import PANEL
from functions.runtime.refs import model_key
from infra.cfn_yaml import DEFAULT_TEMPLATE, load_template, project_template, tool_failed
from infra.model_settings import MEMORY_MB, ModelSettings, template_models

if TYPE_CHECKING:
    from functions.runtime.store import ObjectStore

BLOCK = 64 * 1024  # a ranged read of a stored model's field headers
EXPORT = "; export the weights as initializers or in external data to have them mapped"


@dataclass(frozen=True)
class Fit:
    """What loading one version needs, against what its function has."""

    ref: str
    weights_mb: float
    loads_from: str  # a PEAK_COPIES key
    need_mb: int
    memory_mb: int
    mapped_mb: float = 0.0  # of weights_mb, mapped from disk; the rest is copied
    copied: str = ""  # which part of a single file onnxruntime copies, when it maps the rest
    packed_mb: float = 0.0  # the largest mapped weight onnxruntime packs: held twice
    refusal: str = ""  # why it cannot load in its function at any MemorySize
    padding_mb: float = 0.0  # what onnxruntime's packed copies add past the weights

    @property
    def fits(self) -> bool:
        return not self.refusal and self.need_mb <= self.memory_mb * (1 - HEADROOM)

    def problem(self) -> str | None:
        if self.refusal or self.fits:
            return self.refusal or None
        wanted = -(-round(self.need_mb / (1 - HEADROOM)) // 64) * 64
        fix = (
            f"raise MemorySize to {wanted}"
            if wanted <= MEMORY_MB[1]
            else f"no Lambda function has that much (at most {MEMORY_MB[1]} MB)"
        )
        return (
            f"{self.ref} needs ~{self.need_mb} MB ({self._weights()}{self._packed()} + "
            f"{RUNTIME_MB} MB runtime + {ARENA_SHARE:.0%} arena) but its function has "
            f"{self.memory_mb} MB with {HEADROOM:.0%} headroom: {fix}{self._smaller()}"
        )

    def _smaller(self) -> str:
        """What publishing differently could change: nothing when the runtime alone does not
        fit; external data only for a single file loaded whole (one whose weights are mapped
        already needs as much in external data)."""
        if self.memory_mb * (1 - HEADROOM) < RUNTIME_MB:
            return f" (the runtime alone needs {RUNTIME_MB} MB)"
        ways = ["--quantize int8"]
        if self.loads_from == "single-disk":
            ways.insert(0, "external data")
        return f", or publish it smaller ({', '.join(ways)})"

    def _weights(self) -> str:
        where = self.loads_from.replace("-", " ")
        if self.loads_from != "mapped-single-disk":
            copies = PEAK_COPIES[self.loads_from]
            parts = f" ({self.copied}{EXPORT})" if self.copied else ""
            return f"{self.weights_mb:.0f} MB of weights x {copies} loading from {where}{parts}"
        copied = self.weights_mb - self.mapped_mb
        advice = EXPORT if copied >= 1 else ""  # under 1 MB: the graph's structure, no weight
        return (
            f"{self.weights_mb:.0f} MB of weights loading from {where}: {self.mapped_mb:.0f} MB "
            f"mapped x {PEAK_COPIES[self.loads_from]}, {copied:.0f} MB copied by onnxruntime x "
            f"{PEAK_COPIES['single-disk']} ({self.copied}{advice})"
        )

    def _packed(self) -> str:
        said = ""
        if self.packed_mb >= 1:
            said = f" + {self.packed_mb:.0f} MB (its largest weight, mapped and packed at once)"
        if self.padding_mb >= 1:
            said += (
                f" + {self.padding_mb:.0f} MB x {1 + ARENA_SHARE} (onnxruntime packs a MatMul's "
                f"weight in panels of {PANEL} columns: narrower ones are held larger)"
            )
        return said


def model_fit(
    manifest: ModelManifest, memory_mb: int, store: ObjectStore, tmp_mb: int = TMP_MB
) -> Fit:
    """The fit of `manifest`, stored in `store`, in a function of `memory_mb` with `tmp_mb` of
    /tmp: its model file walked for what serving maps and packs (`stored_layout`)."""
    weights = manifest.weight_bytes
    ref = f"{manifest.name}:{manifest.version}"
    layout = stored_layout(store, manifest)
    padding = layout.padding / MB
    if lands_in_memory(manifest, tmp_mb):
        peak = round(load_need(manifest, True, layout)[0] / MB)
        refusal = _not_from_memory(manifest, store, tmp_mb)
        return Fit(
            ref, weights / MB, "memory", peak, memory_mb, refusal=refusal, padding_mb=padding
        )
    need, where, mapped = load_need(manifest, False, layout)
    parts = ""
    if layout.size >= MIN_FILE_BYTES and not manifest.weight_files:
        parts = _copied_parts(layout)  # a big single file: say why it is not all mapped
        if mapped:
            where = "mapped-single-disk"
        else:
            parts = f"nothing mapped, {layout.whole}: {parts}"
    packed = layout.packed / MB
    return Fit(
        ref,
        weights / MB,
        where,
        round(need / MB),
        memory_mb,
        mapped / MB,
        parts,
        packed,
        padding_mb=padding,
    )


def _not_from_memory(manifest: ModelManifest, store: ObjectStore, tmp_mb: int) -> str:
    """Why a version whose files do not fit /tmp cannot load at all, or "": onnxruntime reads a
    subgraph's external weights from a file, never from memory (onnx_session.py refuses that load)."""
    if not manifest.weight_files:  # nothing external, so nothing nested either
        return ""
    stored = StoredModel(store, model_key(manifest.name, manifest.version), manifest.file.size)
    nested = nested_external_data(stored)
    if not nested:
        return ""
    ref, files = f"{manifest.name}:{manifest.version}", -(-manifest.weight_bytes // MB)
    room = tmp_mb - DISK_MARGIN // MB
    smaller = (
        f", or publish it smaller (--quantize int8) to files under {room} MB" if room > 0 else ""
    )
    return (
        f"{ref} cannot load in its function: its files ({files} MB, and {DISK_MARGIN // MB} MB "
        f"kept free) do not fit a {tmp_mb} MB /tmp, and from memory onnxruntime cannot load it "
        f"(a subgraph keeps weights in external data file {nested[0]!r}, which onnxruntime "
        f"reads from a file): keep the subgraphs' weights inside model.onnx{smaller}"
    )


def _copied_parts(layout: WeightLayout) -> str:
    parts = (
        (layout.nodes, "in graph nodes (Constant tensors)"),
        (layout.typed, "in initializers' typed fields (float_data, ...)"),
        (layout.small, "in initializers under 4 KB"),
    )
    named = [f"{size / MB:.0f} MB {what}" for size, what in parts if size >= MB]
    return ", ".join(named) or "the graph's structure"


class StoredModel:
    """A stored model file as protowire reads it: each block of `block` bytes (BLOCK) fetched
    by one ranged read when the walk first reaches it; the payloads it skips, the weights,
    never (unless a block holds them)."""

    def __init__(self, store: ObjectStore, key: str, size: int, block: int = BLOCK) -> None:
        self.store, self.key, self.size, self.block = store, key, size, max(block, 1)
        self.blocks: dict[int, bytes] = {}
        self.reads = 0

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, key: int, /) -> int: ...

    @overload
    def __getitem__(self, key: slice, /) -> bytes: ...

    def __getitem__(self, key: int | slice) -> int | bytes:
        if isinstance(key, slice):
            start, stop, _ = key.indices(self.size)
            return bytes(self[i] for i in range(start, stop))
        if not 0 <= key < self.size:
            raise IndexError(f"byte {key} of a {self.size}-byte file")
        return self._block(key // self.block)[key % self.block]

    def _block(self, number: int) -> bytes:
        if number not in self.blocks:
            if len(self.blocks) >= 16:  # the walk moves forward: keep a few
                del self.blocks[next(iter(self.blocks))]
            start = number * self.block
            end = min(start + self.block, self.size)
            with self.store.open_read(self.key, start, end) as reader:
                self.blocks[number] = reader.read()
            self.reads += 1
        return self.blocks[number]


def stored_layout(store: ObjectStore, manifest: ModelManifest) -> WeightLayout:
    """What serving maps and packs of `manifest`'s model file (`memory_fit.file_layout`),
    walked in the store. A file under MIN_FILE_BYTES is read in one piece: its whole graph is
    walked for the packed copies' padding, and a walk block by block read such a file nearly
    whole all the same, a ranged read per block (752 for a 47 MB model of 32 KB weights)."""
    size = manifest.file.size
    block = size if size < MIN_FILE_BYTES else BLOCK
    stored = StoredModel(store, model_key(manifest.name, manifest.version), size, block)
    return file_layout(manifest, stored)


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
        except NotFound as exc:
            # Published without that alias is not "not published": say what the lookup found.
            published = registry.versions(model, missing_ok=True)
            why = f"{exc}" if published else "not published yet"
            notes.append(f"{model}{settings.selector}: {why}, not checked")
            continue
        fits.append(model_fit(manifest, settings.memory_mb, registry.store))
    return fits, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.model_fit", description=__doc__)
    parser.add_argument("--store", required=True, help="the registry: a directory or s3://...")
    parser.add_argument("--template", type=Path, default=project_template())
    args = parser.parse_args(argv)
    try:
        fits, notes = template_fits(args.store, args.template)
    except AiaasError as exc:  # no template here, the store unreachable: one line
        return tool_failed(parser.prog, args.template, exc)
    for note in notes:
        print(note)
    for fit in fits:
        print(fit.problem() or f"{fit.ref}: fits ({fit.need_mb} of {fit.memory_mb} MB)")
    return 1 if any(not fit.fits for fit in fits) else 0


if __name__ == "__main__":
    sys.exit(main())
