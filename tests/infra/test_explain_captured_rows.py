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
    train = tmp_path / "train.csv"
    train.write_text(
        ",".join(FEATURES) + "\n" + "".join(
            ",".join(f"{v:.3f}" for v in row) + "\n" for row in rng.normal(size=(200, 4))
        )
    )  # fmt: skip
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
