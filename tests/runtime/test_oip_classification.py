"""The classification extension's ranking and strings, on the codec alone (real numpy tables)."""

from __future__ import annotations

import numpy as np
import orjson

from functions.runtime.codecs import oip
from functions.runtime.codecs.oip_classification import SMALL, top_classes
from functions.runtime.manifest import ModelFile, ModelManifest, Postprocessing, TensorSpec


def manifest(classes: int, activation: str = "none", labels: bool = True) -> ModelManifest:
    width = 1 if activation == "sigmoid" else classes
    return ModelManifest(
        name="m",
        version="1",
        task="classification",
        inputs=(TensorSpec("x", "float32", (-1, 4)),),
        outputs=(TensorSpec("p", "float32", (-1, width)),),
        file=ModelFile("0" * 64, 1, 17, "test"),
        labels=tuple("abcdefghij"[:classes]) if labels else (),
        postprocessing=Postprocessing("p", activation),
    )


def test_equal_scores_keep_the_lower_index_first() -> None:
    raw = np.array([[0.25, 0.5, 0.25], [0.25, 0.25, 0.5]], dtype=np.float32)
    assert top_classes(manifest(3), raw, 3).tolist() == [
        ["0.500000:1:b", "0.250000:0:a", "0.250000:2:c"],
        ["0.500000:2:c", "0.250000:0:a", "0.250000:1:b"],
    ]


def test_large_tables_rank_as_small_ones() -> None:
    # Over SMALL cells numpy ranks; ties and all, each row must read as it does alone.
    rng = np.random.default_rng(0)
    raw = rng.choice([0.0, 0.25, 0.5], size=(SMALL, 5)).astype(np.float32)
    whole = top_classes(manifest(5), raw, 4)
    assert whole.shape == (SMALL, 4)
    rows = [top_classes(manifest(5), raw[i : i + 1], 4)[0].tolist() for i in range(SMALL)]
    assert whole.tolist() == rows


def test_a_binary_classifiers_one_logit_ranks_both_classes() -> None:
    raw = np.array([[2.0], [-1.0]], dtype=np.float32)
    assert top_classes(manifest(2, "sigmoid"), raw, 2).tolist() == [
        ["0.880797:1:b", "0.119203:0:a"],
        ["0.731059:0:a", "0.268941:1:b"],
    ]


def test_without_labels_the_strings_are_score_and_index() -> None:
    raw = np.array([[0.1, 0.7, 0.2]], dtype=np.float32)
    assert top_classes(manifest(3, labels=False), raw, 2).tolist() == [["0.700000:1", "0.200000:2"]]


def test_the_parameter_is_read_per_output_and_kept_with_cached_binary_headers() -> None:
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 1],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 4},
                }
            ],
            "outputs": [{"name": "p", "parameters": {"classification": 2}}, {"name": "q"}],
        }
    )
    for _ in range(2):  # the second comes from the header cache
        request = oip.decode_request(head + b"\0" * 4, len(head))
        assert request.classifications == (("p", 2),)
        assert request.outputs == ["p", "q"]
