"""Weighted aliases in the registry: a split is a compare-and-swap like any move, kept in the
history, refused with a clear error when it cannot be served, and undone by a rollback.

Runs on both stores (a directory and S3 on moto's server), like the rest of the registry tests.
"""

from __future__ import annotations

import json
import math
from http import HTTPStatus
from pathlib import Path

import pytest

from functions.runtime.aliases import AliasTarget
from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import CorruptRecord
from functions.runtime.pool import ModelPool
from functions.runtime.pruning import carry_out, plan_removal
from functions.runtime.registry import ModelRef, Registry, alias_key
from functions.runtime.served import ServedModel
from tests.publishing import error_of, flip_stored_model_byte, publish_three, three_once


@pytest.fixture
def three(registry: Registry, tmp_path: Path) -> Registry:
    return publish_three(registry, tmp_path)


@pytest.fixture(scope="module", params=["local", "s3"])
def refusing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """`three` published once per store for the 30 tests whose call is refused (~1 s of moto
    a test): a refusal writes nothing, and each checks the alias is still on 1."""
    return three_once(request, tmp_path_factory)


def test_a_weight_splits_with_the_version_the_alias_points_at(three: Registry) -> None:
    record = three.set_alias("m", "production", "2", weight=0.1, actor="alice")
    stored = json.loads(three.store.get_bytes(alias_key("m", "production")))
    assert stored == record
    assert (record["version"], record["weights"]) == ("1", {"1": 0.9, "2": 0.1})
    assert record["updated_by"] == "alice"
    assert [(h["version"], h.get("weights")) for h in record["history"]] == [("1", None)]
    # Readers that know only `version` (resolve, batch) get the main version, never the canary.
    assert three.alias("m", "production") == "1"
    assert three.resolve("m").version == "1"
    split = three.resolve_split(ModelRef("m", alias="production"))
    assert split.manifest.version == "1" and split.canary is not None
    assert (split.canary.version, split.weight) == ("2", 0.1)
    assert three.resolve_split(ModelRef("m")).canary is not None  # the default alias too
    assert three.resolve_split(ModelRef("m", version="2")).canary is None


def test_changing_the_weight_and_promoting_fully_keep_every_step_in_the_history(
    three: Registry,
) -> None:
    three.set_alias("m", "production", "2", weight=0.1)
    three.set_alias("m", "production", "2", weight=0.5)
    record = three.set_alias("m", "production", "2")
    assert (record["version"], "weights" in record) == ("2", False)
    assert [(h["version"], h.get("weights")) for h in record["history"]] == [
        ("1", {"1": 0.5, "2": 0.5}),
        ("1", {"1": 0.9, "2": 0.1}),
        ("1", None),
    ]
    # Rolling back a full promotion goes to the version that was main before it.
    assert three.rollback("m", "production")["version"] == "1"


def test_rollback_of_a_split_sends_everything_back_to_its_main_version(three: Registry) -> None:
    three.set_alias("m", "production", "3", weight=0.25)
    record = three.rollback("m", "production", actor="oncall")
    assert (record["version"], record.get("weights")) == ("1", None)
    assert record["history"][0]["weights"] == {"1": 0.75, "3": 0.25}
    three.set_alias("m", "production", "3", weight=0.25)
    assert three.rollback("m", "production", to="3")["version"] == "3"  # or on to the canary


def test_a_rollback_to_a_release_pruned_during_a_split_names_where_else_to_go(
    three: Registry,
) -> None:
    """While 2 + 3 split, the rollback target is the split's end (2), so release 1 may be
    pruned; the rollback after the split's then said "point the deployment at an alias", the
    advice for pinned callers."""
    three.set_alias("m", "production", "2")
    three.set_alias("m", "production", "3", weight=0.1)
    done = carry_out(three, plan_removal(three, "m", "1"), "ops")
    assert [d.version for d in done.delete] == ["1"]
    back = three.rollback("m", "production")
    assert back["version"] == "2"  # the canary out
    # A minute on (a plain rollback of a rollback so recent is refused: hunt_races 6)
    back["updated_at"] = "2026-01-01T00:00:00Z"
    three.store.put_bytes(alias_key("m", "production"), json.dumps(back).encode())
    status, message = error_of(three.rollback, "m", "production")
    assert status == HTTPStatus.NOT_FOUND
    assert message == (
        "alias 'production' of model 'm' would roll back to version '1', which was deleted "
        "(`aiaas versions m` shows when), or promote a version"
    )


@pytest.mark.parametrize(
    "move",
    [
        lambda r: r.set_alias("m", "production", "1"),
        lambda r: r.set_alias("m", "production", "1", weight=0.2),
        lambda r: r.set_alias_weights("m", "production", {"1": 0.5, "3": 0.5}),
        lambda r: r.set_shadow("m", "production", "1", 0.5),
    ],
)
def test_an_alias_moved_onto_a_pruned_version_is_told_so_not_how_to_pin(
    three: Registry, move: object
) -> None:
    """`aiaas promote m 1` of a pruned 1 answered the pinned caller's advice, "point the
    deployment at an alias (@production)" (registry hunt)."""
    three.set_alias("m", "production", "2")
    three.set_alias("m", "production", "3")  # 2 is the rollback target: 1 may go
    carry_out(three, plan_removal(three, "m", "1"), "ops")
    status, message = error_of(move, three)
    assert (status, message) == (
        HTTPStatus.NOT_FOUND,
        "version '1' of model 'm' was deleted (pruned; `aiaas versions m` shows when): an alias "
        "points at a published version only",
    )


