"""Store calls that must not grow with the number of models or versions: `aiaas models`,
`Registry.models` (what `aiaas serve` starts from), `aiaas publish`, a bare name's resolution.
Measured on moto with 300 models and one of 1,500 versions (see each test)."""

from __future__ import annotations

import collections
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from functions.runtime.registry import ModelRef, Registry, manifest_key
from functions.runtime.routed import RegistryWatch
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore
from infra.cli import publish_commands, registry_commands
from infra.cli.main import main
from tests import onnx_factory
from tests.publishing import publish_linear


class CountingStore:
    """A real directory store that counts the calls made to it, by method."""

    def __init__(self, inner: LocalStore) -> None:
        self.inner = inner
        self.calls: collections.Counter[str] = collections.Counter()

    def __getattr__(self, attr: str) -> Any:
        found = getattr(self.inner, attr)
        if not callable(found):
            return found

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[attr] += 1
            return found(*args, **kwargs)

        return counted


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, LocalStore]:
    """Stores of 2 and 8 models (one aliased, another with 3 versions), and a stray folder."""
    built = {}
    for count in (2, 8):
        root = tmp_path_factory.mktemp(f"models{count}")
        registry = Registry(LocalStore(root / "store"))
        for i in range(count):
            publish_linear(registry, root, f"m{i}", "1")
        for version in ("2", "3"):
            publish_linear(registry, root, "m1", version)
        registry.set_alias("m0", "production", "1")
        registry.store.put_bytes("models/half/versions/1/model.onnx", b"not yet published")
        built[count] = registry.store
    return built  # type: ignore[return-value]


def _listings(store: CountingStore) -> int:
    return store.calls["list_keys"] + store.calls["list_dirs"]


@pytest.mark.parametrize("count", [2, 8])
def test_models_lists_the_store_once_however_many_models(
    stores: dict[int, LocalStore], count: int
) -> None:
    store = CountingStore(stores[count])
    assert Registry(store).models() == [f"m{i}" for i in range(count)]  # type: ignore[arg-type]
    assert _listings(store) == 1  # was 1 + one a model
    assert store.calls["get_bytes"] == 0


