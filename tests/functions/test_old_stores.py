"""A store an older aiaas wrote keeps working: golden records as 629f44c (2026-11-23, the first
release), b2b31b7 (2026-11-30) and 60bb971 (2026-12-01) wrote them (tests/fixtures/old_stores,
copied from stores those releases filled with `aiaas train/publish/promote/shadow/capture/
rollout/batch`), read by today's registry, predict function, control plane and CLI.

The model files are not checked in: clf's is tests/onnx_factory.linear_classifier, which those
releases published (its sha256 is in their manifests)."""

from __future__ import annotations

import base64
import csv
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from functions.control.app import create_app
from functions.control.handler import _PathAsGiven
from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.drift.baseline import DriftBaseline
from functions.runtime.drift.report import read_window, total
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.local.gateway import GatewayRequest, build_event
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "old_stores"
REVS = ("629f44c", "b2b31b7", "60bb971")
# The weighted alias and the rollouts came with b2b31b7; 629f44c wrote plain pointers.
WEIGHTS = {"629f44c": None, "b2b31b7": {"1": 0.7, "2": 0.3}, "60bb971": {"1": 0.7, "2": 0.3}}


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each release's store in its own folder, with clf's model file beside its manifests."""
    found = {}
    for rev in REVS:
        root = tmp_path_factory.mktemp(rev)
        shutil.copytree(FIXTURES / rev, root / "store")
        for version in ("1", "2"):
            onnx_factory.linear_classifier(
                root / "store/models/clf/versions" / version / "model.onnx"
            )
        as_left(root / "store/batch/iris-logistic")
        found[rev] = root
    return found


def as_left(batch: Path) -> None:
    """The input's mtime as the run saw it: a directory store's etag is mtime and size, and
    git does not keep mtimes (the run's summary names the etag it scored)."""
    summary = orjson.loads((batch / "output/iris.csv.summary.json").read_bytes())
    mtime_ns = int(summary["etag"].split("-")[0], 16)
    os.utime(batch / "input/iris.csv", ns=(mtime_ns, mtime_ns))


def control(root: Path) -> Any:
    return _PathAsGiven(create_app(LocalStore(root / "store")), lifespan="off")


def get(handler: Any, path: str) -> tuple[int, Any]:
    event = build_event(GatewayRequest("GET", path, "", [], b""), "ANY", "/control/{proxy+}", {})
    answer = handler(event, None)
    body = answer["body"]
    data = base64.b64decode(body) if answer["isBase64Encoded"] else body.encode()
    kind = answer["headers"]["content-type"]
    return answer["statusCode"], orjson.loads(data) if "json" in kind else data.decode()


@pytest.mark.parametrize("rev", REVS)
def test_manifests_and_aliases_of_an_older_release_read_as_written(
    roots: dict[str, Path], rev: str
) -> None:
    registry = Registry(LocalStore(roots[rev] / "store"))
    assert registry.versions("clf") == ["1", "2"]
    manifest = registry.manifest("clf", "1")
    assert (manifest.labels, manifest.inputs[0].shape) == (("a", "b", "c"), (-1, 4))
    assert registry.aliases("clf") == {"production": "1", "staging": "2"}
    target = registry.alias_target("clf", "production")
    assert target is not None and target.weights() == WEIGHTS[rev]


@pytest.mark.parametrize("rev", REVS)
def test_the_predict_function_serves_an_older_release_by_alias_and_version(
    roots: dict[str, Path], rev: str
) -> None:
    store = LocalStore(roots[rev] / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, roots[rev] / "cache"))
    service = service_from_env({"AIAAS_MODEL": "clf"}, pool)
    body = '{"inputs": [[1, 2, 3, 4]]}'
    answers = [
        service.handle(http_event("POST", path, body))
        for path in (
            "/models/clf/predict",
            "/models/clf/versions/2/predict",
        )
    ]
    assert [a["statusCode"] for a in answers] == [200, 200]
    first, second = (body_of(a) for a in answers)
    assert first["version"] in ("1", "2") and second["version"] == "2"
    assert second["predictions"][0]["label"] == "c"  # what the old release answered too


