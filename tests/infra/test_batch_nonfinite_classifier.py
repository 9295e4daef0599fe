"""A classifier with a ZipMap that answers NaN for rows with gaps: bad rows, not a label.

scikit-learn's StandardScaler + LogisticRegression, exported by skl2onnx with its default
options (an int64 `output_label` and a ZipMap `output_probability`) and published with the real
`aiaas publish --allow-nonfinite`, takes a missing value as NaN and answers NaN
probabilities for that row, while its integer label output still names a class (0): nothing
in the label says the answer is void. `aiaas batch` lists such rows as bad, naming the ZipMap
output, and writes no label for them; the predict API refuses the same rows with a 422.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from functions.predict.service import service_from_env
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.batch_support import pool, read_csv
from tests.functions.test_predict_events import body_of, http_event
from tests.sklearn_models import FEATURES, Exported, export

GAPS = (2, 7)  # rows with a missing value


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return export("pipeline", tmp_path_factory.mktemp("wine"))  # scaled: fits in ms


@pytest.fixture
def wine(
    model: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[LocalStore, np.ndarray]:
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    store = LocalStore(tmp_path / "store")
    args = ["--store", store.uri, "publish", str(model.path), "--name", "wine"]
    assert main([*args, "--allow-nonfinite"]) == 0
    x = model.x_test[:10].copy()
    x[GAPS[0], 3] = x[GAPS[1], 0] = np.nan
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    labels, maps = session.run(None, {"X": x})
    assert all(np.isnan(maps[i][0]) for i in GAPS)  # the file itself answers NaN ...
    assert [int(labels[i]) for i in GAPS] == [0, 0]  # ... and a label all the same
    return store, x


def test_aiaas_batch_reports_the_rows_a_zipmap_answers_nan_for(wine, tmp_path, capsys):
    store, x = wine
    data = tmp_path / "wine.csv"
    lines = [",".join(f"X_{i}" for i in range(FEATURES))]
    lines += [",".join("" if np.isnan(v) else repr(v) for v in row) for row in x.tolist()]
    data.write_text("\n".join(lines) + "\n")

    assert main(["--store", store.uri, "batch", "wine", str(data)]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("succeeded: scored 8 of 10 rows with wine:1 in ")
    assert out[1].endswith(", 2 failed")
    errors = store.get_bytes("batch/wine/output/wine.csv.errors.jsonl").decode().splitlines()
    assert [json.loads(e) for e in errors] == [
        {
            "line": i + 2,
            "error": "model wine:1 answered NaN in output 'output_probability' value 0 for "
            "this row; a prediction must be finite (the predict API refuses such a row too), so "
            "it was not scored",
        }
        for i in GAPS
    ]
    rows = read_csv(store, "batch/wine/output/wine.csv")
    assert len(rows) == 8
    assert all(r["pred_label"] in {"0", "1", "2"} for r in rows)
    scores = [float(r[f"pred_output_probability_{c}"]) for r in rows for c in range(3)]
    assert np.isfinite(scores).all()


def test_the_predict_api_refuses_the_same_rows_as_the_caller_s(wine, tmp_path):
    """The rows answered NaN had a missing input (the model takes them: --allow-nonfinite), so
    the caller can fix them: a 422 naming them, alone or among good rows; not a 500."""
    store, x = wine
    predict = service_from_env({"AIAAS_MODEL": "wine"}, pool(store, tmp_path / "p"))

    def answer(rows: list[list[float]]) -> dict[str, object]:
        body = json.dumps({"inputs": [[None if np.isnan(v) else v for v in r] for r in rows]})
        response = predict.handle(http_event("POST", "/models/wine/predict", body))
        return {"status": response["statusCode"], **body_of(response)}

    statuses = [answer([row])["status"] for row in x.tolist()]
    assert [i for i, status in enumerate(statuses) if status != 200] == list(GAPS)
    assert {statuses[i] for i in GAPS} == {422}
    assert answer(x.tolist()) == {
        "status": 422,
        "error": "model wine:1 answered NaN or infinity for 2 of 10 rows (index 2, 7), each "
        "with a missing (null/NaN) or infinite input value it cannot score: fill those values "
        "in, or leave those rows out",
    }