@pytest.mark.parametrize("count", [2, 8])
@pytest.mark.parametrize("as_json", [False, True])
def test_aiaas_models_store_calls_do_not_grow_with_models(
    stores: dict[int, LocalStore],
    count: int,
    as_json: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = CountingStore(stores[count])
    monkeypatch.setattr(registry_commands, "open_store", lambda _uri: store)
    assert main(["models", *(["--json"] if as_json else [])]) == 0
    out = capsys.readouterr().out
    assert _listings(store) == 1  # was 1 + 3 a model (2 + 2 with --json)
    # the one alias record, read once: it was read twice (its version, then its split), 204
    # GETs for 102 aliases
    assert store.calls["get_bytes"] == 1
    if as_json:
        docs = {m["name"]: m for m in json.loads(out)["models"]}
        assert list(docs) == [f"m{i}" for i in range(count)]
        assert docs["m1"]["versions"] == ["1", "2", "3"]
        assert docs["m0"]["aliases"] == {"production": "1"}
    else:
        lines = out.splitlines()
        assert len(lines) == count
        assert lines[0].split() == ["m0", "1", "version(s),", "latest", "1", "@production=1"]
        assert lines[1].split()[:5] == ["m1", "3", "version(s),", "latest", "3"]


def test_a_foreign_file_among_aliases_is_still_reported(tmp_path: Path) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    publish_linear(registry, tmp_path, "m", "1")
    registry.store.put_bytes("models/m/aliases/notes.txt", b"hi")
    found, problems = registry.alias_report("m", ["models/m/aliases/notes.txt"])
    assert found == {}
    assert problems == ["models/m/aliases/notes.txt: not an alias record (ignored)"]


def _ci_versions(tmp_path: Path, count: int) -> LocalStore:
    """Model `ci` with `count` versions of one file: the first published, the others its
    manifest alone (what the commands measured here read)."""
    local = LocalStore(tmp_path / "store")
    first = publish_linear(Registry(local), tmp_path, "ci", "1", seed=1)
    for version in range(2, count + 1):
        twin = replace(first, version=str(version), created_at=first.created_at)
        local.put_bytes(manifest_key("ci", str(version)), twin.to_json().encode())
    return local


@pytest.mark.parametrize("count", [25, 50])
@pytest.mark.parametrize("as_json", [False, True])
def test_versions_last_reads_only_the_newest_manifests(
    tmp_path: Path,
    count: int,
    as_json: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`aiaas versions` reads every manifest (1,500 on S3 for 1,500 versions, 13 s on moto);
    `--last 5` reads five, however many there are."""
    store = CountingStore(_ci_versions(tmp_path, count))
    monkeypatch.setattr(registry_commands, "open_store", lambda _uri: store)
    assert main(["versions", "ci", "--last", "5", *(["--json"] if as_json else [])]) == 0
    out = capsys.readouterr().out
    newest = [str(v) for v in range(count - 4, count + 1)]
    if as_json:
        assert [v["version"] for v in json.loads(out)["versions"]] == newest
    else:
        assert [line.split()[0] for line in out.splitlines()] == newest
    reads = store.calls["get_bytes"] + store.calls["read_versioned"]
    assert 5 <= reads <= 5 + 3  # the five manifests; the prune and rollout records


@pytest.mark.parametrize("count", [25, 50])
def test_publish_reads_a_bounded_number_of_manifests(
    tmp_path: Path,
    count: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Publishing version N+1 compared its file with all N manifests, a GET each (1,500 on S3
    for a CI's 1,501st publish); now with the newest 20, where a duplicate is likeliest."""
    path = onnx_factory.linear_classifier(tmp_path / "again.onnx", seed=1)  # = every version's
    store = CountingStore(_ci_versions(tmp_path, count))
    monkeypatch.setattr(publish_commands, "open_store", lambda _uri: store)
    assert main(["publish", str(path), "--name", "ci", "--labels", "a,b,c", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == str(count + 1)
    assert doc["same_file_as"] == [str(v) for v in range(count - 19, count + 1)]
    # The newest 20 manifests, the prune record (twice), and the @production record (what the
    # bare name serves: here the newest, one of the 20, read once for the notes and the check).
    assert store.calls["get_bytes"] <= 20 + 3


@pytest.mark.parametrize("labels", [["--labels", "a,b,c"], []])
def test_publish_reads_each_manifest_once(
    tmp_path: Path,
    labels: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The renamed-output note (what the bare name serves), the unlabelled note (the newest
    version's labels: without --labels) and the same-file check each read the newest manifest:
    three GETs of it where one does."""
    path = onnx_factory.linear_classifier(tmp_path / "again.onnx", seed=1)
    local = _ci_versions(tmp_path, 25)
    keys: collections.Counter[str] = collections.Counter()
    read = local.get_bytes

    def get_bytes(key: str, *args: Any, **kwargs: Any) -> bytes:
        keys[key] += 1
        return read(key, *args, **kwargs)

    monkeypatch.setattr(local, "get_bytes", get_bytes)
    monkeypatch.setattr(publish_commands, "open_store", lambda _uri: local)
    assert main(["publish", str(path), "--name", "ci", *labels, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "26"
    manifests = {key: n for key, n in keys.items() if key.endswith("/manifest.json")}
    assert len(manifests) == 20 and set(manifests.values()) == {1}, manifests


def test_a_bare_name_on_s3_resolves_without_a_request_a_version(
    s3_store: S3Store, tmp_path: Path
) -> None:
    """S3 cannot stamp keys, so a bare name's watch is None; finding that out listed the
    versions and sent a HEAD for each (1,502 requests, 12 s at the cold start of a model of
    1,500 versions, and again at each re-resolution)."""
    registry = Registry(s3_store)
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, "m", version)
    store = CountingStore(s3_store)  # type: ignore[arg-type]
    assert RegistryWatch.of(Registry(store), ModelRef("m")) is None  # type: ignore[arg-type]
    assert store.calls["list_dirs"] + store.calls["exists"] + store.calls["head"] == 0
    assert store.calls["stamp"] == 1  # the production alias's: None, so nothing more


def test_a_bare_name_on_a_directory_still_watches_pending_versions(local_store: LocalStore) -> None:
    local_store.put_bytes("models/m/versions/1/model.onnx", b"being published")
    watch = RegistryWatch.of(Registry(local_store), ModelRef("m"))
    assert watch is not None and not watch.changed()
    local_store.put_bytes("models/m/versions/1/manifest.json", b"{}")
    assert watch.changed()


def test_a_model_without_its_default_alias_reads_the_alias_once(tmp_path: Path) -> None:
    """Resolving a bare name whose `production` alias is not there read that alias twice (the
    split's read, then `resolve`'s): 2,200 failed GETs at the start of `aiaas serve` over 1,100
    such models, and twice each alias TTL after."""
    local = LocalStore(tmp_path / "store")
    registry = Registry(local)
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "m", version)
    store = CountingStore(local)
    resolution = Registry(store).resolve_split(ModelRef("m"))  # type: ignore[arg-type]
    assert resolution.manifest.version == "2"
    assert store.calls["get_bytes"] == 2  # the alias (not there), then version 2's manifest