@pytest.mark.parametrize("rev", REVS)
def test_the_control_plane_lists_an_older_release(roots: dict[str, Path], rev: str) -> None:
    handler = control(roots[rev])
    status, body = get(handler, "/control/models")
    assert status == 200
    assert {m["name"] for m in body["models"]} >= {"clf", "iris-logistic"}
    assert [m["problems"] for m in body["models"]] == [[]] * len(body["models"])
    status, alias = get(handler, "/control/models/clf/aliases/production")
    assert (status, alias["version"], alias["weights"]) == (200, "1", WEIGHTS[rev])
    status, job = get(handler, "/control/batch/iris-logistic/jobs/iris.csv")
    assert (status, job["status"], job["rows"]) == (200, "succeeded", 2)


@pytest.mark.parametrize("rev", ["b2b31b7", "60bb971"])
def test_rollouts_and_capture_of_an_older_release_read_as_written(
    roots: dict[str, Path], rev: str
) -> None:
    handler = control(roots[rev])
    status, running = get(handler, "/control/models/iris-logistic/rollouts/production")
    assert (status, running["state"], running["share"]) == (200, "running", 0.1)
    status, done = get(handler, "/control/models/diabetes-linear/rollouts/production")
    assert (status, done["state"], done["candidate"]) == (200, "succeeded", "2")
    status, capture = get(handler, "/control/models/iris-logistic/capture")
    assert (status, capture["sample"]) == (200, 1.0)


@pytest.mark.parametrize("rev", ["b2b31b7", "60bb971"])
def test_captures_an_older_release_wrote_export(
    roots: dict[str, Path], rev: str, tmp_path: Path
) -> None:
    out = tmp_path / "captured.csv"
    store = str(roots[rev] / "store")
    assert main(["--store", store, "capture", "export", "iris-logistic", "--out", str(out)]) == 0
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["version"], r["sepal_length"], r["served_label"]) for r in rows] == [
        ("1", "5.1", "setosa")
    ]


def test_a_card_from_before_versions_listed_their_files_is_refused_saying_why(
    roots: dict[str, Path],
) -> None:
    """629f44c's `aiaas train` wrote card/card.md but listed no files: not "no card"."""
    status, body = get(control(roots["629f44c"]), "/control/models/iris-logistic/versions/1/card")
    assert (status, body) == (
        404,
        {
            "error": "model iris-logistic:1 was published before manifests listed a version's "
            "files, so its model card has no sha256 to check and is not served here; "
            "`aiaas show iris-logistic:1` prints where it is in the store"
        },
    )
    status, card = get(control(roots["60bb971"]), "/control/models/clf/versions/1/card")
    assert status == 200 and card.startswith("# clf:1\n\nold-60bb971")


@pytest.mark.parametrize("rev", ["b2b31b7", "60bb971"])
def test_drift_counts_an_older_release_wrote_add_up_against_its_baseline(
    roots: dict[str, Path], rev: str
) -> None:
    """What `aiaas monitor` reads: the release's baseline and its served rows' snapshots."""
    store = LocalStore(roots[rev] / "store")
    baseline = DriftBaseline.from_json(
        store.get_bytes("models/iris-logistic/versions/1/drift_baseline.json")
    )
    (key,) = store.list_keys("monitoring/iris-logistic/1/")
    written = orjson.loads(store.get_bytes(key))
    docs = read_window(store, "iris-logistic", "1", written["start"], written["end"])
    window = total(baseline, docs)
    assert (window.snapshots, window.rows) == (1, written["rows"])
    assert window.counts.sum() == 4 * written["rows"]  # each of the 4 features binned once


def test_a_first_release_version_without_a_baseline_says_what_to_run(
    roots: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """629f44c stored no drift baseline: monitor names the command that adds one."""
    store = str(roots["629f44c"] / "store")
    assert main(["--store", store, "monitor", "iris-logistic:1", "--no-png"]) == 1
    assert capsys.readouterr().err == (
        "aiaas monitor: error: iris-logistic:1 has no drift baseline; add one with "
        "`aiaas baseline iris-logistic:1 DATA.csv` (its training data), or train it with "
        "`aiaas train`\n"
    )
