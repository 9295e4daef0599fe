"""A publish killed before its manifest leaves a version folder that is no version (hunt_today5
finding 3): once a newer version was published, GET /v2/models/{name} named it for ever (a
pinned request to it 404s), and no prune removed it. Now a serving listing that found it
without a manifest leaves it out, and `aiaas prune` deletes it once nothing has written to it
for KILLED_AFTER_S, never a younger one (a publish may be running). Through the real CLI
and predict service, on a directory store and S3 (moto)."""

from __future__ import annotations

import json
import time
import types
from pathlib import Path

import pytest

from functions.runtime import killed_publishes
from functions.runtime.killed_publishes import KILLED_AFTER_S
from functions.runtime.pruning import carry_out, plan_prune
from functions.runtime.refs import manifest_key, model_key, number_key
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_version_listing_cost import MODEL, TTL, _ask, _service


def _publish(store: ObjectStore, path: Path, version: str) -> None:
    argv = ["publish", str(path), "--name", MODEL, "--version", version, "--no-progress"]
    assert main(["--store", store.uri, *argv]) == 0


def _prune(store: ObjectStore, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["--store", store.uri, "prune", MODEL, "--keep", "10", "--yes"]) == 0
    return capsys.readouterr().out


def _kill_publish(store: ObjectStore, version: str) -> list[str]:
    """What a publish killed between its files and its manifest leaves: the model, a card
    file, its number claim."""
    keys = [model_key(MODEL, version), f"models/{MODEL}/versions/{version}/card/README.md"]
    for key in keys:
        store.put_bytes(key, b"a publish killed before its manifest")
    store.put_bytes(number_key(MODEL, version), version.encode())
    return [*keys, number_key(MODEL, version)]


def _later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock of the abandoned-folder check, past KILLED_AFTER_S from now (S3 keeps
    the real LastModified: no file can be made older)."""
    later = time.time() + KILLED_AFTER_S + 5
    monkeypatch.setattr(killed_publishes, "time", types.SimpleNamespace(time=lambda: later))


def test_a_killed_publish_s_folder_is_not_named_and_prune_removes_it_once_abandoned(
    store: ObjectStore,
    classifier_onnx: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for version in ("1", "2", "3"):
        _publish(store, classifier_onnx, version)
    left = _kill_publish(store, "4")
    service = _service(store, cache_dir)
    assert _ask(service) == ("3", ["1", "2", "3"])  # 4 on top, without a manifest: skipped
    _publish(store, classifier_onnx, "5")
    time.sleep(TTL + 0.05)
    # was ["1", "2", "3", "4", "5"]: 4, below the newest, taken as a version unread
    assert _ask(service) == ("5", ["1", "2", "3", "5"])
    time.sleep(TTL + 0.05)
    assert _ask(service) == ("5", ["1", "2", "3", "5"])  # read again each TTL: still none

    out = _prune(store, capsys)  # written to just now: a publish may be running
    assert "4          no manifest, written to under 6 hours ago" in out, out
    assert all(store.exists(key) for key in left)

    _later(monkeypatch)
    out = _prune(store, capsys)
    assert "deleted    " in out and "3 file(s) of a publish killed before its manifest" in out
    assert not any(store.exists(key) for key in left)  # the number claim too
    assert store.list_dirs(f"models/{MODEL}/versions") == ["1", "2", "3", "5"]
    capsys.readouterr()
    assert main(["--store", store.uri, "prune", MODEL, "--keep", "10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["abandoned"] == {}  # nothing left to remove
    fresh = _service(store, tmp_cache(cache_dir))  # never saw 4 on top: nothing to name now
    assert _ask(fresh) == ("5", ["1", "2", "3", "5"])


def tmp_cache(cache_dir: Path) -> Path:
    return cache_dir.parent / f"{cache_dir.name}-fresh"


def test_a_folder_whose_manifest_lands_after_the_plan_is_kept(
    store: ObjectStore, classifier_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(store)
    _publish(store, classifier_onnx, "1")
    left = _kill_publish(store, "2")
    _later(monkeypatch)
    plan = plan_prune(registry, MODEL, keep=10)
    assert set(plan.abandoned) == {"2"}
    manifest = onnx_factory.manifest_for(classifier_onnx, MODEL, "2")  # the publish finished
    store.put_bytes(manifest_key(MODEL, "2"), manifest.to_json().encode())
    done = carry_out(registry, plan, "test")
    assert done.abandoned == {}
    assert all(store.exists(key) for key in left)


def test_three_killed_publishes_on_top_cost_one_listing_a_ttl_after_a_prune(
    store: ObjectStore,
    classifier_onnx: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _publish(store, classifier_onnx, "1")
    for version in ("2", "3", "4"):  # three CI publishes killed: every TTL walked every key
        _kill_publish(store, version)
    _later(monkeypatch)
    assert "3 folder(s) a killed publish left without a manifest" in _prune(store, capsys)
    assert store.list_dirs(f"models/{MODEL}/versions") == ["1"]
    assert _ask(_service(store, cache_dir)) == ("1", ["1"])