def test_explicit_weights(three: Registry) -> None:
    record = three.set_alias_weights("m", "production", {"3": 0.2, "1": 0.8})
    assert (record["version"], record["weights"]) == ("1", {"1": 0.8, "3": 0.2})
    # The main version stays the one the alias pointed at, even when it gets the smaller share.
    record = three.set_alias_weights("m", "production", {"1": 0.3, "3": 0.7})
    assert (record["version"], record["weights"]) == ("1", {"1": 0.3, "3": 0.7})
    # A new alias: the heavier version is the main one.
    record = three.set_alias_weights("m", "staging", {"2": 0.4, "3": 0.6})
    assert (record["version"], record["weights"]) == ("3", {"3": 0.6, "2": 0.4})
    assert three.set_alias_weights("m", "staging", {"2": 1})["version"] == "2"


@pytest.mark.parametrize("weight", [0, 1, 1.5, -0.1, math.nan, math.inf, 1e-7, 0.99999999999])
def test_a_weight_outside_0_to_1_is_refused(refusing: Registry, weight: float) -> None:
    status, message = error_of(refusing.set_alias, "m", "production", "2", weight=weight)
    assert status == HTTPStatus.BAD_REQUEST
    assert "weight must be from 1e-06 to 0.999999" in message
    assert refusing.alias_target("m", "production") == AliasTarget("1")


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"1": 0.5, "2": 0.3, "3": 0.2}, "at most 2 versions; got 3 (1, 2, 3)"),
        ({"1": 0.5, "2": 0.6}, "weights must add up to 1; these add up to 1.1"),
        ({"1": 0.5, "2": 0.5, "1 ": 0}, "at most 2 versions"),
        ({"1": 1.0, "2": 0.0}, "weight must be from 1e-06 to 0.999999"),
        ({"2": 0.5}, "a single version takes all the traffic: weight 1; got 0.5"),
        ({}, "weights names no version: name one at weight 1"),
        ({"../x": 1}, "version"),
    ],
)
def test_invalid_weights_are_refused(
    refusing: Registry, weights: dict[str, float], expected: str
) -> None:
    status, message = error_of(refusing.set_alias_weights, "m", "production", weights)
    assert status == HTTPStatus.BAD_REQUEST and expected in message
    assert refusing.alias_target("m", "production") == AliasTarget("1")


def test_an_unknown_version_is_not_found(three: Registry) -> None:
    status, message = error_of(three.set_alias, "m", "production", "9", weight=0.1)
    assert (status, message) == (HTTPStatus.NOT_FOUND, "version '9' of model 'm' not found")
    status, _ = error_of(three.set_alias_weights, "m", "production", {"1": 0.9, "9": 0.1})
    assert status == HTTPStatus.NOT_FOUND
    assert three.alias_target("m", "production") == AliasTarget("1")


def test_splits_that_cannot_be_made_are_conflicts(three: Registry) -> None:
    status, message = error_of(three.set_alias, "m", "staging", "2", weight=0.1)
    assert status == HTTPStatus.CONFLICT and "points at no version yet" in message
    status, message = error_of(three.set_alias, "m", "production", "1", weight=0.1)
    assert status == HTTPStatus.CONFLICT and "already points at version '1'" in message
    three.set_alias("m", "production", "2", weight=0.1)
    status, message = error_of(three.set_alias, "m", "production", "3", weight=0.1)
    assert status == HTTPStatus.CONFLICT
    assert message.endswith(
        "already splits traffic 1 (90%) + 2 (10%); an alias splits between at most 2 "
        "versions: promote one of them fully or roll back first"
    )


def test_a_stored_split_that_makes_no_sense_is_a_corrupt_record(three: Registry) -> None:
    record = {"version": "1", "weights": {"1": 0.5, "2": 0.2, "3": 0.3}}
    three.store.put_bytes(alias_key("m", "production"), json.dumps(record).encode())
    with pytest.raises(CorruptRecord, match="at most 2 versions"):
        three.resolve_split(ModelRef("m"))
    assert three.set_alias("m", "production", "2")["history"] == []  # promote repairs it


def test_a_canary_that_cannot_load_leaves_the_alias_unsplit_where_served(
    three: Registry, tmp_path: Path
) -> None:
    pool = ModelPool(three, ArtifactCache(three.store, tmp_path / "cache"))
    served = ServedModel(pool, "m@production", ttl=0)
    assert served.routed().canary is None
    three.set_alias("m", "production", "2", weight=0.5)
    flip_stored_model_byte(three.store, "m", "2")  # after the promote (which reads the files)
    assert [served.pick(lambda i=i: str(i)).manifest.version for i in range(50)] == ["1"] * 50
    assert served.warmer.wait(10)  # a warm server loads a new canary off the request path
    assert "does not match the manifest" in (served.last_error or "")
