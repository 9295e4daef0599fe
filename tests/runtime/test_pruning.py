"""Pruning old versions (functions/runtime/pruning.py) on both stores: what stays and why, the
manifest first, a killed prune finished by the next, a version promoted during a prune put
back, a pruned name never reused, S3 deletes in batches of 1,000."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from functions.runtime.aliases import Shadow
from functions.runtime.manifest import utc_now
from functions.runtime.prune_log import prune_record
from functions.runtime.pruning import carry_out, plan_prune
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.record import RolloutBook, RolloutRecord
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from tests.publishing import error_of, publish_linear


def published(registry: Registry, tmp_path: Path, count: int) -> Registry:
    for version in range(1, count + 1):
        publish_linear(registry, tmp_path, "m", str(version), seed=version)
    return registry


def files_of(store: ObjectStore, version: str) -> list[str]:
    return list(store.list_keys(version_prefix("m", version)))


def test_the_latest_is_said_as_what_a_bare_name_serves_only_without_production(
    registry: Registry, tmp_path: Path
) -> None:
    """A bare name serves @production where it is set, else the newest version: the kept
    latest's reason said "what `m` alone serves" while `m` served @production's version."""
    published(registry, tmp_path, 3)
    plan = plan_prune(registry, "m", keep=1)
    assert plan.kept == {"3": ["latest (what `m` alone serves)", "one of the 1 newest"]}
    registry.set_alias("m", "production", "1", actor="ci")
    plan = plan_prune(registry, "m", keep=1)
    assert plan.kept["3"][0] == "latest (what `m` alone serves once @production is removed)"
    assert plan.kept["1"] == ["@production"]


def test_a_prune_keeps_every_version_an_alias_or_rollout_needs(
    registry: Registry, tmp_path: Path
) -> None:
    published(registry, tmp_path, 11)
    registry.set_alias("m", "production", "2", actor="ci")
    registry.set_alias("m", "production", "3", actor="ci")  # a rollback goes to 2
    registry.set_shadow("m", "production", "5", 0.5, actor="ci")
    registry.set_alias("m", "beta", "4", actor="ci")
    registry.set_alias("m", "beta", "8", weight=0.1, actor="ci")
    plan = RolloutPlan(steps=(0.5, 1.0), bake_s=60, max_error_rate=0.01)
    running = RolloutRecord(
        "r1", "m", "staging", "6", "7", plan, utc_now(), "ci", prior_shadow=Shadow("1", 0.2)
    )
    RolloutBook(registry.store).update("m", "staging", lambda _: running)

    done = carry_out(registry, plan_prune(registry, "m", keep=2), "alice")

    assert [d.version for d in done.delete] == ["9"]
    assert registry.versions("m") == [str(v) for v in (1, 2, 3, 4, 5, 6, 7, 8, 10, 11)]
    assert files_of(registry.store, "9") == []  # every file, not only the manifest
    assert done.kept == {
        "11": ["latest (what `m` alone serves once @production is removed)", "one of the 2 newest"],
        "10": ["one of the 2 newest"],
        "8": ["@beta canary (0.1)"],
        "7": ["rollout on @staging candidate"],
        "6": ["rollout on @staging baseline"],
        "5": ["@production shadow"],
        "4": ["@beta"],
        "3": ["@production"],
        "2": ["@production rollback target"],
        "1": ["rollout on @staging prior shadow"],
    }
    (run,) = prune_record(registry.store, "m")["history"]
    assert (run["deleted_by"], run["versions"], run["files"]) == ("alice", ["9"], 2)


def test_older_than_keeps_the_young(tmp_path: Path) -> None:
    registry = published(Registry(LocalStore(tmp_path / "store")), tmp_path, 3)
    later = datetime.now(UTC) + timedelta(days=10)  # as if ten days had passed
    assert plan_prune(registry, "m", keep=0, older_than_days=30, now=later).delete == ()
    old = plan_prune(registry, "m", keep=0, older_than_days=5, now=later)
    assert [d.version for d in old.delete] == ["1", "2"]  # 3: the latest


def test_a_killed_prune_leaves_no_half_version_and_the_next_finishes_it(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published(registry, tmp_path, 3)
    real = registry.store.delete_many
    calls: list[int] = []

    def killed_after_the_manifests(keys: Sequence[str]) -> None:
        calls.append(len(keys))
        if len(calls) > 1:
            raise KeyboardInterrupt  # Ctrl-C between the manifests and the files
        real(keys)

    monkeypatch.setattr(registry.store, "delete_many", killed_after_the_manifests)
    with pytest.raises(KeyboardInterrupt):
        carry_out(registry, plan_prune(registry, "m", keep=1), "ci")
    monkeypatch.setattr(registry.store, "delete_many", real)

    assert registry.versions("m") == ["3"]  # no half version listed, nor served
    gone = error_of(registry.resolve, "m:1")[1]  # a 404 naming the prune
    assert gone.startswith("version '1' of model 'm' was deleted (pruned;")
    assert files_of(registry.store, "1") == [version_prefix("m", "1") + "/model.onnx"]
    again = plan_prune(registry, "m", keep=1)
    assert again.delete == () and sorted(again.leftovers) == ["1", "2"]
    carry_out(registry, again, "ci")
    assert files_of(registry.store, "1") == files_of(registry.store, "2") == []
    assert plan_prune(registry, "m", keep=1).leftovers == {}


def test_a_version_promoted_while_its_manifest_goes_is_put_back_whole(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published(registry, tmp_path, 3)
    plan = plan_prune(registry, "m", keep=1)
    real = registry.store.delete_many

    def promoted_meanwhile(keys: Sequence[str]) -> None:
        if any(k.endswith("/1/manifest.json") for k in keys):
            registry.set_alias("m", "staging", "1", actor="bob")  # a promote races the prune
        real(keys)

    monkeypatch.setattr(registry.store, "delete_many", promoted_meanwhile)
    done = carry_out(registry, plan, "ci")
    assert [d.version for d in done.delete] == ["2"]
    assert registry.versions("m") == ["1", "3"]
    assert registry.resolve("m@staging").version == "1"
    assert len(files_of(registry.store, "1")) == 2
    record = prune_record(registry.store, "m")
    assert record["pruned"] == ["2"] and record["history"][0]["kept_after_all"] == ["1"]


def test_a_pruned_name_is_never_published_again(registry: Registry, tmp_path: Path) -> None:
    published(registry, tmp_path, 3)
    carry_out(registry, plan_prune(registry, "m", keep=1), "ci")
    status, message = error_of(publish_linear, registry, tmp_path, "m", "2", seed=9)
    assert status == 409 and message.startswith("m:2 was published and pruned")
    assert registry.next_version("m") == "4"
    carry_out(registry, plan_prune(registry, "m", keep=0), "ci")  # 3 stays: the latest
    assert registry.next_version("m") == "4"


def test_a_corrupt_alias_record_stops_the_prune(registry: Registry, tmp_path: Path) -> None:
    published(registry, tmp_path, 3)
    registry.store.put_bytes("models/m/aliases/production.json", b"{not json")
    status, message = error_of(plan_prune, registry, "m", 1)
    assert status == 503 and "alias 'production' of model 'm' has a corrupt record" in message
    assert registry.versions("m") == ["1", "2", "3"]


def test_s3_deletes_a_thousand_keys_a_request(
    s3_store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("a/1", "a/1500", "a/2400"):
        s3_store.put_bytes(key, b"x")
    requests: list[int] = []
    count: Callable[..., None] = lambda params, **_: requests.append(  # noqa: E731
        len(params["Delete"]["Objects"])
    )
    s3_store.client.meta.events.register("provide-client-params.s3.DeleteObjects", count)
    try:
        s3_store.delete_many([f"a/{i}" for i in range(2500)])  # missing keys: no error
    finally:
        s3_store.client.meta.events.unregister("provide-client-params.s3.DeleteObjects", count)
    assert requests == [1000, 1000, 500]
    assert list(s3_store.list_keys("a")) == []


def test_s3_names_a_key_it_could_not_delete(
    s3_store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = {"Errors": [{"Key": "p/a/1", "Code": "AccessDenied", "Message": "Access Denied"}]}
    monkeypatch.setattr(s3_store.client, "delete_objects", lambda **_: refused)
    status, message = error_of(s3_store.delete_many, ["a/1", "a/2"])
    assert status == 503
    assert message == "S3 did not delete 1 of 2 objects, e.g. 'p/a/1': AccessDenied Access Denied"


def test_a_promote_checked_before_a_prune_and_written_after_it_is_undone(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published(registry, tmp_path, 3)
    plan = plan_prune(registry, "m", keep=1)
    real = registry.store.put_bytes

    def pruned_meanwhile(key: str, data: bytes, **kw: object) -> object:
        if key.endswith("/aliases/staging.json"):  # 1 checked published, not yet pointed at
            monkeypatch.setattr(registry.store, "put_bytes", real)
            assert [d.version for d in carry_out(registry, plan, "ci").delete] == ["1", "2"]
        return real(key, data, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(registry.store, "put_bytes", pruned_meanwhile)
    status, message = error_of(registry.set_alias, "m", "staging", "1", actor="bob")
    assert status == 409 and "was deleted (`aiaas prune`) while" in message
    assert registry.alias_record("m", "staging") is None  # never left pointing at nothing
    assert registry.versions("m") == ["3"]


def test_a_rerun_keeps_the_files_of_a_version_an_alias_moved_onto_before_the_kill(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published(registry, tmp_path, 3)
    plan = plan_prune(registry, "m", keep=1)
    real = registry.store.delete_many

    def promoted_then_killed(keys: Sequence[str]) -> None:
        registry.set_alias("m", "staging", "1", actor="bob")  # checked 1 published: it was
        real(keys)
        raise KeyboardInterrupt  # kill -9 before the prune re-reads the aliases

    monkeypatch.setattr(registry.store, "delete_many", promoted_then_killed)
    with pytest.raises(KeyboardInterrupt):
        carry_out(registry, plan, "ci")
    monkeypatch.setattr(registry.store, "delete_many", real)

    again = plan_prune(registry, "m", keep=1)
    assert sorted(again.leftovers) == ["2"]
    assert again.kept["1"] == ["@staging", "its manifest is gone (a stopped prune): files kept"]
    carry_out(registry, again, "ci")
    assert files_of(registry.store, "1") == [version_prefix("m", "1") + "/model.onnx"]


def test_a_leftover_whose_manifest_another_prune_put_back_stays(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published(registry, tmp_path, 3)
    manifest = registry.store.get_bytes("models/m/versions/1/manifest.json")
    real = registry.store.delete_many

    def manifests_gone(keys: Sequence[str]) -> None:
        real(keys)
        raise KeyboardInterrupt  # prune A, mid-run: manifests deleted, files not yet

    monkeypatch.setattr(registry.store, "delete_many", manifests_gone)
    with pytest.raises(KeyboardInterrupt):
        carry_out(registry, plan_prune(registry, "m", keep=1), "a")
    monkeypatch.setattr(registry.store, "delete_many", real)
    second = plan_prune(registry, "m", keep=1)  # prune B sees 1 and 2 as leftovers
    registry.store.put_bytes("models/m/versions/1/manifest.json", manifest)  # A puts 1 back:
    registry.set_alias("m", "staging", "1", actor="bob")  # an alias moved onto it

    done = carry_out(registry, second, "b")
    assert sorted(done.leftovers) == ["2"]
    assert registry.resolve("m@staging").version == "1"
    assert len(files_of(registry.store, "1")) == 2


def test_a_version_s_files_its_manifest_does_not_list_count_in_its_size(
    registry: Registry, tmp_path: Path
) -> None:
    """A version published before manifests listed files (2026-11-30), or given a background
    by `aiaas baseline` later, holds files its manifest does not name: its prune deleted them
    all and said it freed only the model's bytes (0.8 kB for an 80 kB trained version)."""
    published(registry, tmp_path, 3)
    registry.store.put_bytes("models/m/versions/1/card/card.md", b"c" * 1000)
    registry.store.put_bytes("models/m/versions/1/background.json", b"b" * 500)
    listed = registry.manifest("m", "1").file.size + sum(
        f.size for f in registry.manifest("m", "1").files
    )
    plan = plan_prune(registry, "m", keep=2)
    assert [(d.version, d.size) for d in plan.delete] == [("1", listed + 1500)]
    done = carry_out(registry, plan, actor="ci")
    assert files_of(registry.store, "1") == []
    assert prune_record(registry.store, "m")["history"][-1]["bytes"] == listed + 1500
    assert done.delete[0].size == listed + 1500
