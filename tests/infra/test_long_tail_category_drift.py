"""A long-tailed string column (60% of rows ten canned answers, the rest one-off sentences:
38% of training rows hold a value no other row holds, under the 50% of free text, so it is
watched by category), served from the very source it was trained on: a TF-IDF pipeline
through skl2onnx, `aiaas baseline`, requests to `aiaas serve`, `aiaas monitor --json` and the
drift job, every PSI checked against one computed here with numpy alone.

Before, `(new)`'s expected share was the 1e-4 floor: the ~40% of served rows holding a
sentence training never saw scored 0.4 ln(0.4 / 1e-4) = 3.3 from that bin alone, and the
column read DRIFT (PSI 5.8) on unchanged traffic, `--fail-on-drift` failing every run. Now
the training rows of one-off values are what `(new)` expects (Good-Turing: their share is
the chance the next value is unseen), and the same traffic scores about 0. A baseline written
before (no `one_off`) keeps its old expectation."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import StringTensorType
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from functions.drift.job import DriftSettings, run
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import ServeProcess, start_serve

EPS = 1e-4  # the floor of a share in PSI (docs/monitoring.md)
KEPT, RARE = 100, 10_000  # categories kept by bin, rarer ones known by name
COMMON = ["great", "ok", "bad", "good product", "terrible", "love it", "meh", "fine", "works"]
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "quick",
    "slow",
    "red",
    "blue",
    "item",
    "box",
    "ship",
    "late",
    "early",
    "price",
    "value",
]
LIKED = ("good", "great", "love", "ok", "fine", "works", "alpha", "red")


def answers(rng: np.random.Generator, rows: int, tag: str, one_off: float = 0.4) -> list[str]:
    """`rows` answers of one source: a canned one, or (`one_off` of rows) a sentence of five
    words and a number no other row holds."""
    return [
        " ".join(rng.choice(WORDS, 5)) + f" {tag}{i}"
        if rng.random() < one_off
        else str(rng.choice(COMMON))
        for i in range(rows)
    ]


def reference_psi(train: list[str], live: list[str], one_off: bool = True) -> float:
    """PSI of `live` against `train` by category, numpy only: a bin per one of the 100 most
    frequent training values (ties by value), `(other)` for the next 10,000, `(new)` for the
    rest; a training row of a value no other training row holds counts in `(new)` (not with
    `one_off=False`: an old baseline), shares floored at EPS."""
    counts = Counter(train)
    ranked = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    slot = {v: i for i, v in enumerate(ranked[:KEPT])}
    slot |= dict.fromkeys(ranked[KEPT : KEPT + RARE], KEPT)
    new = KEPT + 1

    def shares(values: list[str], moved: bool) -> np.ndarray:
        bins = [new if moved and counts[v] == 1 else slot.get(v, new) for v in values]
        return np.bincount(bins, minlength=KEPT + 2) / len(values)

    a, e = np.maximum(shares(live, False), EPS), np.maximum(shares(train, one_off), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class Served:
    store: LocalStore
    server: ServeProcess
    train: list[str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("long-tail")
    store = LocalStore(root / "store")
    train = answers(np.random.default_rng(0), 1000, "t")
    labels = ["pos" if any(w in t for w in LIKED) else "neg" for t in train]
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(train, labels)
    options = {id(pipeline[0]): {"locale": "C.UTF-8"}, id(pipeline[-1]): {"zipmap": False}}
    text_type = [("text", StringTensorType([None, 1]))]
    onnx = to_onnx(pipeline, initial_types=text_type, options=options)
    (root / "answers.onnx").write_bytes(onnx.SerializeToString())
    pd.DataFrame({"text": train}).to_csv(root / "train.csv", index=False)
    cli = ["--store", store.uri]
    assert main([*cli, "publish", str(root / "answers.onnx"), "--name", "answers"]) == 0
    assert main([*cli, "baseline", "answers", str(root / "train.csv")]) == 0
    for server in start_serve(store.root, env={"AIAAS_DRIFT_FLUSH_SECONDS": "0.001"}):
        yield Served(store, server, train)


def send(server: ServeProcess, texts: list[str]) -> None:
    for start in range(0, len(texts), 50):
        body = {"inputs": [[t] for t in texts[start : start + 50]]}
        answer = httpx.post(f"{server.base}/models/answers/predict", json=body)
        assert answer.status_code == 200, answer.text
        time.sleep(0.01)


def monitored(store: LocalStore, capsys: Any, rows: int) -> dict[str, Any]:
    """`aiaas monitor --json` once the window holds `rows` served rows (flushed apart)."""
    for _ in range(50):
        code = main(["--store", store.uri, "monitor", "answers", "--window", "10m", "--json"])
        doc: dict[str, Any] = json.loads(capsys.readouterr().out)
        if doc["rows"] >= rows:
            assert code == 0 and doc["rows"] == rows, doc
            return doc
        time.sleep(0.1)
    raise AssertionError(f"served rows never reached {rows}")


def test_same_source_traffic_is_no_drift_and_new_values_still_are(
    served: Served, capsys: Any
) -> None:
    key = f"{version_prefix('answers', '1')}/{BASELINE_FILE}"
    written = json.loads(served.store.get_bytes(key))
    (column,) = written["categories"]
    assert written.get("free_text") is None  # under half one-off: watched by category

    live = answers(np.random.default_rng(1), 2200, "s")  # the same source
    send(served.server, live)
    doc = monitored(served.store, capsys, 2200)
    text = next(f for f in doc["features"] if f["name"] == "text")
    expected = reference_psi(served.train, live)
    assert text["psi"] == pytest.approx(expected, abs=1e-9) and expected < 0.05, text
    assert text["judged"] and not text["drifted"] and doc["drifted"] == [], doc
    assert text["outside"] == sum(1 for t in live if t not in served.train)
    one_off = sum(1 for n in Counter(served.train).values() if n == 1)
    assert column.get("one_off") == one_off and 0.3 < one_off / 1000 < 0.5, column
    cli = ["--store", served.store.uri, "monitor", "answers", "--window", "10m"]
    assert main([*cli, "--no-png", "--fail-on-drift"]) == 0, capsys.readouterr()
    capsys.readouterr()
    (job,) = [d for d in run(served.store, DriftSettings(), time.time()) if d["model"] == "answers"]
    assert job["psi"]["text"] == pytest.approx(expected, abs=1e-6), job  # type: ignore[index]
    assert job["drifted"] == [], job

    # A baseline written before `one_off` was recorded loads and expects `(new)` at the floor.
    old = {**written, "categories": [{k: v for k, v in column.items() if k != "one_off"}]}
    served.store.put_bytes(key, json.dumps(old).encode())
    try:
        doc = monitored(served.store, capsys, 2200)
        text = next(f for f in doc["features"] if f["name"] == "text")
        before = reference_psi(served.train, live, one_off=False)
        assert text["psi"] == pytest.approx(before, abs=1e-9) and before > 3, text
        assert doc["drifted"] == ["text"], doc
    finally:
        served.store.put_bytes(key, json.dumps(written).encode())

    # New values still drift: 1,800 more rows, nearly all sentences training never saw.
    shifted = answers(np.random.default_rng(2), 1800, "n", one_off=0.95)
    send(served.server, shifted)
    doc = monitored(served.store, capsys, 4000)
    text = next(f for f in doc["features"] if f["name"] == "text")
    expected = reference_psi(served.train, live + shifted)
    assert text["psi"] == pytest.approx(expected, abs=1e-9) and expected > 0.2, text
    assert doc["drifted"] == ["text"], doc
    (job,) = [d for d in run(served.store, DriftSettings(), time.time()) if d["model"] == "answers"]
    assert job["psi"]["text"] == pytest.approx(expected, abs=1e-6), job  # type: ignore[index]
    assert job["drifted"] == ["text"], job
    assert "Traceback" not in served.server.output()
