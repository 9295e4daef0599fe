"""The picture of an explanation (`aiaas explain --png`): an image model's attributions as a heat
map over the image, anything else as bars. matplotlib is imported only when drawing, so the
CLI's other commands and the serving path never load it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime.errors import BadRequest
from functions.runtime.explain.patches import PATCH_NAME, features_axis, image_layout
from infra.cli.pyplot import pyplot
from training.fonts import save

TOWARD, AWAY = "#c0392b", "#2e86c1"  # red pushes toward the class, blue away from it
NOISE = 1e-6  # an attribution this small beside the row's largest is float rounding


def attributions(doc: dict[str, Any], row: dict[str, Any]) -> tuple[list[str], np.ndarray, int]:
    """(group names, their attributions to the predicted output, that output's column)."""
    column = int(np.argmax(row["prediction"])) if "label" in row else 0
    values = np.asarray(row["attributions"]).reshape(-1, len(row["prediction"]))[:, column]
    return row.get("tokens", doc.get("features", [])), values, column


def shown_values(values: np.ndarray) -> np.ndarray:
    """Attributions as a table or a card line shows them: one within NOISE of the largest is 0.
    A feature the model ignores gets 0 up to rounding: the least-squares solve's in float64
    (4e-16, -2.2e-16), a float32 tree ensemble's sums (-6.7e-8 beside 1.19). The table showed
    `+7.589e-17` and the card named it among the "largest", read as the feature moving the
    prediction a little; --json keeps the values as fitted."""
    values = np.asarray(values, dtype=np.float64)
    largest = float(np.abs(values).max(initial=0.0))
    return np.where(np.abs(values) <= NOISE * largest, 0.0, values)


def shown_note(row: dict[str, Any]) -> str:
    """For a row of several values none of which is a predicted class (a regressor of two),
    that only the first is shown: the others' attributions were in --json alone, unsaid."""
    count = len(row["prediction"])
    return "" if "label" in row or count == 1 else f" [output 1 of {count}; --json has all]"


def attribution_map(doc: dict[str, Any], shape: tuple[int, int], row: int = 0) -> np.ndarray:
    """[H, W] of row `row`'s attributions to its predicted output, every pixel of a patch
    holding that patch's attribution (the share of the whole patch, not divided among its
    pixels, so an edge patch cut short reads like the others)."""
    size = doc["parameters"].get("patch")
    if size is None:
        raise BadRequest("not an image explanation: it has no parameters.patch")
    rows, columns = doc["parameters"].get("patch_shape", (size, size))  # a sequence's [k, 1]
    names, values, _ = attributions(doc, doc["explanations"][row])
    heat = np.zeros(shape, dtype=np.float64)
    for name, value in zip(names, values, strict=True):
        match = PATCH_NAME.fullmatch(name)
        if match is None:
            raise BadRequest(f"not an image patch: {name!r}")
        top, left = int(match[1]), int(match[2])
        heat[top : top + rows, left : left + columns] = value
    return heat


def patches_said(parameters: dict[str, Any]) -> str:
    """What one cell of the map is: an image's square patch, or a sequence's run of steps of
    one feature (a [T, F] window is no picture: its columns are features)."""
    size = parameters["patch"]
    if "patch_shape" not in parameters:
        return f"{size}x{size}-pixel patches"
    return f"{size}-step runs,\none feature each"


def window_axes(
    parameters: dict[str, Any], declared: tuple[int, ...] = (), window: str | None = None
) -> str:
    """What a sequence window's picture's rows and columns are; "" for an image. `declared`:
    the model's row (-1 any), whose features axis the explainer cut by: a one-step run's
    patch_shape is [1, 1] either way, and an [N, 3, -1] window's 9 steps were captioned
    "rows: steps, columns: features" (rev16 3)."""
    if "patch_shape" not in parameters:
        return ""
    axis = features_axis(declared, window)
    if axis is None:
        axis = 1 if parameters["patch_shape"][1] == 1 else 0
    return "rows: steps, columns: features" if axis == 1 else "rows: features, columns: steps"


def grey_image(
    pixels: np.ndarray, row_shape: tuple[int, ...], layout: str | None = None
) -> np.ndarray:
    """[H, W] of one image row (any layout the explainer patches), its channels averaged;
    `layout` where the model says it (a small image of any size looks channels first)."""
    layout = layout or image_layout(row_shape)[2]
    image = np.asarray(pixels, dtype=np.float64).reshape(row_shape)
    if layout == "hw":
        return image
    return np.asarray(image.mean(axis=0 if layout == "chw" else -1))


def picture(
    pixels: np.ndarray, row_shape: tuple[int, ...], layout: str | None = None
) -> np.ndarray:
    """One image row as it is drawn: an RGB image [H, W, 3] in its colours, scaled to [0, 1]
    (a photo drawn in inverted grey reads as its negative); any other as `grey_image`, which
    the heat map draws in grey with its lowest value black (`_grey_range`)."""
    layout = layout or image_layout(row_shape)[2]
    channels = row_shape[0] if layout == "chw" else row_shape[-1]
    if layout == "hw" or channels != 3:
        return grey_image(pixels, row_shape, layout)
    image = np.asarray(pixels, dtype=np.float64).reshape(row_shape)
    return _unit_range(image.transpose(1, 2, 0) if layout == "chw" else image)


def _unit_range(image: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] as they are; whole ones up to 255 (uint8) over 255; anything else (a
    mean/std normalised input) stretched from its own lowest to highest value."""
    low, high = float(image.min()), float(image.max())
    if low >= 0 and high <= 1:
        return image
    if low >= 0 and high <= 255 and bool(np.all(image == np.round(image))):
        return image / 255
    return (image - low) / ((high - low) or 1.0)


def _grey_range(image: np.ndarray) -> np.ndarray:
    """A grey image in [0, 1] for drawing: pixels in [0, 1] as they are, other non-negative ones
    over their highest value (0 stays black: 8x8 digits' 0-16 and uint8's 0-255 alike), a
    mean/std normalised one stretched from its lowest to its highest value."""
    low, high = float(image.min()), float(image.max())
    if low >= 0 and high <= 1:
        return image
    if low >= 0:
        return image / high
    return (image - low) / ((high - low) or 1.0)


def draw(
    doc: dict[str, Any],
    path: Path,
    image: np.ndarray | None = None,
    declared: tuple[int, ...] = (),
    window: str | None = None,
) -> None:
    """Write the first row's explanation to `path` (PNG): over `image` ([H, W] grey or
    [H, W, 3] RGB, as `picture` gives it) as a heat map when it is an image model's, else a bar
    chart. `declared`: the model's row and `window` its publish's declaration
    (patches.declared_window), as window_axes reads them."""
    plt = pyplot()
    if image is not None and "patch" in doc["parameters"] and 1 in image.shape[:2]:
        axis = features_axis(
            declared, window
        )  # a window of one step ([1, F]): its features side by side
        figure = _sequence(plt, doc, image, axis is not None and image.shape[axis] > 1)
    elif image is not None and "patch" in doc["parameters"]:
        figure = _heat_map(plt, doc, image, declared, window)
    else:
        figure = _bars(plt, doc)
    save(figure, path, dpi=110, format="png")  # not by the name's suffix: whatever it is
    plt.close(figure)


def headline(doc: dict[str, Any]) -> tuple[str, str]:
    """(the class explained, "P(class) = p, base b") for the first row; a score that is not a
    probability (logits, a regression) is given as the value it is."""
    row = doc["explanations"][0]
    _, _, column = attributions(doc, row)
    target = row.get("label", doc["outputs"][column])
    prediction = np.asarray(row["prediction"], dtype=np.float64)
    probability = len(prediction) > 1 and bool(
        np.all((prediction >= 0) & (prediction <= 1)) and abs(prediction.sum() - 1) < 1e-3
    )
    value = (
        f"P({target}) = {prediction[column]:.3f}"
        if probability
        else (f"{target} = {prediction[column]:.4g}")
    )
    return str(target), f"{value}, base {row['base_value'][column]:.3g}{shown_note(row)}"


def _heat_map(
    plt: Any,
    doc: dict[str, Any],
    image: np.ndarray,
    declared: tuple[int, ...],
    window: str | None = None,
) -> Any:
    """The image (RGB in colour, else grey) beside the same image faint under its patches'
    attributions (as shap's image plot), red and blue centred at 0 so white is "no effect"."""
    heat = attribution_map(doc, (image.shape[0], image.shape[1]))
    limit = float(np.abs(heat).max()) or 1.0
    target, numbers = headline(doc)
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 4.2))
    if image.ndim == 2:  # grey: 0 black, as the image is (inverted, an X-ray is its negative)
        image = _grey_range(image)
    shown = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} if image.ndim == 2 else {}
    left.imshow(image, interpolation="nearest", **shown)
    left.set_title("input", fontsize=9)
    right.imshow(image, interpolation="nearest", alpha=0.25, **shown)
    overlay = right.imshow(
        heat, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.75, interpolation="nearest"
    )
    right.set_title(f"attributions of {patches_said(doc['parameters'])}", fontsize=9)
    for axes in (left, right):
        axes.set_xlabel(window_axes(doc["parameters"], declared, window), fontsize=8)
    for axes in (left, right):
        axes.set_xticks([])
        axes.set_yticks([])
    bar = figure.colorbar(overlay, ax=right, fraction=0.046, pad=0.04)
    bar.set_label(f"red: toward {target!r}, blue: away", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    figure.suptitle(
        f"{doc['model']}:{doc['version']} - {question(doc)} (Kernel SHAP)  {numbers}", fontsize=10
    )
    figure.tight_layout()
    return figure


def _sequence(plt: Any, doc: dict[str, Any], image: np.ndarray, features: bool = False) -> Any:
    """A [steps, 1] row (a sequence the explainer cuts as a one-pixel-wide image): its values
    over the steps above each step's attribution; as an image it was a one-pixel strip.
    `features`: a window of one step ([1, F]), its features' values as points, not a line over
    "steps" (rev16 4)."""
    heat = attribution_map(doc, (image.shape[0], image.shape[1])).reshape(-1)
    values = np.asarray(image, dtype=np.float64).reshape(-1)
    target, numbers = headline(doc)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    line = {"marker": "o", "linestyle": "none"} if features else {"linewidth": 1}
    top.plot(np.arange(len(values)), values, color="black", **line)
    top.set_ylabel("input value")
    bottom.bar(np.arange(len(heat)), heat, color=[TOWARD if v > 0 else AWAY for v in heat])
    bottom.axhline(0, color="black", linewidth=0.6)
    size = doc["parameters"]["patch"]
    bottom.set_ylabel(f"contribution to {target}")
    if features:
        bottom.set_xticks(range(len(heat)))
        bottom.set_xlabel("feature (a window of one step)")
    else:
        bottom.set_xlabel(f"step (attributed {size} step{'s' if size > 1 else ''} at a time)")
    top.set_title(f"{doc['model']}:{doc['version']} - {question(doc)} (Kernel SHAP)\n{numbers}")
    bottom.legend(handles=_legend(doc), fontsize=7, loc="best", frameon=False)
    figure.tight_layout()
    return figure


def question(doc: dict[str, Any]) -> str:
    """ "why setosa?" of a class; "what moves price?" of a value ("why prediction_0?" asked
    nothing a regression answers)."""
    target = headline(doc)[0]
    return f"why {target}?" if "label" in doc["explanations"][0] else f"what moves {target}?"


def _legend(doc: dict[str, Any]) -> list[Any]:
    from matplotlib.patches import Patch

    target = headline(doc)[0]
    if "label" not in doc["explanations"][0]:  # a value: a feature raises or lowers it
        return [Patch(color=TOWARD, label=f"raises {target}"), Patch(color=AWAY, label="lowers")]
    return [Patch(color=TOWARD, label=f"toward {target!r}"), Patch(color=AWAY, label="away")]


def _bars(plt: Any, doc: dict[str, Any]) -> Any:
    """The 15 largest features, or a text's tokens in reading order."""
    row = doc["explanations"][0]
    names, values, _ = attributions(doc, row)
    if "tokens" in row:  # top to bottom as the text reads; a repeated word keeps its place
        order = np.arange(len(names))[::-1]
        labels = [f"{i}: {names[i]}" for i in order]
    else:
        order = np.argsort(np.abs(values))[-15:]
        labels = [names[i] for i in order]
    figure, axes = plt.subplots(figsize=(7, 0.35 * len(order) + 1.6))
    axes.barh(labels, values[order], color=[TOWARD if v > 0 else AWAY for v in values[order]])
    axes.axvline(0, color="black", linewidth=0.6)
    target, numbers = headline(doc)
    axes.set_title(f"{doc['model']}:{doc['version']} - {question(doc)} (Kernel SHAP)\n{numbers}")
    axes.set_xlabel(f"contribution to {target}")
    axes.legend(handles=_legend(doc), fontsize=7, loc="best", frameon=False)
    figure.tight_layout()
    return figure
