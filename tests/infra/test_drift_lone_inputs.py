"""Drift counts through `aiaas serve` of requests the histograms once failed on, answered 200.

- A text model's lone string (`{"inputs": "..."}`, `{"inputs": {"input_ids": "..."}}`,
  `{"inputs": {"text": "..."}}`, an OIP BYTES tensor of shape []): the recorder took `len()`
  of the 0-d array ("len() of unsized object"), and the monitor then set the version's
  histograms to None for the life of the process: the counts it held were lost and no later
  request of that version was counted (a hunt's `aiaas monitor` stuck at 22 rows for good).
  Now a lone string is one row, binned as the model reads it.
- Any other request the histograms cannot read: a detector's [N, K, 6] outputs, K of the
  whole call (tests/nonrow_models.py), cannot be stacked across requests, and a request of no
  detection has no value to bin. The fold of 1,024 held rows failed on a request's thread and
  turned the version off the same way. Now a fold that fails bins each request alone and drops
  only those that fail, said once a process; the version stays monitored.

The server keeps its counts till its stop (the default interval, a minute), which writes them:
the counts held before the request are checked too. The reference for the text features is the
`tokenizers` library's own encode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.drift.snapshots import snapshot_prefix
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import hf_transformer, nonrow_models
from tests.infra.test_hf_text_drift import draw, own_features
from tests.infra.test_publish_tokenizer import MODEL, POSITIONS, publish
from tests.infra.test_serve import ServeProcess, start_serve

LABELS = ",".join(hf_transformer.LABELS)
DROPPED = "drift counts of a request of"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text model (a tokenizer.json) and a detector, each published with a drift baseline."""
    root = tmp_path_factory.mktemp("lone-inputs")
    store = LocalStore(root / "store")
    tokenizer = hf_transformer.tokenizer_json(root / "tokenizer.json")
    model = hf_transformer.transformer(root / "words.onnx", positions=POSITIONS)
    code, _, err = publish(store, model, "--labels", LABELS, "--tokenizer", str(tokenizer))
    assert code == 0, err
    texts = draw(np.random.default_rng(0), 200, 2, 12, unknown=0.1)
    (root / "texts.txt").write_text("\n".join(texts) + "\n")
    detector = nonrow_models.detections(root / "det.onnx")
    np.save(root / "det.npy", nonrow_models.images(200))
    for argv in (
        ["baseline", MODEL, str(root / "texts.txt")],
        ["publish", str(detector), "--name", "det"],
        ["baseline", "det", str(root / "det.npy")],
    ):
        assert main(["--store", store.uri, *argv]) == 0, argv
    return root


@pytest.fixture
def server(root: Path) -> Iterator[ServeProcess]:
    yield from start_serve(root / "store")


def written(root: Path, name: str) -> dict[str, np.ndarray]:
    """The sums of every snapshot of `name`:1 in the store (each test's model is its own)."""
    total: dict[str, np.ndarray] = {}
    folder = root / "store" / snapshot_prefix(name, "1")
    for path in sorted(folder.rglob("*.json")):
        doc = json.loads(path.read_text())
        for key in ("rows", "counts", "prediction"):
            total[key] = total.get(key, 0) + np.asarray(doc[key])
    return total


def baseline(root: Path, name: str) -> DriftBaseline:
    key = f"{version_prefix(name, '1')}/{BASELINE_FILE}"
    return DriftBaseline.from_json(LocalStore(root / "store").get_bytes(key))


def monitored_rows(root: Path, name: str, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    argv = ["--store", LocalStore(root / "store").uri, "monitor", name, "--window", "1h"]
    assert main([*argv, "--json"]) == 0
    return int(json.loads(capsys.readouterr().out)["rows"])


def test_lone_strings_are_one_row_each_and_the_version_stays_monitored(
    root: Path, server: ServeProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    before, after = draw(rng, 20, 2, 12, unknown=0.2), draw(rng, 20, 2, 12, unknown=0.2)
    lone = draw(rng, 4, 2, 12, unknown=0.2)
    predict, infer = (
        f"{server.base}/models/{MODEL}/predict",
        f"{server.base}/v2/models/{MODEL}/infer",
    )
    bodies = [
        (predict, {"inputs": lone[0]}),
        (predict, {"inputs": {"input_ids": lone[1]}}),
        (predict, {"inputs": {"text": lone[2]}}),
        (
            infer,
            {"inputs": [{"name": "input_ids", "datatype": "BYTES", "shape": [], "data": lone[3]}]},
        ),
    ]
    with httpx.Client(timeout=30) as client:
        for start in range(0, 20, 4):
            answer = client.post(predict, json={"inputs": before[start : start + 4]})
            assert answer.status_code == 200, answer.text
        for url, body in bodies:
            answer = client.post(url, json=body)
            assert answer.status_code == 200, answer.text
        for start in range(0, 20, 4):  # counted too: the version was not turned off
            answer = client.post(predict, json={"inputs": after[start : start + 4]})
            assert answer.status_code == 200, answer.text
    server.stop()  # writes the counts held (the interval is a minute)
    log = server.log.read_text()
    assert DROPPED not in log and "Traceback" not in log, log
    assert monitored_rows(root, MODEL, capsys) == 44  # was 0: the counts held were lost too
    texts = before + lone + after
    expected = own_features(root / "tokenizer.json", texts, "[UNK]")
    got = written(root, MODEL)
    assert got["counts"].tolist() == baseline(root, MODEL).bin_rows(expected).tolist()
    assert got["prediction"].sum() == 44


def image(k: int, seed: int) -> np.ndarray:
    """One image [1, 8, 6] of exactly `k` detections (x[..., 0] > 0 in `k` of its 8 cells)."""
    x = nonrow_models.images(1, seed)
    x[0, :, 0] = np.where(np.arange(8) < k, 1.0, -1.0) * (np.abs(x[0, :, 0]) + 0.1)
    return x


def test_a_request_the_histograms_cannot_read_is_dropped_alone(
    root: Path, server: ServeProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """Requests of 200 images (8 detections each) and of one image of 3, 0 and 5: past 1,024
    rows the fold runs on a request's thread, and stacks [200, 8, 6] on [1, 3, 6]."""
    sent = [nonrow_models.images(200, seed) for seed in range(1, 4)]
    sent += [image(3, 4), image(0, 5), image(5, 6)]
    sent += [nonrow_models.images(200, seed) for seed in range(7, 10)]
    sent += [image(0, 10), nonrow_models.images(200, 11)]
    url = f"{server.base}/models/det/predict"
    with httpx.Client(timeout=30) as client:
        for x in sent:
            answer = client.post(url, json={"inputs": x.tolist()})
            assert answer.status_code == 200, answer.text
    server.stop()
    # The requests of no detection are dropped; every other row is counted.
    counted = [x for x in sent if x[0, :, 0].max() > 0]
    assert len(counted) == len(sent) - 2
    rows = np.concatenate(counted).reshape(-1, 48).astype(np.float32).astype(np.float64)
    assert monitored_rows(root, "det", capsys) == len(rows) == 1402  # was 0
    got = written(root, "det")
    assert got["counts"].tolist() == baseline(root, "det").bin_rows(rows).tolist()
    assert got["prediction"].sum() == 1402
    log = server.log.read_text()  # said once, not a line a request
    assert log.count(DROPPED) == 1 and f"{DROPPED} det:1 dropped" in log, log
