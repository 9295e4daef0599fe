"""`aiaas explain --inputs '{"a": [0.5, 0.6], "b": [0.1, 0.2]}'` for a model of [N] inputs was
read as one record whose values are vectors: "input 'a' expects shape [-1] (rank 1); got shape
[1, 2]", shapes the user never wrote, where the served API explains that dict's two rows. Such a
model's dict of equal-length lists is columns; an [N, F] model's is still one record's vectors,
and a refusal of a record holding lists says how to give several rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.publishing import published_cli


def baselined(tmp_path: Path, model: Path, header: str, capsys: Any) -> LocalStore:
    """`model` published as m:1 with a background of 20 rows under `header`'s columns."""
    store = published_cli(tmp_path, model)
    rows = np.random.default_rng(0).normal(size=(20, header.count(",") + 1)).round(3)
    train = tmp_path / "train.csv"
    train.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    assert main(["--store", store.uri, "baseline", "m", str(train)]) == 0, capsys.readouterr()
    capsys.readouterr()
    return store


def explained(store: LocalStore, given: object, capsys: Any) -> list[dict[str, Any]]:
    code = main(["--store", store.uri, "explain", "m", "--inputs", json.dumps(given), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return list(json.loads(out)["explanations"])


@pytest.fixture
def products(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> LocalStore:
    """y = a * b over a [N] and b [N], published and baselined."""
    vector: onnx_factory.Tensors = {
        "a": (TensorProto.FLOAT, ["N"]),
        "b": (TensorProto.FLOAT, ["N"]),
    }
    y: onnx_factory.Tensors = {"y": (TensorProto.FLOAT, ["N"])}
    model = onnx_factory.over_rows(
        tmp_path / "m.onnx", [helper.make_node("Mul", ["a", "b"], ["y"])], vector, y
    )
    return baselined(tmp_path, model, "a,b", capsys)


def test_a_dict_of_lists_is_the_rows_the_api_would_explain(
    products: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    columns = {"a": [0.5, 0.6], "b": [0.1, 0.2]}
    rows = explained(products, columns, capsys)
    assert [r["prediction"][0] for r in rows] == pytest.approx([0.05, 0.12])
    body = explained(products, {"inputs": columns}, capsys)  # POST /models/m/explain's body
    records = explained(products, [{"a": 0.5, "b": 0.1}, {"a": 0.6, "b": 0.2}], capsys)
    assert rows == body == records
    (one,) = explained(products, {"a": [0.5], "b": [0.5]}, capsys)  # was "got shape [1, 1]"
    assert one["prediction"] == pytest.approx([0.25])


def test_a_record_of_lists_refused_says_how_to_give_rows(
    products: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    given = json.dumps({"a": [0.5, 0.6], "b": [0.1]})  # not columns: lengths differ
    code = main(["--store", products.uri, "explain", "m", "--inputs", given])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert "got shape [1, 2]; to explain several rows, give a list of records" in err, err
    assert '{"inputs": {...}}' in err


def test_an_n_by_f_model_reads_a_dict_of_lists_as_one_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = np.array([[2.0], [3.0]], dtype=np.float32)
    model = onnx_factory.over_rows(
        tmp_path / "m.onnx",
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        {"x": (TensorProto.FLOAT, ["N", 2])},
        {"y": (TensorProto.FLOAT, ["N", 1])},
        [numpy_helper.from_array(weights, "w")],
    )
    store = baselined(tmp_path, model, "x_0,x_1", capsys)
    (one,) = explained(store, {"x": [1.0, 2.0]}, capsys)  # one row's vector, not two rows
    assert one["prediction"] == pytest.approx([8.0])
