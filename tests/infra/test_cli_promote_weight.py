"""`aiaas promote MODEL VERSION --weight W`: a share of the alias's requests for VERSION, the
rest on the version it points at; shown by `versions` and `models`, ended by promote or rollback;
a weight it cannot serve is a one-line error and changes nothing."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_cli_registry import fails, run
from tests.publishing import module_store


@pytest.fixture
def iris(capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path) -> ObjectStore:
    return iris_models(capsys, store, tmp_path)


@pytest.fixture(scope="module", params=["local", "s3"])
def refusing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ObjectStore:
    """`iris`, published once per store for the 18 tests whose promote is refused (three CLI
    publishes a test): a refusal writes nothing, and each checks production is still on 1."""
    work = tmp_path_factory.mktemp("refused-promotes")
    store = module_store(request, work)
    for seed in (1, 2, 3):
        path = onnx_factory.linear_classifier(work / f"m{seed}.onnx", seed=seed)
        alias = ["--alias", "production"] if seed == 1 else []
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["--store", store.uri, "publish", str(path), "--name", "iris", *alias]) == 0
    return store


def iris_models(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> ObjectStore:
    for seed in (1, 2, 3):
        path = onnx_factory.linear_classifier(tmp_path / f"m{seed}.onnx", seed=seed)
        alias = ["--alias", "production"] if seed == 1 else []
        assert run(capsys, store, "publish", str(path), "--name", "iris", *alias)[0] == 0
    return store


def test_promote_with_a_weight_then_fully(
    capsys: pytest.CaptureFixture[str], iris: ObjectStore
) -> None:
    assert run(capsys, iris, "promote", "iris", "2", "--weight", "0.1") == (
        0,
        "iris@production -> 1 (90%) + 2 (10%) (was 1)\n",
        "",
    )
    assert Registry(iris).alias_target("iris", "production") is not None
    rows = {
        line.split()[0]: line.split()[-1]
        for line in run(capsys, iris, "versions", "iris")[1].splitlines()
    }
    assert (rows["1"], rows["2"]) == ("@production:90%", "@production:10%")
    models = run(capsys, iris, "models")[1].split()
    assert models[-1] == "@production=1:90%,2:10%"
    assert run(capsys, iris, "promote", "iris", "2", "--weight", "0.5")[1] == (
        "iris@production -> 1 (50%) + 2 (50%) (was 1 (90%) + 2 (10%))\n"
    )
    assert run(capsys, iris, "promote", "iris", "2")[1] == (
        "iris@production -> 2 (was 1 (50%) + 2 (50%))\n"
    )


def test_rollback_ends_a_split(capsys: pytest.CaptureFixture[str], iris: ObjectStore) -> None:
    run(capsys, iris, "promote", "iris", "3", "--weight", "0.05")
    assert run(capsys, iris, "rollback", "iris")[1] == (
        "iris@production -> 1 (rolled back from 1 (95%) + 3 (5%))\n"
    )


@pytest.mark.parametrize("weight", ["1.5", "0", "nan", "0.0000001", "abc"])
def test_a_weight_outside_its_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], refusing: ObjectStore, weight: str
) -> None:
    """Exit 2, as the README's table says of a value outside its flag's range (it was 1)."""
    with pytest.raises(SystemExit) as stopped:
        run(capsys, refusing, "promote", "iris", "2", "--weight", weight)
    assert stopped.value.code == 2
    assert "argument --weight" in capsys.readouterr().err
    assert Registry(refusing).alias("iris", "production") == "1"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (("9", "--weight", "0.1"), "version '9' of model 'iris' not found"),
        (("1", "--weight", "0.1"), "already points at version '1'"),
        (("2", "--weight", "0.1", "--alias", "staging"), "points at no version yet"),
    ],
)
def test_a_weight_that_cannot_be_served_is_an_error(
    capsys: pytest.CaptureFixture[str], refusing: ObjectStore, argv: tuple[str, ...], error: str
) -> None:
    assert error in fails(capsys, refusing, "promote", "iris", *argv)
    assert Registry(refusing).alias("iris", "production") == "1"


def test_a_third_version_is_refused(capsys: pytest.CaptureFixture[str], iris: ObjectStore) -> None:
    run(capsys, iris, "promote", "iris", "2", "--weight", "0.1")
    error = fails(capsys, iris, "promote", "iris", "3", "--weight", "0.1")
    assert "splits between at most 2 versions" in error


def test_a_weight_that_is_not_a_number_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], refusing: ObjectStore
) -> None:
    with pytest.raises(SystemExit) as exited:
        run(capsys, refusing, "promote", "iris", "2", "--weight", "ten")
    assert exited.value.code == 2
    assert "argument --weight: invalid weight value: 'ten'" in capsys.readouterr().err
    assert Registry(refusing).alias("iris", "production") == "1"


def test_rollback_says_the_shadow_it_keeps(
    capsys: pytest.CaptureFixture[str], local_store: ObjectStore, tmp_path: Path
) -> None:
    # A rollback keeps the alias's shadow; its line said only "-> 1", as if it had ended it.
    # The line is the CLI's, the same on either store: the local one is enough.
    iris = iris_models(capsys, local_store, tmp_path)
    run(capsys, iris, "promote", "iris", "2")
    run(capsys, iris, "shadow", "iris", "3", "--sample", "0.5")
    assert run(capsys, iris, "rollback", "iris")[1] == (
        "iris@production -> 1, shadow 3 (50% sampled) (rolled back from 2, shadow 3 (50% sampled))\n"
    )


def test_rolling_back_a_canary_of_the_shadow_version_puts_the_shadow_back(
    capsys: pytest.CaptureFixture[str], iris: ObjectStore
) -> None:
    """A canary of the version the alias shadowed ends the shadow (a version served is no
    shadow); rolled back by hand, the alias was left shadowing nothing, where a rollout's
    rollback puts the shadow it had back. Now a rollback that ends such a split, raised since
    or not, goes back to the state before it, shadow included."""
    run(capsys, iris, "shadow", "iris", "3", "--sample", "0.2")
    assert run(capsys, iris, "promote", "iris", "3", "--weight", "0.1")[1] == (
        "iris@production -> 1 (90%) + 3 (10%) (was 1, shadow 3 (20% sampled))\n"
    )
    run(capsys, iris, "promote", "iris", "3", "--weight", "0.5")
    assert run(capsys, iris, "rollback", "iris")[1] == (
        "iris@production -> 1, shadow 3 (20% sampled) (rolled back from 1 (50%) + 3 (50%))\n"
    )
    assert_back_on_1_shadowing_3(iris)
    # A shadow set and ended by hand during the canary stays ended.
    run(capsys, iris, "promote", "iris", "3", "--weight", "0.1")
    run(capsys, iris, "shadow", "iris", "2")
    run(capsys, iris, "shadow", "iris", "--off")
    assert run(capsys, iris, "rollback", "iris")[1] == (
        "iris@production -> 1 (rolled back from 1 (90%) + 3 (10%))\n"
    )


def assert_back_on_1_shadowing_3(iris: ObjectStore) -> None:
    """The alias serves 1 alone again, shadowing 3 at its 20% sample, as before the moves."""
    target = Registry(iris).alias_target("iris", "production")
    assert target is not None and target.shadow is not None
    assert (target.version, target.canary, target.shadow.record()) == (
        "1",
        None,
        {"version": "3", "sample": 0.2},
    )


@pytest.mark.parametrize("canary", [(0.1, 0.5), ()], ids=["canary-then-all", "all-at-once"])
def test_rolling_back_the_shadow_version_promoted_to_every_request_puts_the_shadow_back(
    capsys: pytest.CaptureFixture[str], iris: ObjectStore, canary: tuple[float, ...]
) -> None:
    """The shadowed version promoted to every request (after a canary of it or not), then
    rolled back: the alias went back to 1 shadowing nothing, where a rollout's rollback from
    its 100% step puts the shadow back. Now the rollback undoes the moves, shadow included."""
    run(capsys, iris, "shadow", "iris", "3", "--sample", "0.2")
    for weight in canary:
        run(capsys, iris, "promote", "iris", "3", "--weight", str(weight))
    run(capsys, iris, "promote", "iris", "3")
    assert run(capsys, iris, "rollback", "iris")[1] == (
        "iris@production -> 1, shadow 3 (20% sampled) (rolled back from 3)\n"
    )
    assert_back_on_1_shadowing_3(iris)


def test_a_shadow_ended_by_hand_or_moved_on_from_stays_ended(
    capsys: pytest.CaptureFixture[str], iris: ObjectStore
) -> None:
    run(capsys, iris, "shadow", "iris", "3", "--sample", "0.2")
    run(capsys, iris, "promote", "iris", "3", "--weight", "0.1")
    run(capsys, iris, "promote", "iris", "3")
    run(capsys, iris, "shadow", "iris", "2")  # set and ended by hand while 3 served
    run(capsys, iris, "shadow", "iris", "--off")
    assert run(capsys, iris, "rollback", "iris")[1] == "iris@production -> 1 (rolled back from 3)\n"
    # Rolled back past the version that shadowed 3: not where the shadow was.
    run(capsys, iris, "promote", "iris", "2")
    run(capsys, iris, "shadow", "iris", "3", "--sample", "0.2")
    run(capsys, iris, "promote", "iris", "3")
    assert run(capsys, iris, "rollback", "iris", "--to", "1")[1] == (
        "iris@production -> 1 (rolled back from 3)\n"
    )


def test_json_listings_name_a_split_s_canary_and_a_shadow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aliases` names an alias's main version alone; a script reading `aiaas models --json`
    or `versions --json` saw no canary and no shadow, where the text listing shows them."""
    import json as json_module

    from functions.runtime.store import LocalStore
    from infra.cli.main import main

    registry = Registry(LocalStore(tmp_path / "store"))
    onnx = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    for version in ("1", "2", "3"):
        registry.publish(onnx_factory.manifest_for(onnx, "iris", version), onnx)
    registry.set_alias("iris", "production", "1")
    registry.set_alias("iris", "production", "2", weight=0.1)
    registry.set_shadow("iris", "production", "3", 0.5)
    store = str(tmp_path / "store")
    for command in (["models", "--json"], ["versions", "iris", "--json"]):
        assert main(["--store", store, *command]) == 0
        doc = json_module.loads(capsys.readouterr().out)
        model = doc["models"][0] if "models" in doc else doc
        assert model["aliases"] == {"production": "1"}
        assert model["alias_targets"] == {
            "production": {
                "version": "1",
                "weights": {"1": 0.9, "2": 0.1},
                "shadow": {"version": "3", "sample": 0.5},
            }
        }


