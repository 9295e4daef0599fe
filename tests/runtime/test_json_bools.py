"""`may_hold_bools`: the byte search that spares a body of numbers the look for true/false."""

from __future__ import annotations

import pytest

from functions.runtime.codecs.json_bools import may_hold_bools


@pytest.mark.parametrize(
    ("body", "held"),
    [
        (b'{"inputs": [[0.5, -1.25e-05, 3]]}', False),  # numbers: neither letter
        (b'{"inputs": [[1, true, 3]]}', True),
        (b'{"inputs": [[1, false, 3]]}', True),
        (b'{"instances": [{"x": [1, 2]}], "id": "error"}', False),  # an 'r', no literal
        (b'{"inputs": [[1, 2]], "note": "fine"}', False),  # an 'f', no literal
        (b'{"inputs": [[1, 2]], "flag": "trueish"}', True),  # as a byte search always said
        (b'{"parameters": {"binary_data_output": true}}', True),
        (b"", False),
    ],
)
def test_says_what_a_search_for_both_literals_says(body: bytes, held: bool) -> None:
    assert may_hold_bools(body) is held
    assert may_hold_bools(body) == (b"true" in body or b"false" in body)
