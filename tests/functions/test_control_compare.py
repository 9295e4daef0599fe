"""`POST /control/models/{name}/compare` on the real app over both stores (a directory, S3 on
moto's server), and `aiaas compare` on the same files: the same report, errors as 4xx JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from infra.cli.main import main
from tests.publishing import module_store, publish_linear

KEY = "batch/m/input/held.csv"


@pytest.fixture
def client(store: ObjectStore, tmp_path: Path) -> TestClient:
    return compared(store, tmp_path)


@pytest.fixture(scope="module", params=["local", "s3"])
def refusing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> TestClient:
    """`client`, made once per store for the 18 refused compares (two publishes and an upload a
    test on moto): a refused compare writes nothing."""
    work = tmp_path_factory.mktemp("refused-compares")
    return compared(module_store(request, work), work)


def compared(store: ObjectStore, work: Path) -> TestClient:
    """m 1 and 2 published, and 60 labelled rows at KEY."""
    registry = Registry(store)
    for version in ("1", "2"):
        publish_linear(registry, work, "m", version, seed=int(version))
    x = np.random.default_rng(3).normal(size=(60, 4))
    lines = ["x_0,x_1,x_2,x_3,y"] + [
        ",".join(map(str, row)) + "," + "abc"[i % 3] for i, row in enumerate(x.tolist())
    ]
    store.put_bytes(KEY, ("\n".join(lines) + "\n").encode())
    return TestClient(create_app(store))


def test_the_control_plane_answers_the_report_the_cli_prints(
    client: TestClient, store: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    response = client.post(
        "/control/models/m/compare", json={"a": "1", "b": "2", "data": KEY, "label": "y"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows"] == {
        "compared": 60,
        "failed": 0,
        "truncated": False,
        "refused": {"a": 0, "b": 0, "both": 0},
    }
    assert sum(map(sum, report["confusion"]["matrix"])) == 60
    assert (
        main(
            [
                "--store",
                store.uri,
                "compare",
                "m",
                "1",
                "2",
                "--data",
                KEY,
                "--label",
                "y",
                "--json",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    for field in ("agreement", "metrics", "confusion", "max_abs_diff", "rows"):
        assert printed[field] == report[field]


def test_truncated_only_when_rows_were_left_out(
    client: TestClient, store: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = []
    # The file holds 60 rows: exactly, one fewer, more; 59.0 as a client's float sends 59
    # (was refused: "Input should be a valid integer").
    for max_rows in (60, 59, 1000, 59.0):
        body = {"a": "1", "b": "2", "data": KEY, "max_rows": max_rows}
        answer = client.post("/control/models/m/compare", json=body)
        assert answer.status_code == 200, answer.text
        rows.append(answer.json()["rows"])
    assert [(r["compared"], r["truncated"]) for r in rows] == [
        (60, False),
        (59, True),
        (60, False),
        (59, True),
    ]
    argv = ["--store", store.uri, "compare", "m", "1", "2", "--data", KEY, "--max-rows"]
    assert main([*argv, "60"]) == 0
    assert "60 rows compared, 0 not\n" in capsys.readouterr().out
    assert main([*argv, "59"]) == 0
    assert "59 rows compared, 0 not (stopped at --max-rows)\n" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"a": "1", "b": "9", "data": KEY}, 404, "version '9' of model 'm' not found"),
        (
            {"a": "1", "b": "2", "data": "models/m/versions/1/manifest.json"},
            400,
            "data must be a key under batch/m/ or capture/m/",
        ),
        ({"a": "1", "b": "2", "data": "batch/m/../other/x.csv"}, 400, "data must be a key under"),
        ({"a": "1", "b": "2", "data": "batch/m/input/none.csv"}, 404, "none.csv"),
        ({"a": "1", "b": "2", "data": KEY, "label": "zz"}, 400, "no column 'zz'"),
        ({"a": "1", "b": "2", "data": KEY, "max_rows": 10**9}, 422, "max_rows"),
        ({"a": "1", "b": "2", "data": KEY, "max_rows": 59.5}, 422, "max_rows"),
        ({"a": "1", "b": "2", "data": KEY, "max_rows": True}, 422, "max_rows"),
        ({"a": "1", "data": KEY}, 422, "b: Field required"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_what_to_fix(
    refusing: TestClient, body: dict[str, object], status: int, says: str
) -> None:
    response = refusing.post("/control/models/m/compare", json=body)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]


def test_the_cli_reads_a_local_file_and_draws_the_confusion_matrix(
    client: TestClient, store: ObjectStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "held.csv"
    local.write_bytes(store.get_bytes(KEY))
    png = tmp_path / "out" / "confusion.png"
    assert (
        main(
            [
                "--store",
                store.uri,
                "compare",
                "m",
                "1",
                "2",
                "--data",
                str(local),
                "--label",
                "y",
                "--png",
                str(png),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "60 rows compared, 0 not" in out and "accuracy" in out and "latency A (1): p50" in out
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 5000
    assert main(["--store", store.uri, "compare", "m", "1", "9", "--data", str(local)]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "aiaas compare: error: version '9' of model 'm' not found"
    )
