"""Shadow agreement of versions that name their classes differently, through a real `aiaas
serve` (its own process, real HTTP) and `aiaas rollout` (the CLI, its own process).

iris trained with scikit-learn and exported by skl2onnx with its default options (a ZipMap of
probabilities; the label output is the class itself), published by the real CLI: version 1 on
the species' names (`setosa`, `versicolor`, `virginica`), version 2 on class numbers (`0, 1,
2`, a little more regularised, so the two disagree on a few rows), version 3 on two classes
numbered `0, 1`. The shadow compared labels by name: 1 and 2 agreed on no row, and a rollout
with `--min-agreement` rolled a good candidate back ("agreement with the baseline 0.000").
They are now matched as `aiaas compare` matches them: by class index for 1 and 2 (either way
round), and `/metrics` and the rollout's log then equal an offline comparison of the same rows
run through onnxruntime directly; 1 and 3 cannot be matched, so a rollout says agreement is not
measured and does not shadow at all (its copies could not be compared) rather than judging it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from prometheus_client.parser import text_string_to_metric_families
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.predict import metric_names as m
from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook, RolloutRecord
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import ROOT, TOKEN, ServeProcess, start_serve

SPECIES = ("setosa", "versicolor", "virginica")
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
REQUESTS = 80
BAKE_S = 1.5
MAX_SECONDS = 60.0


@dataclass(frozen=True)
class Iris:
    store: Path
    onnx: dict[str, Path]  # version -> the ONNX file published as it

    @property
    def registry(self) -> Registry:
        return Registry(LocalStore(self.store))


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Iris:
    work = tmp_path_factory.mktemp("shadow-class-names")
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    fitted = {
        "1": LogisticRegression(max_iter=1000).fit(x, np.asarray(SPECIES)[y]),
        "2": LogisticRegression(max_iter=1000, C=0.1).fit(x, y),
        "3": LogisticRegression(max_iter=1000).fit(x[y < 2], y[y < 2]),
    }
    paths = {}
    for version, estimator in fitted.items():
        paths[version] = work / f"iris-{version}.onnx"
        paths[version].write_bytes(to_onnx(estimator, x[:1]).SerializeToString())  # defaults
        argv = ["--store", str(work / "store"), "publish", str(paths[version]), "--name", "iris"]
        assert main(argv) == 0
    found = Iris(work / "store", paths)
    assert found.registry.manifest("iris", "1").labels == SPECIES
    assert found.registry.manifest("iris", "2").labels == ("0", "1", "2")
    found.registry.set_alias("iris", "production", "1")
    return found


@pytest.fixture(scope="module")
def server(iris: Iris) -> Iterator[ServeProcess]:
    # INFO: the replay process's line saying how it matched the classes is written too.
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "3600", "POWERTOOLS_LOG_LEVEL": "INFO"}
    yield from start_serve(iris.store, env=env, headers=HEADERS)


def rows(seed: int, count: int) -> np.ndarray:
    """Iris-like rows: the data's own, jittered (some near the classes' borders)."""
    x, _ = load_iris(return_X_y=True)
    rng = np.random.default_rng(seed)
    picked = x[rng.integers(0, len(x), count)] + rng.normal(0, 0.3, (count, 4))
    return picked.astype(np.float32)


def offline_agreed(iris: Iris, served: str, shadow: str, x: np.ndarray) -> int:
    """Rows where both versions answer the class at the same index of their own labels, as
    onnxruntime runs their ONNX files directly."""
    found = []
    for version in (served, shadow):
        session = ort.InferenceSession(str(iris.onnx[version]))
        answered = session.run(["output_label"], {"X": x})[0]
        labels = iris.registry.manifest("iris", version).labels
        found.append(np.asarray([labels.index(str(label)) for label in answered.tolist()]))
    return int((found[0] == found[1]).sum())


def shadow_series(client: httpx.Client, served: str, shadow: str) -> dict[str, float]:
    """The `aiaas_shadow_*` samples of the pair served -> shadow, by sample name."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            pair = (sample.labels.get("version"), sample.labels.get("shadow_version"))
            if sample.name.startswith("aiaas_shadow_") and pair == (served, shadow):
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


