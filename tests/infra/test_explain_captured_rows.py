"""`aiaas explain NAME --file` of a capture export after the alias moved on: the rows' answers
came from another version than the one explaining them, which is said, with the command that
explains the answer each row got (hunt_journey3 2).

Before, a user explaining "a surprising answer" from the traffic `aiaas serve` captured got the
reasons of whatever version the alias served that day (another model: 0.9167 for an answer of
0.9214), without a word, though the export's own `version` column named the answering version.
Walked as a user walks it: a real `aiaas serve` on S3 (moto's server) captures real HTTP
requests, the CLI exports and explains them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve_capture import ServeUri

FEATURES = ("age", "income", "tenure", "visits")


def training_rows(path: Path, rng: np.random.Generator) -> Path:
    """200 rows of the four features from `rng`, a CSV with its header: the baseline data."""
    rows = rng.normal(size=(200, 4))
    lines = [",".join(FEATURES), *(",".join(f"{v:.3f}" for v in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(uri: str, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--store", uri, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_explaining_captured_rows_says_which_version_answered_them(
    s3_bucket: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri = f"s3://{s3_bucket}/registry"
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cli-cache"))
    rng = np.random.default_rng(0)
    train = training_rows(tmp_path / "train.csv", rng)
    for version, seed in (("1", 1), ("2", 5)):
        model = onnx_factory.linear_classifier(tmp_path / f"m{version}.onnx", seed=seed)
        publish = ["publish", str(model), "--name", "churn", "--labels", "stay,churn,maybe"]
        assert cli(uri, capsys, *publish, "--features", ",".join(FEATURES))[0] == 0
        assert cli(uri, capsys, "baseline", f"churn:{version}", str(train))[0] == 0
    assert cli(uri, capsys, "promote", "churn", "1")[0] == 0
    assert cli(uri, capsys, "capture", "churn", "--sample", "1")[0] == 0

    server = ServeUri(uri, tmp_path, {"AIAAS_ALIAS_TTL": "0.3"})
    try:
        server.wait_ready()
        records = [dict(zip(FEATURES, row.round(3).tolist(), strict=True))
                   for row in rng.normal(size=(4, 4))]  # fmt: skip
        for record in records:
            answer = httpx.post(f"{server.base}/models/churn/predict",
                                json={"instances": [record]}, timeout=30)  # fmt: skip
            assert answer.status_code == 200 and answer.json()["version"] == "1", answer.text
    finally:
        server.stop()  # SIGTERM: the captured lines it held are written first
    # A week later: production serves 2, and the user explains what 1 answered.
    assert cli(uri, capsys, "promote", "churn", "2")[0] == 0
    captured = tmp_path / "captured.csv"
    code, _, err = cli(uri, capsys, "capture", "export", "churn", "--out", str(captured))
    assert code == 0, err
    with captured.open() as f:
        served = [float(row["served_score"]) for row in csv.DictReader(f)]
    assert len(served) == 4

    why = tmp_path / "why.jsonl"
    code, _, err = cli(uri, capsys, "explain", "churn", "--file", str(captured), "--out", str(why))
    assert code == 0, err
    assert (
        "note: 4 of 4 rows of captured.csv were answered by another version than churn:2, which "
        "explains them here (their `version`: 1 (4)); to explain the answer a row got, explain it "
        "with the version that gave it: `aiaas explain churn:1 --file FILE`"
    ) in err
    lines = [json.loads(line) for line in why.read_text().splitlines()]
    assert [line["record"]["version"] for line in lines] == ["1"] * 4
    assert not np.allclose([max(line["prediction"]) for line in lines], served, atol=1e-4)

    # The command it names explains the answers the callers got, and says nothing more.
    code, _, err = cli(
        uri, capsys, "explain", "churn:1", "--file", str(captured), "--out", str(why)
    )
    assert code == 0 and "note:" not in err, err
    lines = [json.loads(line) for line in why.read_text().splitlines()]
    np.testing.assert_allclose([max(line["prediction"]) for line in lines], served, atol=1e-5)


def test_a_capture_export_written_back_by_pandas_names_its_versions_as_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A capture export filtered in pandas and written back as JSONL holds `"version": 1`, a
    number (`1.0` where the column had a gap): `aiaas explain churn:1` said those rows "were
    answered by another version than churn:1" and named `aiaas explain churn:1`, the command
    just run (review_rev10 1). A number is the digit version of that number; text is compared
    as the registry names versions, so 2 and a named `1.5` are still another version."""
    uri = str(tmp_path / "store")
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cli-cache"))
    rng = np.random.default_rng(0)
    train = training_rows(tmp_path / "train.csv", rng)
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx", seed=1)
    publish = ["publish", str(model), "--name", "churn", "--features", ",".join(FEATURES)]
    assert cli(uri, capsys, *publish)[0] == 0
    assert cli(uri, capsys, "baseline", "churn:1", str(train))[0] == 0
    inputs = rng.normal(size=(6, 4)).round(3).tolist()
    versions = [1, 1.0, "1", None, 2, 1.5]  # pandas: 1, a column with a gap: 1.0 and null
    exported = tmp_path / "cap5pd.jsonl"
    _export(exported, versions, inputs)
    why = tmp_path / "why.jsonl"
    argv = ["explain", "churn:1", "--file", str(exported), "--out", str(why), "--no-progress"]
    code, _, err = cli(uri, capsys, *argv)
    assert code == 0, err
    assert (
        err.count("note:") == 1
        and (
            "note: 2 of 6 rows of cap5pd.jsonl were answered by another version than churn:1, which "
            "explains them here (their `version`: 1.5 (1), 2 (1))"
        )
        in err
    ), err
    assert len(why.read_text().splitlines()) == 6

    _export(exported, [1, 1.0, "1", None], inputs[:4])
    code, _, err = cli(uri, capsys, *argv)
    assert code == 0 and "note:" not in err, err


def _export(path: Path, versions: list[object], inputs: list[list[float]]) -> None:
    """Capture records (`request_id`, `version`, the inputs) as JSON lines."""
    with path.open("w") as f:
        for i, (version, row) in enumerate(zip(versions, inputs, strict=True)):
            values = dict(zip(FEATURES, row, strict=True))
            record = {"request_id": f"r{i}", "version": version, **values}
            f.write(json.dumps(record) + "\n")
