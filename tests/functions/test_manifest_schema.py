"""Manifests across releases during a rolling deploy (hunt_upgrade 1, 2).

Every release before this rule reads a manifest whose `schema_version` is 1, ignores the
fields it does not know, and refuses any other version. A CatBoost-shaped model published with
`postprocessing.label_indexes` was served by a 12-02 function with its label output as class
indexes (0/1 for classes 3/7), silently, while the deploy rolled. A manifest that needs such a
field is now written as version 2 with `requires`, which older functions refuse (a 503), and
today's reader refuses a later version or requirement saying to upgrade, not "corrupt".

Golden records, never made at test time: tests/fixtures/old_stores/<rev>/ as f59690d4 (12-02)
and d0d17899 (12-05) published them, tests/fixtures/manifest_schema/ as this release publishes
(cat:1, skl:1) and as a later one might (cat:2 of schema 3, cat:3 requiring an unknown field).
cat's model file is tests/infra/test_publish_label_indexes.catboost_like([3, 7]) (its sha256
is in the manifests)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.manifest import ModelManifest
from functions.runtime.manifest_schema import READS_FIELDS, requirements
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.local.functions import LambdaContext, load_handler
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event
from tests.infra.test_publish_label_indexes import catboost_like

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NEW = FIXTURES / "manifest_schema"
OLD = FIXTURES / "old_stores"
ROWS = '{"inputs": [[-1.0], [3.0]]}'  # class 3, then class 7
UPGRADE = "published by a newer aiaas than this one: upgrade the functions"


def store_of(tmp_path: Path, source: Path) -> LocalStore:
    """A copy of a golden store, with cat's model file beside each of its manifests."""
    shutil.copytree(source, tmp_path / "store")
    for folder in (tmp_path / "store/models/cat/versions").iterdir():
        (folder / "model.onnx").write_bytes(catboost_like([3, 7]))
    return LocalStore(tmp_path / "store")


def answer(store: LocalStore, tmp_path: Path, path: str) -> tuple[int, Any]:
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    reply = service_from_env({"AIAAS_MODEL": "cat"}, pool).handle(http_event("POST", path, ROWS))
    return reply["statusCode"], body_of(reply)


def test_a_version_an_older_reader_would_answer_wrongly_is_published_as_schema_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cat.onnx").write_bytes(catboost_like([3, 7]))
    onnx_factory.linear_classifier(tmp_path / "lin.onnx")
    store = tmp_path / "store"
    said = {}
    for name in ("cat", "lin"):
        path = str(tmp_path / f"{name}.onnx")
        assert main(["--store", str(store), "publish", path, "--name", name]) == 0
        said[name] = capsys.readouterr().out
    assert (
        "note: its manifest requires label_indexes (schema_version 2): functions of aiaas "
        "before 2026-12-06 refuse it (503); upgrade them first"
    ) in said["cat"]
    assert "schema_version" not in said["lin"]
    cat = json.loads((store / "models/cat/versions/1/manifest.json").read_text())
    assert (cat["schema_version"], cat["requires"]) == (2, ["label_indexes"])
    assert cat["postprocessing"]["label_indexes"] is True
    lin = json.loads((store / "models/lin/versions/1/manifest.json").read_text())
    assert lin["schema_version"] == 1 and "requires" not in lin  # every release serves it
    status, body = answer(LocalStore(store), tmp_path, "/models/cat/predict")
    assert (status, body["outputs"]["label"]) == (200, [3, 7])


def test_each_field_an_older_reader_ignores_is_required() -> None:
    base = ModelManifest.from_json((NEW / "models/skl/versions/1/manifest.json").read_text())
    assert requirements(base) == ("missing",)
    city = replace(base.inputs[1], strip=True)
    stripped = replace(base, inputs=(base.inputs[0], city))
    assert requirements(stripped) == ("missing", "strip")
    plain = replace(base, inputs=(base.inputs[0], replace(city, missing=None, strip=False)))
    assert (requirements(plain), plain.to_dict()["schema_version"]) == ((), 1)
    assert "requires" not in plain.to_dict()
    spelled = replace(base, inputs=(base.inputs[0], replace(city, na_categories=("n/a",))))
    assert requirements(spelled) == ("missing", "strip", "na_categories")
    bare = replace(city, missing=None, strip=False, na_categories=("n/a",))
    cleared = replace(spelled, inputs=(base.inputs[0], bare))
    assert requirements(cleared) == ()  # aiaas train's: missing=None, its list no meaning
    assert "na_categories" not in cleared.to_dict()["inputs"][1]
    assert READS_FIELDS == ("label_indexes", "missing", "strip", "na_categories")


