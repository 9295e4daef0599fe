"""`aiaas explain --inputs @rows.json` of a file with a UTF-8 byte order mark (PowerShell 5's
`Out-File -Encoding utf8`, Notepad's "UTF-8 with BOM"): it was refused, "UTF-8 byte order mark
(BOM) is not supported", where every other file the CLI reads (CSV, JSONL) leaves the mark out.
hunt_datafiles 11. Real parts: a skl2onnx model, the CLI's publish, baseline and explain.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

from functions.runtime.store import LocalStore
from tests.cli_run import run


def test_inputs_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    model = tmp_path / "lin.onnx"
    fitted = LinearRegression().fit(x, x @ np.array([1.0, -2.0, 0.5]))
    model.write_bytes(to_onnx(fitted, x[:1]).SerializeToString())
    store = LocalStore(tmp_path / "store")
    code, _, err = run(store, "publish", str(model), "--name", "lin", "--features", "a,b,c")
    assert code == 0, err
    np.save(tmp_path / "train.npy", x)
    code, _, err = run(store, "baseline", "lin", str(tmp_path / "train.npy"))
    assert code == 0, err
    plain, marked = tmp_path / "plain.json", tmp_path / "marked.json"
    plain.write_text("[[1.0, 2.0, 3.0]]\r\n")
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    answers = []
    for path in (plain, marked):
        code, out, err = run(store, "explain", "lin", "--inputs", f"@{path}", "--json")
        assert code == 0, err
        answers.append(json.loads(out))
    assert answers[0] == answers[1]
