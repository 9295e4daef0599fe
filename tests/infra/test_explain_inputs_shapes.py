"""`aiaas explain --inputs` takes what a person types for one row: one record object (it said
"request body needs exactly one of inputs or instances", a body's words, not the flag's), a
list of records, a list of rows or a predict body; anything else is told what to pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from tests.infra.test_cli_explain import FEATURES, cli, store, write_csv

__all__ = ["store"]  # the fixture: a published 4-feature classifier
RECORD = dict(zip(FEATURES.split(","), [1.0, 2.0, 3.0, 4.0], strict=True))


def test_one_record_a_list_of_records_and_rows_are_explained_alike(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = np.random.default_rng(0).normal(size=(20, 4)).round(3)
    assert cli(store, capsys, "baseline", "iris", str(write_csv(tmp_path / "t.csv", rows)))[0] == 0
    answers = {}
    for given in (RECORD, [RECORD, RECORD], [[1.0, 2.0, 3.0, 4.0]], {"instances": [RECORD]}):
        code, out, err = cli(
            store, capsys, "explain", "iris", "--inputs", json.dumps(given), "--json"
        )
        assert code == 0, err
        doc = json.loads(out)
        answers[json.dumps(given)] = doc["explanations"][0]["attributions"]
        assert len(doc["explanations"]) == (2 if given == [RECORD, RECORD] else 1)
    assert len({json.dumps(found) for found in answers.values()}) == 1  # one row, one answer


@pytest.mark.parametrize(
    ("given", "got"),
    [
        ("5", "a single int (5)"),
        ("null", "a single null (None)"),
        ("[]", "an empty list"),
        ('{"parameters": {"samples": 20}}', "a body with no inputs"),
    ],
)
def test_a_wrong_shape_is_told_what_to_pass(
    store: LocalStore, capsys: pytest.CaptureFixture[str], given: str, got: str
) -> None:
    code, _, err = cli(store, capsys, "explain", "iris", "--inputs", given)
    assert code == 1
    assert f'--inputs got {got}: give one record {{"feature": value, ...}}, a list of' in err
    assert "exactly one of" not in err


@pytest.mark.parametrize(
    ("inputs", "says"),
    [
        # json.loads read 1e400 as infinity, the body re-encoded it as null: "a missing value".
        ("[[1e400, 2, 3, 4]]", "--inputs is not valid JSON: number is infinity when parsed"),
        ("[[NaN, 2, 3, 4]]", "(NaN and Infinity are not JSON: send null for a missing value"),
    ],
)
def test_inputs_are_read_as_the_http_api_reads_a_body(
    store: LocalStore, capsys: pytest.CaptureFixture[str], inputs: str, says: str
) -> None:
    code, out, err = cli(store, capsys, "explain", "iris", "--inputs", inputs)
    assert (code, out) == (1, "") and says in err, err
    assert "a missing value (null)" not in err
