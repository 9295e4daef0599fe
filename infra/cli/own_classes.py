"""The classes a classifier's graph names itself, where `--labels` gave them display names.

skl2onnx writes a classifier's classes into its graph: the values of scikit-learn's `y` (`1`,
`2`, `3`), which is what a user's held-out file holds beside its rows. Published with `--labels
low,mid,high`, the API answers the display names, and `--data` read the file's `1` and `2` as
class indices (the second and third class): a card said accuracy 0.0185 where scikit-learn's
own score on the same rows was 0.944, and a file holding a `3` was refused as holding no class.
"""

from __future__ import annotations

from pathlib import Path

from functions.runtime.manifest import ModelManifest


def own_classes(manifest: ModelManifest, path: Path) -> tuple[str, ...]:
    """The graph's own classes, in the order of the manifest's labels, as text (`1`, `2`);
    () where they are the labels themselves, or the graph names none (a network's logits)."""
    post = manifest.postprocessing
    if post is None or not manifest.labels:
        return ()
    scores = next((o for o in manifest.outputs if o.name == post.scores_output), None)
    keys = tuple(str(key) for key in scores.map_keys) if scores is not None else ()
    if not keys and post.label_output is not None:  # an ai.onnx.ml classifier: a small graph
        keys = _read(path)
    if len(keys) != len(manifest.labels) or keys == tuple(manifest.labels):
        return ()
    return keys


def _read(path: Path) -> tuple[str, ...]:
    try:
        import onnx

        from functions.runtime.graph_classes import read_classes
    except ImportError:  # a base install: publish read no classes from the graph either
        return ()
    return read_classes(onnx.load(str(path), load_external_data=False).graph).labels