@pytest.mark.parametrize(
    ("served", "shadow"), [("1", "2"), ("2", "1")], ids=["names-served", "numbers-served"]
)
def test_metrics_count_agreement_by_class_index_as_an_offline_comparison(
    iris: Iris, server: ServeProcess, served: str, shadow: str
) -> None:
    registry = iris.registry
    registry.set_alias("iris", "production", served)
    registry.set_shadow("iris", "production", shadow, 1.0)
    rng = np.random.default_rng(int(served))
    batches = [rows(int(served) * 1000 + i, int(rng.integers(1, 4))) for i in range(REQUESTS)]
    with httpx.Client(base_url=server.base, headers=HEADERS, timeout=30) as client:
        for x in batches:
            answer = client.post("/models/iris/predict", json={"inputs": x.tolist()})
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-aiaas-version"] == served
        deadline = time.monotonic() + 60
        while True:
            series = shadow_series(client, served, shadow)
            replayed = series.get(m.SHADOW_REQUESTS, 0) + series.get(m.SHADOW_ERRORS, 0)
            if replayed >= REQUESTS or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    registry.set_shadow("iris", "production", None)
    x = np.concatenate(batches)
    agreed = offline_agreed(iris, served, shadow, x)
    assert 0.9 * len(x) < agreed < len(x)  # the same classes, two models: most rows agree
    assert series.get(m.SHADOW_ERRORS, 0) == 0, server.output()
    assert series[m.SHADOW_REQUESTS] == REQUESTS
    assert series[m.SHADOW_ROWS] == len(x)
    assert series[m.SHADOW_AGREED] == agreed  # by name: 0
    assert series[m.SHADOW_BY_INDEX] == len(x)  # and /metrics says how they were matched
    assert m.SHADOW_UNMATCHED not in series
    logged = server.output()  # the replay says so once, with the pairs
    assert f"shadow {shadow} of iris:{served}: versions {served} and {shadow} share no" in logged
    assert "agreement matches their classes by class index" in logged


class Callers:
    """One caller thread sending the same rows in every request until stopped, so any window
    of copies agrees on the same share of rows as the rows themselves."""

    def __init__(self, server: ServeProcess, x: np.ndarray) -> None:
        self.server, self.body = server, {"inputs": x.tolist()}
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.base, headers=HEADERS, timeout=10) as client:
            while not self.stop.wait(0.005):
                answer = client.post("/models/iris/predict", json=self.body)
                self.statuses.append(answer.status_code)


def rollout(iris: Iris, server: ServeProcess, version: str, x: np.ndarray) -> RolloutRecord:
    """`aiaas rollout iris VERSION --min-agreement 0.9` from version 1, callers sending `x`."""
    iris.registry.set_alias("iris", "production", "1")
    warm(iris, server, version, x)
    command = [
        sys.executable, "-m", "infra.cli.main", "--store", str(iris.store), "rollout", "iris",
        version, "--steps", "50,100", "--bake", f"{BAKE_S}s", "--max-error-rate", "0.01",
        "--min-requests", "20", "--min-agreement", "0.9", "--metrics", f"{server.base}/metrics",
        "--token", TOKEN,
    ]  # fmt: skip
    callers = Callers(server, x)
    callers.thread.start()
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=MAX_SECONDS, check=False
        )
    finally:
        callers.stop.set()
        callers.thread.join(MAX_SECONDS)
    record = RolloutBook(LocalStore(iris.store)).require("iris", "production")
    assert (done.returncode, record.state.value) == (0, "succeeded"), done.stdout + done.stderr
    assert callers.statuses and set(callers.statuses) == {200}
    return record


