"""A canary or shadow set by hand is held to what a rollout's start holds its candidate to.

`aiaas promote m 2 --weight 0.3` (and the control plane's weighted PUT) of a version reading 5
features where production reads 4 was taken: ~30% of the callers got a 422, a caller's error
that no error rate or 5xx alarm counts; `aiaas shadow m 2` too, every copy failing. And a
rollout's `--min-agreement` on regressors, which give no labels to agree on, was skipped
without a word: a candidate ~1000 off its baseline went to 100%. The real CLI and control
plane on a real directory store and real ONNX models."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.errors import InvalidInput
from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory

MOVED = "version 2 of m does not take the requests 1 takes (its input 'x' takes shape [-1, 5], not [-1, 4])"


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """m:1 reads 4 features, m:2 five, m:3 four; production on 1."""
    registry = Registry(LocalStore(tmp_path / "store"))
    for version, features in (("1", 4), ("2", 5), ("3", 4)):
        path = onnx_factory.linear_classifier(tmp_path / f"{version}.onnx", features=features)
        manifest = onnx_factory.manifest_for(path, "m", version, labels=("a", "b", "c"))
        registry.publish(manifest, path)
    registry.set_alias("m", "production", "1")
    return registry


def _cli(registry: Registry, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--store", registry.store.uri, *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [("promote", "m", "2", "--weight", "0.3"), ("shadow", "m", "2", "--sample", "0.5")],
)
def test_a_canary_or_shadow_of_other_inputs_is_refused_and_nothing_moves(
    registry: Registry, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, err = _cli(registry, capsys, *argv)
    assert code == 1 and MOVED in err and len(err.splitlines()) == 1, err
    assert registry.alias_target("m", "production").describe() == "1"  # type: ignore[union-attr]
    # The same inputs: taken, as before.
    code, err = _cli(registry, capsys, argv[0], "m", "3", *argv[3:])
    assert code == 0, err
    # A full switch is no canary: the callers all get the version they asked the alias for.
    code, err = _cli(registry, capsys, "promote", "m", "2", "--alias", "staging")
    assert code == 0, err


def test_the_control_planes_weighted_put_is_refused_the_same(registry: Registry) -> None:
    client = TestClient(create_app(registry.store))
    answer = client.put(
        "/control/models/m/aliases/production", json={"weights": {"1": 0.7, "2": 0.3}}
    )
    assert answer.status_code == 422 and MOVED in answer.json()["error"], answer.text
    assert registry.alias_target("m", "production").describe() == "1"  # type: ignore[union-attr]


def test_min_agreement_on_a_regressor_is_refused_at_start(tmp_path: Path) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        path = onnx_factory.linear_classifier(tmp_path / f"{version}.onnx", seed=int(version))
        registry.publish(onnx_factory.manifest_for(path, "r", version), path)  # no labels
    registry.set_alias("r", "production", "1")
    engine = RolloutEngine(registry, lambda: "")  # type: ignore[arg-type]
    plan = RolloutPlan(steps=(0.1, 1.0), bake_s=60.0, max_error_rate=0.01, min_agreement=0.99)
    with pytest.raises(InvalidInput, match="r:1 answers values, not classes: leave it out"):
        engine.start("r", "2", plan, alias="production", actor="ops")
    assert registry.alias_target("r", "production").describe() == "1"  # type: ignore[union-attr]
    record = engine.book.get("r", "production")
    assert record is None or not record.running


def test_a_kept_shadow_that_cannot_take_the_new_main_versions_requests_ends_with_a_warning(
    registry: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A promote or rollback keeps the alias's shadow: shadow 3 (4 features) kept on main 2 (5)
    # failed every copy, with no word. The move is made (a promote or a rollback is never
    # refused for a shadow), the shadow ended, and a warning says why.
    path = onnx_factory.linear_classifier(tmp_path / "4.onnx", seed=4)
    registry.publish(onnx_factory.manifest_for(path, "m", "4", labels=("a", "b", "c")), path)
    assert _cli(registry, capsys, "shadow", "m", "3", "--sample", "0.5")[0] == 0

    def serving() -> str:
        return registry.alias_target("m", "production").describe()  # type: ignore[union-attr]

    assert _cli(registry, capsys, "promote", "m", "4")[0] == 0  # 4 takes 4 features: kept
    assert serving() == "4, shadow 3 (50% sampled)"
    assert _cli(registry, capsys, "rollback", "m")[0] == 0
    assert serving() == "1, shadow 3 (50% sampled)"
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    code, err = _cli(registry, capsys, "promote", "m", "2")
    assert (code, serving()) == (0, "2"), err
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [
        "m: shadow 3 ended: it does not take the requests 2 takes (its input 'x' takes shape "
        "[-1, 4], not [-1, 5]), so every copy would fail; `aiaas shadow m VERSION` shadows one "
        "that does"
    ]
