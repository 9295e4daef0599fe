"""`aiaas explain --inputs` of more rows than one request takes names the way out: --file.

The 64-row limit of one explanation request reached the terminal as the HTTP API words it,
`input 'x' has a batch of 65 rows; the limit is 64`, which tells a caller of the API to split
the request, and a CLI user nothing of `--file`, which explains a file of any length 64 rows a
request. Real parts: a skl2onnx LinearRegression published and baselined by the CLI.
"""

from __future__ import annotations

import json

import pytest

from infra.cli.main import main
from tests.infra.test_explain_png_folder import store as store  # the published, baselined model


@pytest.mark.parametrize("form", ["rows", "records"])
def test_65_rows_are_told_to_use_file(
    store: str, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    rows = [[1.0, 2.0, 3.0]] * 65
    value = rows if form == "rows" else [dict(zip("abc", r, strict=True)) for r in rows]
    capsys.readouterr()
    assert main(["--store", store, "explain", "m", "--inputs", json.dumps(value)]) == 1
    err = capsys.readouterr().err
    assert "has a batch of 65 rows; the limit is 64 rows a request; --file explains a file" in err
    # 64 still go in one request, as the limit says
    assert main(["--store", store, "explain", "m", "--inputs", json.dumps(value[:64])]) == 0
