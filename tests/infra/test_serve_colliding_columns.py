"""Two DataFrame columns whose names skl2onnx makes alike, sent by their own names.

skl2onnx names a DataFrame's inputs after its columns made C-like: `income (€)` and
`income ($)` both become `income____`, so the second input is `income____1`. Which column is
which input is the order of the fitted DataFrame, which no name sent tells. Records, OIP
tensors and a batch CSV by the columns' own names were refused as "unknown input 'income (€)'
(a misspelling of 'income____', which it lacks?)": nothing said the names collide or which
inputs they stand for. Now each refusal says so, and the input names it asks for are answered.

Published by the real CLI, served by `aiaas serve` over HTTP, scored by `aiaas batch`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.batch_support import read_csv
from tests.infra.test_serve import ServeProcess, start_serve

EURO, DOLLAR = "income (€)", "income ($)"
SAID = (
    "both become 'income____' as skl2onnx names a DataFrame's columns: the model's inputs "
    "'income____' and 'income____1' are those columns in the order of the DataFrame it was "
    "fitted on, which their names cannot tell apart; "
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    root = tmp_path_factory.mktemp("colliding")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            EURO: rng.normal(size=200).astype(np.float32),
            DOLLAR: rng.normal(size=200).astype(np.float32),
            "city": rng.choice(["a", "b"], 200).astype(object),
        }
    )
    columns = ColumnTransformer(
        [("n", StandardScaler(), [EURO, DOLLAR]), ("c", OneHotEncoder(), ["city"])]
    )
    model = Pipeline([("t", columns), ("r", Ridge(alpha=1e-6))])
    model.fit(frame, 10 * frame[EURO] - 3 * frame[DOLLAR])
    onx = to_onnx(model, frame[:1])
    assert [i.name for i in onx.graph.input] == ["income____", "income____1", "city"]
    path = root / "dup.onnx"
    path.write_bytes(onx.SerializeToString())
    store = LocalStore(root / "store")
    assert main(["--store", store.uri, "publish", str(path), "--name", "dup"]) == 0
    return store


@pytest.fixture(scope="module")
def server(store: LocalStore) -> Iterator[ServeProcess]:
    yield from start_serve(store.root)


def test_records_and_oip_by_the_columns_names_say_they_collide(server: ServeProcess) -> None:
    with httpx.Client(base_url=server.base, timeout=30) as http:
        record = {EURO: 1.0, DOLLAR: 0.0, "city": "a"}
        answer = http.post("/models/dup/predict", json={"instances": [record]})
        assert (answer.status_code, answer.json()) == (
            422,
            {
                "error": f"instances[0] has unknown input {EURO!r}: {EURO!r} and {DOLLAR!r} "
                + SAID
                + "send each under its input name"
            },
        )
        tensors = [
            {"name": EURO, "datatype": "FP32", "shape": [1, 1], "data": [1.0]},
            {"name": DOLLAR, "datatype": "FP32", "shape": [1, 1], "data": [0.0]},
            {"name": "city", "datatype": "BYTES", "shape": [1, 1], "data": ["a"]},
        ]
        answer = http.post("/v2/models/dup/infer", json={"inputs": tensors})
        assert answer.status_code == 422
        assert answer.json()["error"].endswith(
            f"which this model does not take: {DOLLAR!r} and {EURO!r} "
            + SAID
            + "send each under its input name"
        )
        # What it asks for is answered: 10 * (scaled €) - 3 * (scaled $), no longer refused.
        named = {"income____": 1.0, "income____1": 0.0, "city": "a"}
        answer = http.post("/models/dup/predict", json={"instances": [named]})
        assert answer.status_code == 200, answer.text


def test_a_batch_header_of_the_columns_names_says_they_collide(
    store: LocalStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "b.csv"
    data.write_text(f"{EURO},{DOLLAR},city\n1,0,a\n")
    capsys.readouterr()
    assert main(["--store", store.uri, "batch", "dup", str(data)]) == 1
    assert (
        "the header lacks column(s) income____, income____1 "
        f"({EURO!r} and {DOLLAR!r} " + SAID + "name each column after its input)"
    ) in capsys.readouterr().err
    data.write_text("income____,income____1,city\n1,0,a\n")
    assert main(["--store", store.uri, "batch", "dup", str(data), "--name", "named.csv"]) == 0
    assert len(read_csv(store, "batch/dup/output/named.csv")) == 1
