"""background.json's formats: numeric files from before formats still read, string columns'
real values round-trip (format 2), and a file a model cannot use is refused with what to do."""

from __future__ import annotations

import json

import numpy as np
import pytest

from functions.runtime.errors import BadRequest, ManifestError
from functions.runtime.explain.background import Background, summarize
from functions.runtime.explain.categories import CategoryCodes
from functions.runtime.input_columns import InputColumns
from functions.runtime.manifest import TensorSpec

# As training and `aiaas baseline` wrote it before string columns (no "format" key).
BEFORE_FORMATS = json.dumps(
    {"rows": [[0.5, 1.0], [1.5, -2.0]], "weights": [3, 1], "source": "k-means (2 centres) of 8"}
)


def _table(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array(
        [
            [float(rng.normal()), str(rng.choice(["a", "b", "c"], p=[0.6, 0.3, 0.1]))]
            for _ in range(rows)
        ],
        dtype=object,
    )


def test_a_file_from_before_formats_still_reads_and_numbers_stay_format_1() -> None:
    old = Background.from_json(BEFORE_FORMATS, width=2)
    np.testing.assert_allclose(old.rows, [[0.5, 1.0], [1.5, -2.0]])
    np.testing.assert_allclose(old.weights, [0.75, 0.25])
    assert old.categories == {}
    written = json.loads(old.to_json())
    assert written["format"] == 1 and written["rows"] == [[0.5, 1.0], [1.5, -2.0]]


def test_string_columns_keep_their_values() -> None:
    background = summarize(_table(300), clusters=6, strings=(1,))
    doc = json.loads(background.to_json())
    assert doc["format"] == 2
    assert {row[1] for row in doc["rows"]} == {"a", "b", "c"}  # every category kept here
    again = Background.from_json(background.to_json(), width=2, strings=(1,))
    assert set(again.categories[1]) == {"a", "b", "c"}
    decoded = [again.categories[1][int(code)] for code in again.rows[:, 1]]
    assert decoded == [row[1] for row in doc["rows"]]
    np.testing.assert_allclose(again.rows[:, 0], [row[0] for row in doc["rows"]])
    shares = {
        v: sum(w for w, d in zip(again.weights, decoded, strict=True) if d == v) for v in "abc"
    }
    counts = {v: float(np.mean(_table(300)[:, 1] == v)) for v in "abc"}
    assert all(abs(shares[v] - counts[v]) < 0.1 for v in "abc"), (shares, counts)


def test_only_strings_and_few_rows() -> None:
    strings = np.array([["x", "p"], ["y", "q"], ["x", "q"], ["x", "p"]] * 5, dtype=object)
    background = summarize(strings, clusters=3, strings=(0, 1))
    assert len(background.rows) <= 3
    assert set(background.categories[0]) <= {"x", "y"} and "x" in background.categories[0]
    few = summarize(_table(3), clusters=10, strings=(1,))
    assert few.source == "all 3 rows of the data" and len(few.rows) == 3


def test_files_a_model_cannot_use_are_refused() -> None:
    with pytest.raises(ManifestError, match="make it again with `aiaas baseline`"):
        Background.from_json(BEFORE_FORMATS, width=2, strings=(1,))
    later = json.dumps({**json.loads(BEFORE_FORMATS), "format": 3})
    with pytest.raises(ManifestError, match="format 3; this aiaas reads formats 1 to 2"):
        Background.from_json(later, width=2)
    stringy = summarize(_table(50), clusters=4, strings=(1,)).to_json()
    with pytest.raises(ManifestError, match="a string where the model reads numbers"):
        Background.from_json(stringy, width=2)
    with pytest.raises(BadRequest, match="non-number in a numeric column"):
        summarize(np.array([["x", "a"]], dtype=object), strings=(1,))


def test_codes_number_new_values_after_the_backgrounds_and_decode_exactly() -> None:
    columns = InputColumns(
        (TensorSpec("n", "float32", (-1, 1)), TensorSpec("s", "string", (-1, 1))),
        (1, 1),
        ("n", "s"),
    )
    assert columns.strings == (1,) and columns.dtype == np.float64
    assert columns.numeric().names == ("n",)
    known = CategoryCodes(columns, {1: ("a", "b")})
    codes = known.copy()
    rows = codes.encode(np.array([[1.5, "b"], [2.0, b"new"]], dtype=object))
    np.testing.assert_array_equal(rows, [[1.5, 1.0], [2.0, 2.0]])
    feeds = codes.feeds(rows)
    assert feeds["s"].tolist() == [["b"], ["new"]] and feeds["s"].dtype == object
    assert feeds["n"].dtype == np.float32
    with pytest.raises(IndexError):  # the shared numbering never saw this request's value
        known.feeds(rows)
