"""Float inputs a model's own tree ensemble takes missing values of, read from the graph.

XGBoost and LightGBM learn, at each split, the side a missing value (NaN) goes, and
onnxmltools writes it into the ai.onnx.ml `TreeEnsemble*` node as
`nodes_missing_value_tracks_true` (skl2onnx, for a HistGradientBoosting model, too): onnxruntime
then routes NaN as `predict` does (XGBoost and
LightGBM exports of breast_cancer with a tenth of the values missing: every row within 1.2e-7
of `predict_proba`, trained with gaps or without). Such a model was published as taking finite
numbers only: a `null` was a 422, batch refused every row with a gap (as every row of a wide
table may have one), `aiaas baseline` left those rows out, each saying to publish again with
`--allow-nonfinite`. `aiaas publish` reads the graph instead, as it reads an `Imputer`
(`imputed_inputs`): an input whose every use reaches such trees takes NaN (`gaps`), infinity
still refused.

skl2onnx writes scikit-learn's trees with every node's `missing_value_tracks_true` 0 (1.20:
it drops the side scikit-learn learnt, or the larger child it picks for a feature it saw no gap
of), so NaN takes the "greater" branch at every split: a RandomForest on breast_cancer answered
46 of 80 rows with gaps otherwise than `predict_proba`, by up to 0.6 (a decision tree by 1.0).
Those inputs stay finite-only, and `--allow-nonfinite` for them gets a publish warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.runtime.imputed_inputs import ML_DOMAIN, imputed_note, reaching, shown, takes_missing

if TYPE_CHECKING:
    import onnx

TREES = frozenset({"TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble"})
TRACKS = "nodes_missing_value_tracks_true"


def _tracks(node: onnx.NodeProto) -> bool:
    """The ensemble sends NaN to the side each split learnt: some node tracks it as true (with
    none, NaN takes the same side at every split: how skl2onnx writes scikit-learn's trees)."""
    return any(a.name == TRACKS and any(a.ints) for a in node.attribute)


def _tree(node: onnx.NodeProto, position: int) -> bool | None:
    if node.op_type in TREES and node.domain == ML_DOMAIN:
        return position == 0 and _tracks(node)
    return None  # no tree: followed if it carries values


def _one_way_tree(node: onnx.NodeProto, position: int) -> bool | None:
    """scikit-learn's splits (`x <= threshold`) with no node tracking missing values. XGBoost's
    are `x < threshold` (BRANCH_LT), whose NaN takes the "greater" branch exactly where none
    tracks it: an XGBoost model fit without gaps has no node tracking one, and answers as
    `predict` does."""
    if node.op_type in TREES and node.domain == ML_DOMAIN:
        lt = any(a.name == "nodes_modes" and b"BRANCH_LT" in a.strings for a in node.attribute)
        return position == 0 and not _tracks(node) and not lt
    return None


def tree_inputs(graph: onnx.GraphProto) -> frozenset[str]:
    """The graph inputs whose every use reaches a tree ensemble that routes missing values as
    its trainer learnt (XGBoost's and LightGBM's exports), through steps that carry values."""
    return reaching(graph, _tree)


def one_way_tree_inputs(graph: onnx.GraphProto, producer: str) -> frozenset[str]:
    """The graph inputs whose every use reaches scikit-learn's trees as skl2onnx writes them,
    sending NaN one way at every split."""
    if not producer.startswith("skl2onnx"):
        return frozenset()
    return reaching(graph, _one_way_tree)


def tree_note(names: tuple[str, ...]) -> tuple[str, ...]:
    """What `aiaas publish` says of the inputs `tree_inputs` found (nothing for none)."""
    return takes_missing(
        names,
        "the graph's trees send them the way each split learnt (XGBoost's and LightGBM's "
        "default directions), as their predict does",
    )


def one_way_warning(names: tuple[str, ...]) -> tuple[str, ...]:
    """`--allow-nonfinite` for inputs `one_way_tree_inputs` found: the trees take NaN, but not
    as scikit-learn does."""
    if not names:
        return ()
    return (
        f"warning: --allow-nonfinite: the graph's trees send a missing value in {shown(names)} the "
        "same way at every split (none of their nodes tracks missing values, as skl2onnx "
        "exports scikit-learn's trees), where scikit-learn's predict sends it the way each "
        "split learnt (or refuses it: GradientBoosting): rows with gaps are answered "
        "otherwise than predict_proba wherever it sent them the other way (a RandomForest: "
        "46 of 80 such rows, by up to 0.6); impute in the pipeline (SimpleImputer, which "
        "publish reads) or use a model that routes missing values "
        "(XGBoost, LightGBM)",
    )


def missing_value_notes(
    imputed: tuple[str, ...], routed: tuple[str, ...], one_way: tuple[str, ...]
) -> tuple[str, ...]:
    """What `aiaas publish` says of the inputs taking missing values, and how."""
    return (*imputed_note(imputed), *tree_note(routed), *one_way_warning(one_way))
