"""The simple JSON form (functions/runtime/codecs/simple.py): decoding, scores, predictions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from functions.runtime.codecs import simple
from functions.runtime.errors import AiaasError, BadRequest, InvalidInput
from functions.runtime.manifest import ModelFile, ModelManifest, Postprocessing, TensorSpec

FILE = ModelFile(sha256="0" * 64, size=1, opset=17, producer="test")
CLASSIFIER = ModelManifest(
    name="c",
    version="1",
    task="classification",
    inputs=(TensorSpec("x", "float32", (-1, 3)),),
    outputs=(TensorSpec("logits", "float32", (-1, 3)),),
    file=FILE,
    labels=("cat", "dog", "emu"),
    postprocessing=Postprocessing("logits"),
)
TWO_INPUTS = replace(
    CLASSIFIER,
    inputs=(TensorSpec("a", "float32", (-1, 2)), TensorSpec("b", "int64", (-1,))),
)


def test_inputs_forms_decode_to_the_same_tensor() -> None:
    forms = [
        {"inputs": [[1, 2, 3]]},
        {"inputs": [1, 2, 3]},
        {"inputs": {"x": [[1, 2, 3]]}},
        {"instances": [[1, 2, 3]]},
        {"instances": [{"x": [1, 2, 3]}]},
    ]
    for body in forms:
        (name, array), *_ = simple.decode(body, CLASSIFIER).items()
        assert name == "x"
        assert array.tolist() == [[1, 2, 3]], body


def test_instances_of_a_multi_input_model_become_columns() -> None:
    decoded = simple.decode(
        {"instances": [{"a": [1, 2], "b": 5}, {"a": [3, 4], "b": 6}]}, TWO_INPUTS
    )
    assert decoded["a"].tolist() == [[1, 2], [3, 4]]
    assert decoded["b"].tolist() == [5, 6]


def test_a_record_lacking_an_input_names_its_misspelling_not_its_id() -> None:
    """A record's id is left aside; with an input missing, the field named is the one most
    like it (the misspelling), not the id that sorts first."""
    record = {"id": 7, "a": [1, 2], "b": 5}
    assert simple.decode({"instances": [record]}, TWO_INPUTS)["b"].tolist() == [5]
    with pytest.raises(InvalidInput, match="instances\\[0\\] has unknown input 'bb'"):
        simple.decode({"instances": [{"account": 7, "a": [1, 2], "bb": 5}]}, TWO_INPUTS)


def test_a_bare_list_for_a_multi_input_model_is_400() -> None:
    with pytest.raises(BadRequest) as info:
        simple.decode({"inputs": [[1, 2]]}, TWO_INPUTS)
    assert info.value.message == (
        "this model has several inputs ['a', 'b']: send {\"inputs\": {name: value}}"
    )


# A model published with --allow-nonfinite (CLASSIFIER's inputs are not marked finite), and
# the same model published without it.
STRICT = replace(CLASSIFIER, inputs=(TensorSpec("x", "float32", (-1, 3), finite=True),))
FEATURED = replace(CLASSIFIER, features=("a", "b", "c"))
MISSING = (
    "is a missing value (null); this model takes finite numbers only: "
    "fill it in, or publish a model whose graph takes them (`aiaas publish` reads an XGBoost "
    "or LightGBM export's trees and a SimpleImputer as taking them; `--allow-nonfinite` for "
    "another graph, but not skl2onnx's scikit-learn forests, which send every missing value "
    "one way)"
)


def test_null_is_nan_for_a_model_that_takes_missing_values() -> None:
    forms = [
        {"inputs": [[1, None, 3], [None, None, None]]},
        {"instances": [[1, None, 3], [None, None, None]]},
        {"instances": [{"x": [1, None, 3]}, {"x": [None, None, None]}]},
    ]
    for body in forms:
        x = simple.decode(body, CLASSIFIER)["x"]
        np.testing.assert_array_equal(x, [[1, np.nan, 3], [np.nan] * 3])
    by_feature = [
        {"instances": [{"a": 1, "b": None, "c": 3}, {"a": None, "b": None, "c": None}]},
        {"inputs": {"a": [1, None], "b": [None, None], "c": [3, None]}},
    ]
    for body in by_feature:
        x = simple.decode(body, FEATURED)["x"]
        np.testing.assert_array_equal(x, [[1, np.nan, 3], [np.nan] * 3])


def test_null_for_a_model_that_takes_finite_numbers_says_how_to_publish_one() -> None:
    cases = [
        ({"inputs": [[1, 2, 3], [1, None, 3]]}, STRICT, f"input 'x' at index [1, 1] {MISSING}"),
        ({"inputs": [1, None, 3]}, STRICT, f"input 'x' at index [1] {MISSING}"),
        (
            {"instances": [{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": None, "c": 3}]},
            replace(STRICT, features=("a", "b", "c")),
            f"instances[1].b {MISSING}",
        ),
        (
            {"inputs": {"a": [1], "b": [2], "c": [None]}},
            replace(STRICT, features=("a", "b", "c")),
            f"inputs.c[0] {MISSING}",
        ),
        (
            {"inputs": {"a": [[1, 2]], "b": [None]}},
            TWO_INPUTS,
            "input 'b' at index [0] is null, a missing value, which int64 cannot hold; "
            "send a number",
        ),
    ]
    for body, manifest, message in cases:
        with pytest.raises(InvalidInput) as info:
            simple.decode(body, manifest)
        assert info.value.message == message, body


def test_true_or_false_among_numbers_is_refused_not_read_as_one_or_zero() -> None:
    """numpy reads [1, true, 3] as [1, 1, 3]: every form served a true as 1 (an all-true row
    was refused), so a client's boolean feature went to the model as a number."""
    cases = [
        (
            {"inputs": [[1, True, 3]]},
            CLASSIFIER,
            "input 'x' expects float32 numbers; got true/false among them",
        ),
        (
            {"inputs": {"a": [[1, 2]], "b": [5, False]}},
            TWO_INPUTS,
            "input 'b' expects int64 numbers; got true/false among them",
        ),
        (
            {"instances": [{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": False, "c": 3}]},
            FEATURED,
            "instances[1].b must be a number (float32); got false",
        ),
        (
            {"inputs": {"a": [1, 2], "b": [2, True], "c": [3, 4]}},
            FEATURED,
            "inputs.b[1] must be a number (float32); got true",
        ),
    ]
    for body, manifest, message in cases:
        with pytest.raises(InvalidInput) as info:
            simple.decode(body, manifest)
        assert info.value.message == message, body
    # a body with no true/false literal is not searched: the caller says so
    assert simple.decode({"inputs": [[1, 2, 3]]}, CLASSIFIER, bools=False)["x"].tolist() == [
        [1, 2, 3]
    ]


def test_nulls_beside_text_or_booleans_are_still_mixed_values() -> None:
    for row in ([1, None, "a"], [True, None, 3]):
        with pytest.raises(InvalidInput) as info:
            simple.decode({"inputs": [row]}, CLASSIFIER)
        assert info.value.message == "input 'x' expects float32 numbers; got mixed or null values"


def test_softmax_scores_and_top_k() -> None:
    logits = np.array([[0.0, 2.0, 1.0]], np.float32)
    doc = simple.encode(CLASSIFIER, {"logits": logits}, top_k=2)
    expected = np.exp([0.0, 2.0, 1.0]) / np.exp([0.0, 2.0, 1.0]).sum()
    (row,) = doc["predictions"]
    assert row["label"] == "dog"
    assert row["score"] == pytest.approx(expected[1])
    assert [t["label"] for t in row["top_k"]] == ["dog", "emu"]
    assert doc["outputs"]["logits"] is logits  # left for orjson to serialise


def test_softmax_of_large_outputs_matches_the_small_path() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(4, 100)).astype(np.float32) * 30  # 400 scores: the numpy path
    big = simple._softmax(rows)
    small = [simple._softmax(row[None, :])[0] for row in rows]  # 100 each: the Python path
    np.testing.assert_allclose(big, small, rtol=1e-12)
    np.testing.assert_allclose(np.sum(big, axis=1), 1.0)


def test_sigmoid_with_one_logit_is_a_binary_classifier() -> None:
    manifest = replace(
        CLASSIFIER, labels=("no", "yes"), postprocessing=Postprocessing("logits", "sigmoid")
    )
    doc = simple.encode(manifest, {"logits": np.array([[2.0], [-2.0]], np.float32)})
    p = 1 / (1 + np.exp(-2.0))
    assert [r["label"] for r in doc["predictions"]] == ["yes", "no"]
    assert [r["score"] for r in doc["predictions"]] == pytest.approx([p, p])


def test_activation_none_uses_raw_scores() -> None:
    manifest = replace(CLASSIFIER, postprocessing=Postprocessing("logits", "none"))
    doc = simple.encode(manifest, {"logits": np.array([[0.1, 0.7, 0.2]], np.float32)})
    assert doc["predictions"][0]["label"] == "dog"
    assert doc["predictions"][0]["score"] == pytest.approx(0.7)


def test_labels_that_do_not_fit_the_scores_are_an_error() -> None:
    # They fell back to class indices: a label '2' the model does not have, served silently.
    manifest = replace(CLASSIFIER, labels=("only", "two"))
    with pytest.raises(AiaasError, match="answered 3 class scores a row but names 2 classes"):
        simple.encode(manifest, {"logits": np.array([[0.0, 0.0, 5.0]], np.float32)})
    labelless = replace(CLASSIFIER, labels=())  # a model that names none: indices
    doc = simple.encode(labelless, {"logits": np.array([[0.0, 0.0, 5.0]], np.float32)})
    assert doc["predictions"][0]["label"] == "2"


def test_no_predictions_without_postprocessing() -> None:
    manifest = replace(CLASSIFIER, task="regression", postprocessing=None, labels=())
    doc = simple.encode(manifest, {"logits": np.array([[1.0, 2.0, 3.0]], np.float32)})
    assert "predictions" not in doc
    assert doc["model"] == "c" and doc["version"] == "1"


def test_string_outputs_become_lists() -> None:
    doc = simple.encode(
        replace(CLASSIFIER, postprocessing=None), {"t": np.array(["a"], dtype=object)}
    )
    assert doc["outputs"] == {"t": ["a"]}


@pytest.mark.parametrize("manifest", [CLASSIFIER, TWO_INPUTS], ids=["one input", "two inputs"])
def test_records_sent_as_inputs_are_told_to_go_under_instances(manifest: ModelManifest) -> None:
    with pytest.raises(BadRequest) as info:
        simple.decode({"inputs": [{"x0": 1.0, "x1": 2.0}]}, manifest)
    assert info.value.message == (
        'rows of named fields go under "instances", not "inputs": send '
        '{"instances": [{"x0": ..., "x1": ...}, ...]}'
    )


def test_a_field_left_out_of_a_record_is_refused_saying_how_to_send_a_missing_value() -> None:
    """A model that takes missing values (a float input not marked finite) is told to send
    null; an int or a finite-only input is only told what is missing."""
    strict_b = replace(
        TWO_INPUTS, inputs=(TWO_INPUTS.inputs[0], TensorSpec("b", "float32", (-1,), finite=True))
    )
    cases = [
        (TWO_INPUTS, {"b": 5}, "instances[0] is missing input 'a'; send null for a missing value"),
        (TWO_INPUTS, {"a": [1, 2]}, "instances[0] is missing input 'b'"),
        (strict_b, {"a": [1, 2]}, "instances[0] is missing input 'b'"),
    ]
    for manifest, row, message in cases:
        with pytest.raises(InvalidInput) as info:
            simple.decode({"instances": [row]}, manifest)
        assert info.value.message == message


def test_token_id_rows_of_different_lengths_are_told_to_pad() -> None:
    # [N, T] ids with a dynamic T (an LSTM / GRU export): each row alone fits the model, so
    # "every row must have shape [-1]" told the caller nothing.
    sequences = replace(CLASSIFIER, inputs=(TensorSpec("ids", "int64", (-1, -1)),))
    with pytest.raises(InvalidInput) as info:
        simple.decode({"inputs": [[1, 2, 3], [4, 5], [6]]}, sequences)
    assert info.value.message == (
        "input 'ids' is ragged: its rows have 3 lengths (1, 2, 3); the rows of one request make "
        "one tensor [-1, -1], so they must have one length: pad the shorter rows (token ids: "
        "with the padding id), or send rows of each length in a request of their own"
    )


def test_records_to_a_model_without_feature_names_say_what_it_takes() -> None:
    """An skl2onnx export's one input `X`, published without --features, sent the training
    CSV's records (`publish --data`, `explain`, predict): the refusal named one field, 'has
    unknown input', and not what the model takes nor how to fit it."""
    record = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4}
    with pytest.raises(InvalidInput) as info:
        simple.decode({"instances": [record]}, CLASSIFIER)
    assert info.value.message.startswith("instances[0] has unknown input ")
    assert info.value.message.endswith(
        "; this model takes x: float32 [-1, 3] and has no feature names (it was published "
        "without --features): send rows of values, or publish a version with --features "
        "naming these fields"
    )
    # A record that names some of the inputs keeps the misspelling alone (TWO_INPUTS above).
    with pytest.raises(InvalidInput) as info:
        simple.decode({"instances": [{"a": [1, 2], "bb": 5}]}, TWO_INPUTS)
    assert info.value.message == (
        "instances[0] has unknown input 'bb' (a misspelling of 'b', which it lacks?)"
    )
