"""`aiaas pull`: a version copied between a directory store and S3 (moto's server on
loopback), verified like every file of a version; a corrupted source is refused."""

from __future__ import annotations

import os
import signal
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.runtime.aliases import AliasTarget
from functions.runtime.cache import ArtifactCache, sha256_file
from functions.runtime.manifest import ArtifactFile
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli import row_progress
from infra.cli.row_progress import BYTES
from tests import onnx_factory
from tests.infra.test_cli_registry import fails, run
from tests.publishing import flip_stored_model_byte, publish_linear


@pytest.mark.parametrize(("source_kind", "target_kind"), [("s3", "local"), ("local", "s3")])
def test_pull_copies_a_version_between_stores(
    capsys: pytest.CaptureFixture[str],
    local_store: LocalStore,
    s3_store: S3Store,
    tmp_path: Path,
    source_kind: str,
    target_kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stores: dict[str, ObjectStore] = {"local": local_store, "s3": s3_store}
    source, target = stores[source_kind], stores[target_kind]
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    assert run(capsys, source, "publish", str(path), "--name", "m", "--alias", "production")[0] == 0
    source.put_bytes("models/m/versions/1/card/notes.md", b"# m\n")
    monkeypatch.setattr(row_progress, "SHOW_AFTER_S", 0.0)  # as if a big model's pull
    code, out, err = run(capsys, target, "pull", "m@production", "--from", source.uri)
    assert code == 0
    assert out == (f"pulled m:1 from {source.uri} into {target.uri}\nm@production -> 1\n")
    # On stderr, the bytes received (every file of the version), then those sent.
    received, sent = (line for line in err.splitlines() if "(100%)" in line)
    size = sum(source.head(key).size for key in source.list_keys("models/m/versions/1"))
    assert received.startswith(f"m:1: {BYTES.count(size)} of {BYTES.count(size)} received (100%)")
    assert " sent (100%), " in sent
    pulled = Registry(target)
    # The same version, and a file set beside it by hand (unlisted in the source) is now
    # listed with its sha256: the target's copy is verified like every file of a version.
    copied = pulled.resolve("m@production")
    card = Registry(source).resolve("m:1").files  # publish's card, listed
    assert replace(copied, files=()) == replace(Registry(source).resolve("m:1"), files=())
    assert copied.files == (*card, ArtifactFile("card/notes.md", 4, copied.files[-1].sha256,
                                                "extra"))  # fmt: skip
    assert target.get_bytes("models/m/versions/1/card/notes.md") == b"# m\n"
    assert sha256_file(
        ArtifactCache(target, tmp_path / "c").fetch(pulled.resolve("m"))
    ) == sha256_file(path)
    code, out, _ = run(capsys, target, "pull", "m", "--from", source.uri, "--alias", "staging")
    assert out == f"m:1 is already in {target.uri}\nm@staging -> 1\n"


def test_pull_refuses_a_corrupted_source(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, s3_store: S3Store, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    assert run(capsys, s3_store, "publish", str(path), "--name", "m")[0] == 0
    flip_stored_model_byte(s3_store, "m", "1")
    err = fails(capsys, local_store, "pull", "m:1", "--from", s3_store.uri)
    digest = sha256_file(path)
    assert err.startswith(
        f"aiaas pull: error: m:1 in {s3_store.uri} is not as its manifest says, so nothing was "
        "copied: model.onnx has sha256 "
    )  # it said only "fails its sha256 check; not copied": which file, what to do?
    assert f"; its manifest says {digest} ({path.stat().st_size} bytes)" in err
    assert err.endswith(
        "(the object was changed in the store after it was published: put the published file "
        "back (a versioned bucket keeps it), or publish the model again as a new version)"
    )
    assert list(local_store.list_keys("models")) == []


@pytest.mark.parametrize(
    ("other", "differs"),
    [
        (["--labels", "a,b,c"], "model.onnx has sha256 "),  # other bytes
        (["--labels", "x,y,z"], "the manifests differ (labels, "),  # the same bytes, relabelled
    ],
)
def test_pull_refuses_a_version_here_that_is_another_model(
    capsys: pytest.CaptureFixture[str],
    local_store: LocalStore,
    tmp_path: Path,
    other: list[str],
    differs: str,
) -> None:
    """An edge store whose m:1 is another model than the source's m:1 (published there on its
    own): the pull said "already in" and pointed production at the wrong model, exit 0."""
    source = LocalStore(tmp_path / "source")
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    publish = ["publish", str(path), "--name", "m", "--labels", "a,b,c"]
    assert run(capsys, source, *publish, "--alias", "production")[0] == 0
    mine = path if differs.startswith("the manifests") else tmp_path / "mine.onnx"
    onnx_factory.linear_classifier(tmp_path / "mine.onnx", seed=1)
    assert run(capsys, local_store, "publish", str(mine), "--name", "m", *other)[0] == 0
    held = Registry(local_store).resolve("m:1")
    err = fails(capsys, local_store, "pull", "m@production", "--from", source.uri)
    assert err.startswith(f"aiaas pull: error: m:1 in {local_store.uri} is another model than ")
    assert differs in err
    assert err.endswith("nothing was copied and no alias moved: pull into another store, "
                        "or publish the model here as a new version")  # fmt: skip
    assert Registry(local_store).alias("m", "production") is None
    assert Registry(local_store).resolve("m:1") == held


def test_pull_of_a_version_published_here_from_the_same_file_is_already_in(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, tmp_path: Path
) -> None:
    """Each publish writes its own publish_id: the same file published as m:1 in both stores
    is still the same model, so a pull finds it here and only moves the alias."""
    source = LocalStore(tmp_path / "source")
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    for store in (source, local_store):
        assert run(capsys, store, "publish", str(path), "--name", "m")[0] == 0
    ids = {Registry(store).resolve("m:1").publish_id for store in (source, local_store)}
    assert len(ids) == 2
    code, out, _ = run(capsys, local_store, "pull", "m:1", "--from", source.uri, "--alias", "p")
    assert (code, out) == (0, f"m:1 is already in {local_store.uri}\nm@p -> 1\n")


def test_a_pull_stopped_by_sigterm_leaves_nothing_in_tmpdir(
    capsys: pytest.CaptureFixture[str],
    local_store: LocalStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`kill` (SIGTERM) mid-download: it ended the process where it stood, leaving the whole
    version in TMPDIR (gigabytes for a large model, at every retry). Now it unwinds as Ctrl-C
    does: the folder goes, exit 143, and nothing is published."""
    source = LocalStore(tmp_path / "source")
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    assert run(capsys, source, "publish", str(path), "--name", "m")[0] == 0
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))  # what TMPDIR sets
    download = LocalStore.download_file

    def killed_midway(self: LocalStore, key: str, *args: Any, **kwargs: Any) -> None:
        download(self, key, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # the first file is in TMPDIR

    def default_action(signum: int, frame: object) -> None:  # stands in for SIG_DFL's death
        raise AssertionError("SIGTERM ended the pull where it stood")

    monkeypatch.setattr(LocalStore, "download_file", killed_midway)
    before = signal.signal(signal.SIGTERM, default_action)
    try:
        code, out, err = run(capsys, local_store, "pull", "m", "--from", source.uri)
        assert signal.getsignal(signal.SIGTERM) is default_action  # put back as it was
    finally:
        signal.signal(signal.SIGTERM, before)
    assert (code, out, err) == (143, "", "aiaas pull: interrupted (stopped by SIGTERM)\n")
    assert list(tmpdir.iterdir()) == []
    assert list(local_store.list_keys("models")) == []


def test_pulling_again_brings_the_baseline_added_since(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, tmp_path: Path
) -> None:
    """Pulled to the edge, then baselined at the source: pulling again said "already in" and
    left the edge with no baseline, so `aiaas monitor` there asked for training data it lacks."""
    source = LocalStore(tmp_path / "source")
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    assert run(capsys, source, "publish", str(path), "--name", "m")[0] == 0
    assert run(capsys, local_store, "pull", "m:1", "--from", source.uri)[0] == 0
    rows = tmp_path / "train.npy"
    np.save(rows, np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32))
    assert run(capsys, source, "baseline", "m:1", str(rows))[0] == 0
    code, out, _ = run(capsys, local_store, "pull", "m:1", "--from", source.uri)
    added = "background.json, drift_baseline.json"
    assert (code, out) == (
        0, f"m:1 is already in {local_store.uri}; copied what `aiaas baseline` added since: {added}\n"
    )  # fmt: skip
    for name in ("background.json", "drift_baseline.json"):
        key = f"models/m/versions/1/{name}"
        assert local_store.get_bytes(key) == source.get_bytes(key)
    code, out, _ = run(capsys, local_store, "pull", "m:1", "--from", source.uri)
    assert (code, out) == (0, f"m:1 is already in {local_store.uri}\n")
    code, out, _ = run(capsys, local_store, "monitor", "m:1", "--no-png")
    assert code == 0 and out.startswith(
        "m:1: 0 rows served in the last 1h (0 snapshots) against 40"
    )


@pytest.mark.parametrize("damage", ["changed", "gone"])
def test_pull_names_the_source_of_a_damaged_weights_file(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, tmp_path: Path, damage: str
) -> None:
    """A source whose external data file was changed or lost: refused, nothing copied, the
    source named (a lost one was blamed on pull's temp folder: "publish the model with all
    its data files", advice for a publisher, not for someone pulling)."""
    model = onnx_factory.external_add(tmp_path / "export" / "e.onnx", "e.data", 8)
    (tmp_path / "export" / "e.data").write_bytes(bytes(32))
    source = LocalStore(tmp_path / "source")
    assert run(capsys, source, "publish", str(model), "--name", "e")[0] == 0
    data = Path(source.root) / "models/e/versions/1/e.data"
    if damage == "changed":
        data.write_bytes(b"\1" + bytes(31))
    else:
        data.unlink()
    err = fails(capsys, local_store, "pull", "e:1", "--from", source.uri)
    said = {
        "changed": "is not as its manifest says, so nothing was copied: e.data of e:1 has sha256 ",
        "gone": "lacks e.data, which its manifest lists; not copied",
    }
    assert err.startswith(f"aiaas pull: error: e:1 in {source.uri} {said[damage]}")
    assert list(local_store.list_keys("")) == []


def test_a_ref_the_source_lacks_names_the_source(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, tmp_path: Path
) -> None:
    """Two stores are in play: "model 'm' not found" alone sent users to look here (a --from
    with a typo in its path said just that)."""
    source = tmp_path / "sorce"
    err = fails(capsys, local_store, "pull", "m", "--from", str(source))
    assert err == f"aiaas pull: error: {source} (--from): model 'm' not found"


def test_pull_of_a_split_alias_says_what_it_did_not_carry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A pull copies one version: of `m@production` split 80/20 with a shadow it sets the alias
    here to the main version alone, so it says so (it had said only `m@production -> 1`)."""
    source, target = LocalStore(tmp_path / "a"), LocalStore(tmp_path / "b")
    there = Registry(source)
    for version in ("1", "2", "3"):
        publish_linear(there, tmp_path, "m", version)
    there.set_alias("m", "production", "1")
    there.set_alias_weights("m", "production", {"1": 0.8, "2": 0.2})
    there.set_shadow("m", "production", "3", 0.5)
    code, out, err = run(capsys, target, "pull", "m@production", "--from", source.uri)
    assert (code, out.splitlines()[-1]) == (0, "m@production -> 1")
    assert err == (
        f"note: m@production in {source.uri} is 1 (80%) + 2 (20%), shadow 3 (50% sampled); "
        "a pull copies one version, so here it serves 1 alone: pull the others and `aiaas "
        "promote` / `aiaas shadow` here to split it the same way (moving a whole store: "
        "docs/registry.md, Moving a store)\n"
    )
    assert Registry(target).alias_target("m", "production") == AliasTarget("1")


def test_pull_of_a_bare_name_through_a_split_production_says_so_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A bare NAME resolves through production; `pull m` and `pull m --alias production` of a
    split one dropped its split without the note `pull m@production` gives. A pinned version
    comes through no alias: no note."""
    source = LocalStore(tmp_path / "a")
    there = Registry(source)
    for version in ("1", "2"):
        publish_linear(there, tmp_path, "m", version)
    there.set_alias("m", "production", "1")
    there.set_alias_weights("m", "production", {"1": 0.7, "2": 0.3})
    for target, extra in (("b", ()), ("c", ("--alias", "production"))):
        code, _, err = run(capsys, LocalStore(tmp_path / target), "pull", "m", *extra,
                           "--from", source.uri)  # fmt: skip
        assert code == 0 and err.startswith(
            f"note: m@production in {source.uri} is 1 (70%) + 2 (30%); a pull copies one version"
        ), err
    code, _, err = run(capsys, LocalStore(tmp_path / "d"), "pull", "m:2", "--from", source.uri)
    assert (code, err) == (0, "")


def test_pull_of_a_bare_name_sets_production_here_as_it_was_resolved(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`pull m` copied the source's production version but set no alias here: an edge that
    held a newer version (pulled to try the candidate) went on serving that one as `m`. A
    bare NAME is now pulled as `m@production` is, alias and all, said on stdout."""
    source, target = LocalStore(tmp_path / "a"), LocalStore(tmp_path / "b")
    for version in ("1", "2"):
        publish_linear(Registry(source), tmp_path, "m", version)
    Registry(source).set_alias("m", "production", "1")
    assert run(capsys, target, "pull", "m:2", "--from", source.uri)[:2] == (
        0, f"pulled m:2 from {source.uri} into {target.uri}\n"
    )  # fmt: skip
    code, out, err = run(capsys, target, "pull", "m", "--from", source.uri)
    assert (code, out, err) == (
        0, f"pulled m:1 from {source.uri} into {target.uri}\nm@production -> 1\n", ""
    )  # fmt: skip
    assert Registry(target).resolve("m").version == "1"
    assert run(capsys, target, "show", "m")[1].startswith("m:1 @production")
    # Already here, production moved back by hand: a pull of `m` points it again, as
    # `pull m@production` does.
    Registry(target).set_alias("m", "production", "2")
    code, out, _ = run(capsys, target, "pull", "m", "--from", source.uri)
    assert (code, out) == (0, f"m:1 is already in {target.uri}\nm@production -> 1 (was 2)\n")
    # --alias still picks the alias set here instead.
    code, out, _ = run(capsys, target, "pull", "m", "--from", source.uri, "--alias", "edge")
    assert (code, out) == (0, f"m:1 is already in {target.uri}\nm@edge -> 1\n")
    assert Registry(target).alias("m", "production") == "1"


def test_pull_of_a_bare_name_without_production_says_what_serves_here(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A source with no production: a bare NAME is its newest version, and no alias is set
    here; when this store's `m` serves another version, a note says so and how to change it."""
    source, target = LocalStore(tmp_path / "a"), LocalStore(tmp_path / "b")
    for version in ("1", "2"):
        publish_linear(Registry(source), tmp_path, "m", version)
    code, _, _ = run(capsys, target, "pull", "m:1", "--from", source.uri, "--alias", "production")
    assert code == 0
    code, out, err = run(capsys, target, "pull", "m", "--from", source.uri)
    assert (code, out) == (0, f"pulled m:2 from {source.uri} into {target.uri}\n")
    assert err == (
        "note: m here serves 1 (its production alias), not the 2 pulled: `aiaas promote m 2` "
        "here, or pull with --alias production, to serve it as m\n"
    )
    assert Registry(target).alias("m", "production") == "1"
    code, out, err = run(capsys, LocalStore(tmp_path / "c"), "pull", "m", "--from", source.uri)
    assert (code, err) == (0, "")  # the newest there is the newest here: nothing to say
