"""Two prunes planned at once (functions/runtime/prune_log.py's claim), on both stores: each
version is deleted by one of them only, so a promote racing both can no longer end on a
version whose manifest one prune put back and whose files the other deleted."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from functions.runtime import manifest_pins, move_checked, prune_log
from functions.runtime.prune_log import prune_record
from functions.runtime.pruning import carry_out, plan_prune
from functions.runtime.registry import Registry
from tests.runtime.test_pruning import files_of, published


@contextmanager
def promote_checked_earlier(registry: Registry, version: str, digest: str) -> Iterator[None]:
    """A promote that read `version`'s manifest before a prune deleted it and writes its alias
    now; its own check after the write (is the manifest there?) comes once a prune put the
    manifest back, so it finds one: the slow caller's view, replayed at this moment."""
    key = f"models/m/versions/{version}/manifest.json"
    real_manifest, real_exists = registry.manifest, registry.store.exists
    real_check, real_digest = move_checked.check_move, manifest_pins.stored_digest
    # ... and so did its read of the manifest's digest, for the record (manifest_pins.py).
    manifest_pins.stored_digest = lambda *_a: digest
    registry.manifest = lambda *_a, **_k: None  # type: ignore[assignment,method-assign,return-value]
    registry.store.exists = lambda k: k == key or real_exists(k)  # type: ignore[method-assign]
    # Its check of the version's files (move_checked.py) came before the delete too.
    move_checked.check_move = lambda *_a, **_k: None
    try:
        yield
    finally:
        registry.manifest = real_manifest  # type: ignore[method-assign]
        registry.store.exists = real_exists  # type: ignore[method-assign]
        move_checked.check_move = real_check
        manifest_pins.stored_digest = real_digest


def test_a_promote_racing_two_prunes_keeps_its_version_whole(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prune A deletes 1's manifest; prune B, planned before, reads the aliases (none on 1);
    a promote onto 1 checked before A's delete writes now; A reads the aliases and puts 1's
    manifest back. B used to delete 1's files then: @staging on a version that could not load.
    Now A's record claims 1 and 2, and B leaves them to A."""
    published(registry, tmp_path, 3)
    digest = manifest_pins.manifest_digest(
        registry.store.get_bytes("models/m/versions/1/manifest.json")
    )
    plan_a, plan_b = plan_prune(registry, "m", keep=1), plan_prune(registry, "m", keep=1)
    real = registry.store.delete_many
    seen: dict[str, object] = {}

    def b_and_the_promote_meanwhile(keys: Sequence[str]) -> None:
        real(keys)
        if any(k.endswith("/1/manifest.json") for k in keys) and "b" not in seen:
            monkeypatch.setattr(registry.store, "delete_many", real)
            seen["b"] = carry_out(registry, plan_b, "b")
            with promote_checked_earlier(registry, "1", digest):
                registry.set_alias("m", "staging", "1", actor="bob")
            monkeypatch.setattr(registry.store, "delete_many", b_and_the_promote_meanwhile)

    monkeypatch.setattr(registry.store, "delete_many", b_and_the_promote_meanwhile)
    done_a = carry_out(registry, plan_a, "a")
    done_b = seen["b"]

    assert registry.resolve("m@staging").version == "1"
    assert len(files_of(registry.store, "1")) == 2  # model and manifest: it loads
    assert [d.version for d in done_a.delete] == ["2"]
    assert done_b.delete == ()  # type: ignore[attr-defined]
    why = done_b.kept["1"][0]  # type: ignore[attr-defined]
    assert why.startswith("another prune is deleting it (run ") and " by a, started " in why
    assert files_of(registry.store, "2") == []
    record = prune_record(registry.store, "m")
    assert record["pruned"] == ["2"]
    assert [h["deleted_by"] for h in record["history"]] == ["a"]  # B deleted nothing


def test_a_claim_lapses_so_a_killed_prune_is_finished_by_a_later_one(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published(registry, tmp_path, 3)
    real = registry.store.delete_many

    def killed_after_the_record(keys: Sequence[str]) -> None:
        raise KeyboardInterrupt  # recorded, nothing deleted yet

    monkeypatch.setattr(registry.store, "delete_many", killed_after_the_record)
    with pytest.raises(KeyboardInterrupt):
        carry_out(registry, plan_prune(registry, "m", keep=1), "a")
    monkeypatch.setattr(registry.store, "delete_many", real)

    soon = carry_out(registry, plan_prune(registry, "m", keep=1), "b")  # within CLAIM_S
    assert soon.delete == ()
    assert sorted(soon.kept) == ["1", "2", "3"] and soon.kept["1"][0].startswith("another prune")
    assert registry.versions("m") == ["1", "2", "3"]

    monkeypatch.setattr(prune_log, "CLAIM_S", 0.0)  # the killed run's claim has lapsed
    later = carry_out(registry, plan_prune(registry, "m", keep=1), "b")
    assert sorted(d.version for d in later.delete) == ["1", "2"]
    assert registry.versions("m") == ["3"]
    assert files_of(registry.store, "1") == files_of(registry.store, "2") == []