def test_rollback_to_the_version_it_points_at_is_unchanged_as_promote_says_it(
    capsys: pytest.CaptureFixture[str], iris: ObjectStore
) -> None:
    """`aiaas rollback iris --to 2` while production points at 2 exited 1 ("already points at
    version '2'"), where `aiaas promote iris 2` exits 0 saying it is unchanged (leftovers6 4)."""
    assert run(capsys, iris, "promote", "iris", "2")[0] == 0
    unchanged = "iris@production -> 2 (unchanged: it already was; nothing recorded)\n"
    assert run(capsys, iris, "rollback", "iris", "--to", "2") == (0, unchanged, "")
    assert run(capsys, iris, "promote", "iris", "2") == (0, unchanged, "")
    history = (Registry(iris).alias_record("iris", "production") or {})["history"]
    assert [entry["version"] for entry in history] == ["1"]  # nothing recorded
    # A rollback elsewhere still moves it.
    assert run(capsys, iris, "rollback", "iris", "--to", "1")[1] == (
        "iris@production -> 1 (rolled back from 2)\n"
    )


def test_versions_and_models_name_an_alias_s_shadow(
    capsys: pytest.CaptureFixture[str], iris: ObjectStore
) -> None:
    """The shadow version's row had no tag and `models` named none: a version the alias copies
    requests to (and a prune keeps as "@production shadow") looked unused."""
    run(capsys, iris, "promote", "iris", "2", "--weight", "0.1")
    run(capsys, iris, "shadow", "iris", "3", "--sample", "0.5")
    rows = {
        line.split()[0]: line.split()[-1]
        for line in run(capsys, iris, "versions", "iris")[1].splitlines()
    }
    assert (rows["1"], rows["2"], rows["3"]) == (
        "@production:90%",
        "@production:10%",
        "@production:shadow",
    )
    assert run(capsys, iris, "models")[1].split()[-1] == "@production=1:90%,2:10%,shadow:3"
    run(capsys, iris, "promote", "iris", "1")
    assert run(capsys, iris, "models")[1].split()[-1] == "@production=1,shadow:3"