def warm(iris: Iris, server: ServeProcess, version: str, x: np.ndarray) -> None:
    """`version` ready in both processes before the rollout's first bake: its session in the
    server (a request to it by version) and the shadow replay process, which starts on its
    first copy at the lowest CPU priority (SCHED_IDLE) and loads its own session. Cold, on a
    loaded host (2 cores, other tests beside) it once took 3.4 s to start, over twice this
    test's 1.5 s bake: the shadow stage then rolled a healthy candidate back as answering none
    of its copies, which says nothing of the classes this test is about. The copies sent here
    carry `x` too, so any still replayed in the rollout's window agree as the callers' do."""
    body = {"inputs": x.tolist()}
    with httpx.Client(base_url=server.base, headers=HEADERS, timeout=30) as client:
        answer = client.post(f"/models/iris/versions/{version}/predict", json=body)
        assert answer.status_code == 200, answer.text
        before = replayed(client, version)
        iris.registry.set_shadow("iris", "production", version, 1.0)
        try:
            deadline = time.monotonic() + MAX_SECONDS
            while replayed(client, version) == before:
                assert time.monotonic() < deadline, f"no copy replayed\n{server.output()}"
                assert client.post("/models/iris/predict", json=body).status_code == 200
                time.sleep(0.1)
        finally:
            iris.registry.set_shadow("iris", "production", None)


def replayed(client: httpx.Client, shadow: str) -> float:
    """Copies of iris:1's requests that `shadow` answered or failed on, so far."""
    found = 0.0
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            pair = tuple(sample.labels.get(k) for k in ("model", "version", "shadow_version"))
            counted = sample.name in (m.SHADOW_REQUESTS, m.SHADOW_ERRORS)
            if counted and pair == ("iris", "1", shadow):
                found += sample.value
    return found


def status(iris: Iris) -> str:
    command = [sys.executable, "-m", "infra.cli.main", "--store", str(iris.store)]
    return subprocess.run(
        [*command, "rollout", "status", "iris"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip


def test_a_rollout_judges_agreement_by_class_index_and_rolls_out_a_good_candidate(
    iris: Iris, server: ServeProcess
) -> None:
    x = rows(5, 40)
    agreed = offline_agreed(iris, "1", "2", x)
    assert 0.9 < agreed / len(x) < 1.0
    record = rollout(iris, server, "2", x)
    events = [(e["event"], e["message"]) for e in record.log]
    assert [event for event, _ in events] == ["started", "step", "step", "step", "succeeded"]
    pairs = "('setosa' = '0', 'versicolor' = '1', 'virginica' = '2')"
    assert f"agreement matches their classes by class index {pairs}" in events[0][1]
    assert events[1][1].startswith("shadowing 2")
    # The shadow stage was judged on the rows' agreement by class index (each copy the same
    # rows: the rollout's window agrees on exactly the offline share).
    assert events[2][1].startswith("2 at 50% (the shadow stage baked within every limit: ")
    assert f"agreement {agreed / len(x):.3f} (" in events[2][1]
    assert "rows, classes matched by class index)" in events[2][1]
    assert pairs in status(iris)


def test_a_rollout_whose_classes_cannot_be_matched_says_so_and_does_not_roll_back(
    iris: Iris, server: ServeProcess
) -> None:
    """Three named classes against two numbered ones: nothing says which is which. Shadowed,
    every copy failed (scores of another shape) and the candidate was rolled back."""
    record = rollout(iris, server, "3", rows(8, 40))
    events = [(e["event"], e["message"]) for e in record.log]
    assert [event for event, _ in events] == ["started", "step", "step", "succeeded"]
    started = events[0][1]
    assert "; no shadow stage: versions 1 and 3 share no class name and have 3 and 2" in started
    assert "--min-agreement 0.9 is not judged" in started
    assert events[1][1].startswith("3 at 50% (started)")
    assert "--min-agreement 0.9 is not judged" in status(iris)
    target = iris.registry.alias_target("iris", "production")
    assert target is not None and target.shadow is None
