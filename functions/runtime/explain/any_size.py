"""Explanations of an image model of any height and width (torch.onnx.export with H and W in
`dynamic_shapes` / `dynamic_axes`, or a global-average-pool CNN that takes any size).

Such a model has no one row shape, so no stored background can stand for "absent" at every
size. Each image is instead explained patch by patch on its own size, a patch left out taking
the image's own mean value in each channel (occlusion with the image's mean colour): Kernel
SHAP against that one background row, so attributions still add up to the prediction minus the
base value, the prediction for the image in its flat mean colour. One request's images share
one size (one tensor); each is explained with its own background, the masked rows of an image
in one batched call, on the model's explain session, shared by every size.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from functions.runtime.errors import InvalidInput
from functions.runtime.explain.answer_size import check_size
from functions.runtime.explain.explainer import (
    MAX_ROWS,
    Explanation,
    ModelTarget,
    TimedModel,
    check_budget,
    check_samples,
    stopped_past,
)
from functions.runtime.explain.kernel_shap import (
    Overrun,
    RowAttribution,
    check_deadline,
    default_samples,
    explain_rows,
    numpy_seconds,
)
from functions.runtime.explain.patches import (
    Grouping,
    declared_window,
    features_axis,
    image_patches,
    read_as,
)
from functions.runtime.explain.row_outputs import LearnedRate
from functions.runtime.image_layout import image_size
from functions.runtime.input_columns import InputColumns, as_type, input_columns
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import LoadedModel
from functions.runtime.validation import validate_inputs

BACKGROUND = "each image's own mean per channel (a model of any image size)"
SEQUENCE_BACKGROUND = "each window's own mean per feature (a sequence of any length)"


def sized(manifest: ModelManifest, row: tuple[int, ...]) -> ModelManifest:
    """`manifest` with its input's dynamic dimensions those of `row`, an image's own size."""
    spec = manifest.inputs[0]
    shape = (spec.shape[0], *row)
    return dataclasses.replace(manifest, inputs=(dataclasses.replace(spec, shape=shape),))


def one_step(row: tuple[int, ...], axis: int | None) -> None:
    """A 422 for a window of one step (`axis`: the row's features axis): each feature's own mean
    over it is the window itself, so leaving any run out changed nothing, and every attribution
    was 0 with the base value the prediction, answered as an explanation."""
    if axis is not None and len(row) == 2 and row[1 - axis] == 1:
        raise InvalidInput(
            f"a window of one step ({list(row)}) cannot be explained: a model of any window "
            "length is explained against each window's own mean per feature, which for one "
            "step is the window itself (every attribution 0); send at least 2 steps"
        )


def its_own_mean(images: np.ndarray, axis: int | None, layout: str) -> None:
    """A 422 for an image or window that is its own mean (`channel_means`), so leaving any patch
    or run out changed nothing, and every attribution was 0 with the base value the prediction,
    answered 200 as an explanation ("no pixel matters"): an image of one colour (every pixel the
    same in each channel), or a window whose steps are all the same (a machine idle; `axis`: its
    features axis, None for an image), as for one step."""
    if axis is None:
        pixels = {"chw": (2, 3), "hwc": (1, 2), "hw": (1, 2)}[layout]
        same = (images.max(axis=pixels) == images.min(axis=pixels)).reshape(len(images), -1)
        for index in np.flatnonzero(same.all(axis=1)).tolist()[:1]:
            raise InvalidInput(
                f"image {index} cannot be explained: it is one colour (every pixel the same), "
                "and a model of any image size is explained against each image's own mean "
                "colour, which for it is the image itself (every attribution 0, whatever the "
                "model reads); an image whose pixels differ can be"
            )
        return
    steps = 2 - axis  # of an [N, T, F] or [N, F, T] tensor
    same = (images.max(axis=steps) == images.min(axis=steps)).all(axis=1)
    for index in np.flatnonzero(same).tolist()[:1]:
        raise InvalidInput(
            f"window {index} cannot be explained: its steps are all the same, and a model of "
            "any window length is explained against each window's own mean per feature, which "
            "for it is the window itself (every attribution 0); a window in which some feature "
            "changes over its steps can be"
        )


def channel_means(
    image: np.ndarray, layout: str, declared: tuple[int, ...] = (), window: str | None = None
) -> np.ndarray:
    """`image` with every pixel its channel's mean value (what a left-out patch becomes); a
    sequence's ([T, F] declared [-1, F], F a few: patches.features_axis) each feature's
    mean over its steps: one mean of six sensors of their own units is a value none reads."""
    axes: tuple[int, ...] = {"chw": (1, 2), "hwc": (0, 1), "hw": (0, 1)}[layout]
    axis = features_axis(declared, window) if layout == "hw" else None
    if axis is not None:
        axes = (1 - axis,)
    return np.broadcast_to(image.mean(axis=axes, keepdims=True), image.shape)


class AnySizeImageExplainer:
    """Patch occlusion by Kernel SHAP, each image on its own size against its mean colour."""

    def __init__(self, model: LoadedModel, layout: str, max_seconds: float) -> None:
        self.model = model
        self.manifest = model.manifest
        self.layout = layout
        self.max_seconds = max_seconds
        self._target: ModelTarget | None = None
        self._per_value = LearnedRate()  # model seconds per input value (a row's pixels)

    def explain(
        self, inputs: Mapping[str, np.ndarray], samples: int | None, patch: int | None = None
    ) -> Explanation:
        check_samples(samples)
        feeds = validate_inputs(self.manifest, inputs, max_batch_size=MAX_ROWS, typed=False)
        images = np.asarray(next(iter(feeds.values())))
        row = tuple(images.shape[1:])
        height, width = image_size(row, self.layout)
        if not height or not width:  # onnxruntime's error on it was a 500
            raise InvalidInput(f"an image must be at least 1x1 pixels; got {height}x{width}")
        columns = input_columns(sized(self.manifest, row))
        declared = self.manifest.inputs[0].shape[1:]
        window = declared_window(self.manifest)
        one_step(row, features_axis(declared, window) if self.layout == "hw" else None)
        groups = image_patches(row, patch, self.layout, declared, window)
        check_samples(samples, len(groups.columns), "patch")
        target = self._sized_target(columns)
        coalitions = min(
            samples or default_samples(len(groups.columns)), 2 ** len(groups.columns) - 2
        )
        width = target(images[:1].reshape(1, -1).astype(target.dtype)).shape[1]
        check_size(len(images), len(groups.columns), width, coalitions)
        self._check_budget(target, images, coalitions, groups, width)
        its_own_mean(
            images,
            features_axis(declared, window) if self.layout == "hw" else None,
            self.layout,
        )
        timed = TimedModel(target, target.output_name(), width)
        explained: list[RowAttribution] = []
        with stopped_past(self.max_seconds, len(images), "image(s)") as deadline:
            for image in images:
                if explained:
                    check_deadline(deadline, len(explained))
                try:
                    explained += explain_rows(
                        timed,
                        image.reshape(1, -1).astype(target.dtype),
                        # Rounded for a uint8 image (as_type): a mean of 254.9 was cut to 254.
                        as_type(
                            channel_means(image, self.layout, declared, window).reshape(1, -1),
                            target.dtype,
                        ),
                        np.ones(1),
                        groups.columns,
                        samples,
                        deadline=deadline,
                    )
                except Overrun:
                    raise Overrun(len(explained)) from None
        self._per_value.learn(timed.seconds, timed.rows, math.prod(row))
        return Explanation(
            "kernel_shap",
            self._parameters(explained, groups, row),
            groups.names,
            target.outputs(images[:1].reshape(1, -1).astype(target.dtype)),
            explained,
        )

    def _sized_target(self, columns: InputColumns) -> ModelTarget:
        if self._target is None:
            self._target = ModelTarget(self.model, columns)
        return self._target.for_columns(columns)

    def _check_budget(
        self,
        target: ModelTarget,
        images: np.ndarray,
        coalitions: int,
        groups: Grouping,
        outputs: int,
    ) -> None:
        """A 422 with the numbers when the images would take longer than the limit; the time
        per model row scales with the image's values, timed on the last explanation (or on
        these images when there is none)."""
        values = math.prod(images.shape[1:])
        flat = images.reshape(len(images), -1)
        per_value = self._per_value.get(
            lambda: target.seconds_per_row(flat.astype(target.dtype)) / values
        )
        check_budget(
            len(images) * coalitions,
            f"{len(images)} image(s) x {coalitions:,} coalitions x 1 background row",
            per_value * values,
            self.max_seconds,
            len(images) * numpy_seconds(coalitions, len(groups.columns), values, 1, outputs),
        )

    def _parameters(
        self, explained: list[Any], groups: Grouping, row: tuple[int, ...]
    ) -> dict[str, Any]:
        height, width = image_size(row, self.layout)
        parameters = {
            "samples": max((r.coalitions for r in explained), default=0),
            "exact": all(r.exact for r in explained),
            "background_rows": 1,
            "background": BACKGROUND if groups.shape is None else SEQUENCE_BACKGROUND,
            "seed": 0,
            "patch": groups.patch,
            "read_as": read_as(groups),
            "image_size": [height, width],
        }
        if groups.shape is not None:  # a sequence's runs of steps of one feature
            parameters["patch_shape"] = list(groups.shape)
        return parameters
