"""Data capture under a running `aiaas serve`, over real HTTP, on a directory store and on S3
(moto's server on loopback): `aiaas capture` from another process turns it on within the alias
TTL, denied fields never reach the store, the control plane refuses bad settings with a 4xx
that says what to fix, and `aiaas capture export` writes rows that `aiaas batch` scores to the
very labels the function served."""

from __future__ import annotations

import csv
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.capture.reader import captured_lines
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectStore, open_store
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve import ROOT, TOKEN, ServeProcess
from tests.s3server import free_port

MODEL = "churn"
FEATURES = ("age", "income", "tenure", "visits")
PREDICT = f"/models/{MODEL}/predict"
CAPTURE = f"/control/models/{MODEL}/capture"
N = 60
TTL = 0.3  # seconds the function keeps the capture setting it read


@dataclasses.dataclass
class Setup:
    uri: str
    store: ObjectStore
    root: Path


@pytest.fixture(params=["local", "s3"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Setup:
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        uri = f"s3://{bucket}/registry"
    else:
        uri = str(tmp_path / "store")
    store = open_store(uri) if request.param == "s3" else LocalStore(uri)
    path = onnx_factory.linear_classifier(tmp_path / "churn.onnx", seed=3)
    manifest = onnx_factory.manifest_for(path, MODEL, "1", labels=("stay", "churn", "maybe"))
    Registry(store).publish(dataclasses.replace(manifest, features=FEATURES), path)
    return Setup(uri, store, tmp_path)


class ServeUri(ServeProcess):
    """`aiaas --store URI serve` (ServeProcess takes a directory; this, an S3 URI too)."""

    def __init__(self, uri: str, work: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = work / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "infra.cli.main", "--store", uri, "serve"]
        full_env = {
            **os.environ,
            "AIAAS_CACHE_DIR": str(work / "cache"),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **env,
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *args],
                cwd=ROOT,
                env=full_env,
                stdout=out,
                stderr=out,
            )


@pytest.fixture
def client(setup: Setup) -> Iterator[httpx.Client]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": str(TTL)}
    server = ServeUri(setup.uri, setup.root, env)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        server.wait_ready(headers)
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
            yield client
    finally:
        server.stop()


def aiaas(setup: Setup, *argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own, as a user runs it beside the server."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", setup.uri, *argv],
        cwd=ROOT,
        env={**os.environ, "AIAAS_CACHE_DIR": str(setup.root / "cli-cache")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclasses.dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    setup: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Done]:
    """The CLI's main in process, for what no server reads (a process each cost ~0.5 s)."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(setup.root / "cli-cache"))

    def run(*argv: str) -> Done:
        code = main(["--store", setup.uri, *argv])
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


def record(i: int) -> dict[str, object]:
    return {"age": i, "income": 1000 + i, "tenure": i % 7, "visits": 3, "email": f"u{i}@x.org"}


def capture_turned_on(setup: Setup, client: httpx.Client, timeout: float = 30) -> None:
    """Requests (age -1) until one is in the store: the function re-reads the setting in the
    background after its TTL, and the first line after a read is written at once. Waits for
    that, not for a guess at how long the read takes (0.5 s was too short on a loaded CI)."""
    deadline = time.monotonic() + timeout
    while not any(
        line["request"]["instances"][0]["age"] == -1 for line in captured_lines(setup.store, MODEL)
    ):
        assert time.monotonic() < deadline, f"capture not on within {timeout} s"
        assert client.post(PREDICT, json={"instances": [record(-1)]}).status_code == 200
        time.sleep(0.05)


def test_capture_over_http_from_cli_to_export_to_batch(setup: Setup, client: httpx.Client) -> None:
    assert client.post(PREDICT, json={"instances": [record(0)]}).status_code == 200
    done = aiaas(setup, "capture", MODEL, "--sample", "1", "--deny", "email,notes")
    assert (done.returncode, done.stdout) == (
        0,
        f"{MODEL}: capture 100% of answered requests, denied fields: email, notes\n"
        "running predict functions read the change within their AIAAS_ALIAS_TTL (60 s by "
        "default), at a request\n",
    )
    capture_turned_on(setup, client)
    served = []
    for i in range(N):
        answer = client.post(PREDICT, json={"instances": [record(i)], "notes": "private"})
        assert answer.status_code == 200, answer.text
        served.append(answer.json()["predictions"][0]["label"])
    time.sleep(1.1)
    client.post(PREDICT, json={"instances": [record(N)]})  # a second on: writes the lines held
    # ... beside the requests that follow: `aiaas serve` does not hold them for the write.
    want, deadline = [*range(N), N], time.monotonic() + 10
    while True:
        found = list(captured_lines(setup.store, MODEL))
        ages = [line["request"]["instances"][0]["age"] for line in found]
        if [a for a in ages if a != -1] == want or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert [a for a in ages if a != -1] == want
    raw = b"".join(setup.store.get_bytes(k) for k in setup.store.list_keys("capture"))
    assert b"@x.org" not in raw and b"private" not in raw and b"email" not in raw
    assert all(line["route"] == "predict" and line["version"] == "1" for line in found)

    out = setup.root / "captured.csv"
    done = aiaas(setup, "capture", "export", MODEL, "--since", "2000-01-01", "--out", str(out))
    assert done.returncode == 0, done.stderr
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:9] == [
        "time",
        "request_id",
        "version",
        *FEATURES,
        "served_label",
        "served_score",
    ]
    assert [r["served_label"] for r in rows if 0 <= int(r["age"]) < N] == served
    # aiaas batch scores the exported file as it is, to the labels the function served.
    done = aiaas(setup, "batch", MODEL, str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"succeeded: scored {len(rows)} of {len(rows)} rows" in done.stdout
    output = next(x for x in done.stdout.splitlines() if x.startswith("output:")).split()[1]
    text = setup.store.get_bytes(output.removeprefix(setup.uri + "/")).decode()
    scored = list(csv.DictReader(text.splitlines()))
    assert [r["pred_label"] for r in scored] == [r["served_label"] for r in rows]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_lines_held_at_a_stop_are_written(setup: Setup, workers: str) -> None:
    """A SIGTERM within the second the capture buffer holds its lines still writes them all:
    the server ends its process only after the exit handlers ran, with one worker and more."""
    done = aiaas(setup, "capture", MODEL, "--sample", "1")
    assert done.returncode == 0, done.stderr
    headers = {"Authorization": f"Bearer {TOKEN}"}
    server = ServeUri(setup.uri, setup.root, {"AIAAS_API_TOKEN": TOKEN}, "--workers", workers)
    try:
        server.wait_ready(headers)
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
            for i in range(5):
                answer = client.post(PREDICT, json={"instances": [record(i)]})
                assert answer.status_code == 200, answer.text
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0, server.output()
    finally:
        server.stop()
    ages = [line["request"]["instances"][0]["age"] for line in captured_lines(setup.store, MODEL)]
    assert sorted(ages) == list(range(5)), server.output()


def test_the_control_plane_sets_shows_and_refuses_bad_settings(
    setup: Setup, client: httpx.Client
) -> None:
    put = client.put(CAPTURE, json={"sample": 0.05, "deny": ["email"]})
    assert put.status_code == 200, put.text
    assert {k: put.json()[k] for k in ("model", "sample", "deny")} == {
        "model": MODEL,
        "sample": 0.05,
        "deny": ["email"],
    }
    assert client.get(CAPTURE).json()["sample"] == 0.05
    bad = client.put(CAPTURE, json={"sample": 1.5})
    assert (bad.status_code, bad.json()) == (
        400,
        {
            "error": "sample must be from 0 to 1 (0.05 captures 5% of the answered requests, 0 "
            "turns capture off); got 1.5"
        },
    )
    unknown = client.put("/control/models/nope/capture", json={"sample": 0.1})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "model 'nope' not found"})
    typo = client.put(CAPTURE, json={"sample": 0.1, "denied": ["email"]})
    assert typo.status_code == 422 and "denied" in typo.json()["error"]
    off = client.delete(CAPTURE)
    assert (off.status_code, off.json()["sample"], off.json()["deny"]) == (200, 0.0, ["email"])


def test_the_cli_refuses_bad_settings_with_a_clear_error(
    setup: Setup, cli: Callable[..., Done], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as usage:  # outside the flag's range: a usage error
        cli("capture", MODEL, "--sample", "2")
    assert usage.value.code == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert said.startswith("aiaas capture: error: argument --sample: sample must be from 0 to 1")
    done = cli("capture", "nope", "--sample", "0.1")
    assert (done.returncode, done.stderr) == (1, "aiaas capture: error: model 'nope' not found\n")
    done = cli("capture", "export", MODEL, "--out", str(setup.root / "x.parquet"))
    assert "export needs --out FILE.csv or FILE.jsonl" in done.stderr


def test_an_export_with_nothing_captured_says_so_and_writes_nothing(
    setup: Setup, cli: Callable[..., Done]
) -> None:
    # An empty file said "0 rows written" and then failed `aiaas batch` ("the first line must
    # be a header"): the user learnt nothing about why. Capture is off here.
    out = setup.root / "captured.csv"
    done = cli("capture", "export", MODEL, "--since", "2000-01-01", "--out", str(out))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"aiaas capture: error: nothing captured of {MODEL} since 2000-01-01, so nothing written; "
        f"`aiaas capture {MODEL}` shows whether capture is on (a predict function reads a "
        "change within the alias TTL)\n"
    )
    assert not out.exists()