@pytest.mark.parametrize(
    ("golden", "reads_as", "written_back"),
    [
        (OLD / "f59690d4/models/cat/versions/1", (1, False), (1, None)),  # before label_indexes
        (OLD / "d0d17899/models/cat/versions/1", (1, True), (2, ["label_indexes"])),
        (OLD / "d0d17899/models/skl/versions/1", (1, "nan"), (2, ["missing"])),
        (NEW / "models/cat/versions/1", (2, True), (2, ["label_indexes"])),
        (NEW / "models/skl/versions/1", (2, "nan"), (2, ["missing"])),
    ],
)
def test_golden_manifests_of_each_format_read_and_are_written_back_by_the_rule(
    golden: Path, reads_as: tuple[int, object], written_back: tuple[int, list[str] | None]
) -> None:
    """What `aiaas pull` does with such a version: it is published again, by today's rule."""
    raw = json.loads((golden / "manifest.json").read_text())
    manifest = ModelManifest.from_dict(raw)
    post = manifest.postprocessing
    field = post.label_indexes if manifest.name == "cat" and post else manifest.inputs[1].missing
    assert (raw["schema_version"], field) == reads_as
    again = manifest.to_dict()
    assert (again["schema_version"], again.get("requires")) == written_back


@pytest.mark.parametrize("source", [NEW, OLD / "d0d17899"])
def test_a_version_that_requires_label_indexes_is_served_with_the_classes(
    tmp_path: Path, source: Path
) -> None:
    store = store_of(tmp_path, source)
    status, body = answer(store, tmp_path, "/models/cat/versions/1/predict")
    assert (status, body["outputs"]["label"]) == (200, [3, 7])
    assert [p["label"] for p in body["predictions"]] == ["3", "7"]


def test_a_version_of_a_newer_release_is_a_503_saying_to_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_of(tmp_path, NEW)
    for version in ("2", "3"):
        status, body = answer(store, tmp_path, f"/models/cat/versions/{version}/predict")
        assert (status, body) == (
            503,
            {
                "error": f"model cat:{version} was published by a newer aiaas than this "
                "function runs; upgrade the function"
            },
        )
    assert main(["--store", store.uri, "show", "cat:2"]) == 1
    err = capsys.readouterr().err
    assert "cannot be served by this aiaas: manifest field 'schema_version' is 3" in err
    assert UPGRADE in err and "corrupt" not in err
    assert main(["--store", store.uri, "show", "cat:3"]) == 1
    err = capsys.readouterr().err
    assert "'requires' names 'ragged_rows', which this runtime does not apply" in err
    assert UPGRADE in err
    assert main(["--store", store.uri, "versions", "cat"]) == 0
    listed = capsys.readouterr().out
    assert listed.count("published by a newer aiaas") == 2 and "corrupt" not in listed


@pytest.mark.parametrize(
    ("source", "shown"),
    [(OLD / "d0d17899", (1, None)), (NEW, (2, ["label_indexes"]))],
    ids=["published-under-1-by-12-05", "published-today"],
)
def test_a_version_s_schema_is_shown_as_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: Path, shown: tuple[int, object]
) -> None:
    """review_revsess 1: docs/registry.md names the control plane's GET of a version (and the
    store's manifest.json) as where its schema is read, to tell a version older functions
    refuse (2) from one they serve (1). cat:1 as 12-05 published it (label_indexes under 1,
    which older functions serve as indexes) was shown as 2, requires label_indexes: today's
    rule applied to it, not what the store holds. `aiaas show --json` alike."""
    store = store_of(tmp_path, source)
    stored = json.loads((tmp_path / "store/models/cat/versions/1/manifest.json").read_text())
    assert (stored["schema_version"], stored.get("requires")) == shown
    handler = load_handler("functions.control.handler.handler", {"AIAAS_STORE": store.uri})
    reply = handler(
        http_event("GET", "/control/models/cat/versions/1"), LambdaContext("ControlPlane")
    )
    assert reply["statusCode"] == 200, reply["body"]
    got = json.loads(reply["body"])
    assert (got["schema_version"], got.get("requires")) == shown
    assert main(["--store", store.uri, "show", "cat:1", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["schema_version"], got.get("requires")) == shown
    assert {k: v for k, v in got.items() if k not in ("schema_version", "requires")} == {
        k: v for k, v in stored.items() if k not in ("schema_version", "requires")
    }
