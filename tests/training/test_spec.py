"""Job specs: defaults, every bundled demo spec, and errors that name the field to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.training.conftest import spec_dict
from training.errors import SpecError
from training.spec import BUNDLED_SPECS, find_spec, load_spec, parse_spec

SPECS = Path(__file__).resolve().parents[2] / "training" / "specs"


def test_defaults_are_filled_in() -> None:
    spec = parse_spec(
        {"name": "m", "task": "classification", "dataset": {"path": "x.csv", "target": "y"},
         "recipe": {"name": "mlp"}}
    )  # fmt: skip
    assert spec.recipe.params == {"hidden": [256, 256], "dropout": 0.0}
    assert (spec.epochs, spec.batch_size, spec.seed, spec.device) == (10, 64, 0, "auto")
    assert (spec.validation_split, spec.test_split) == (0.15, 0.15)
    assert spec.early_stopping is None and spec.alias is None
    assert (spec.export.opset, spec.export.exporter, spec.export.quantize) == (18, "dynamo", False)
    assert spec.export.parity_tolerance == 1e-4 and spec.export.max_metric_drop == 1.0
    assert spec.to_dict()["recipe"] == {
        "name": "mlp",
        "params": {"hidden": [256, 256], "dropout": 0.0},
    }


def test_schedule_and_early_stopping_forms() -> None:
    spec = parse_spec(spec_dict("mlp", schedule="cosine", early_stopping={"patience": 2}))
    assert spec.schedule.name == "cosine"
    assert spec.early_stopping is not None and spec.early_stopping.monitor == "accuracy"
    spec = parse_spec(
        spec_dict(
            "linear", schedule={"name": "step", "step_size": 3, "gamma": 0.1}, early_stopping={}
        )
    )
    assert (spec.schedule.step_size, spec.schedule.gamma) == (3, 0.1)
    assert spec.early_stopping is not None and spec.early_stopping.monitor == "r2"


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_demo_specs_are_valid(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.name == spec.name.lower() and "_" not in spec.name


def test_digits_mlp_demo_is_the_model_serving_expects() -> None:
    spec = load_spec(SPECS / "digits-mlp.yaml")
    assert (spec.recipe.name, spec.recipe.params["hidden"], spec.dataset.path) == (
        "mlp",
        [256, 256],
        "bundled:digits.npz",
    )


def test_json_specs_load_too(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(spec_dict("logistic")))
    assert load_spec(path).recipe.name == "logistic"


def test_yaml_reads_exponents_without_a_dot_as_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # YAML 1.1 (PyYAML) read `1e-3` as the string '1e-3': `aiaas train --check` refused
    # "must be a number; got '1e-3'" for what JSON, YAML 1.2 and the README's table read as one.
    from infra.cli.main import main

    spec = tmp_path / "job.yaml"
    spec.write_text(
        (SPECS / "iris-logistic.yaml").read_text()
        + "weight_decay: 1E-4\nexport: {parity_tolerance: 1e-4, quantize: true, max_metric_drop: +2e0}\n"
    )
    spec.write_text(spec.read_text().replace("learning_rate: 0.05", "learning_rate: 5e-2"))
    spec.write_text(spec.read_text().replace("monitor: loss}", "monitor: loss, min_delta: 1e-3}"))
    assert main(["train", str(spec), "--check"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith(f"{spec}: valid (iris-logistic,")
    loaded = load_spec(spec)
    assert (loaded.learning_rate, loaded.weight_decay) == (0.05, 1e-4)
    assert (loaded.export.parity_tolerance, loaded.export.max_metric_drop) == (1e-4, 2.0)
    assert loaded.early_stopping is not None and loaded.early_stopping.min_delta == 1e-3
    spec.write_text(spec.read_text().replace("name: iris-logistic", "name: '1e3'"))
    assert load_spec(spec).name == "1e3"  # quoted, a string field stays a string


def _error(data: Any) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert info.value.status == 400
    return info.value.message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": None}, "spec is missing required field 'name'"),
        ({"name": "Bad Name"}, "spec field 'name': invalid model name 'Bad Name'"),
        (
            {"task": "ranking"},
            "spec field 'task' is 'ranking'; expected one of ['classification', 'regression']",
        ),
        ({"learnig_rate": 0.1}, "spec field 'learnig_rate' is unknown; expected one of"),
        ({"epochs": "ten"}, "spec field 'epochs' must be an integer; got 'ten'"),
        ({"epochs": 0}, "spec field 'epochs' must be >= 1; got 0"),
        ({"learning_rate": -1}, "spec field 'learning_rate' must be > 0; got -1"),
        (
            {"device": "tpu"},
            "spec field 'device' is 'tpu'; expected one of ['auto', 'cpu', 'cuda']",
        ),
        ({"validation_split": 1.5}, "spec field 'validation_split' must be < 1.0; got 1.5"),
        (
            {"validation_split": 0.5, "test_split": 0.45},
            "'validation_split' + 'test_split' must leave >= 10% to train",
        ),
        ({"recipe": {"name": "xgboost"}}, "spec field 'recipe.name' is 'xgboost'; expected one of"),
        (
            {"recipe": {"name": "linear"}},
            "spec field 'recipe.name': 'linear' does not do classification",
        ),
        (
            {"recipe": {"name": "mlp", "params": {"hiden": [8]}}},
            "spec field 'recipe.params.hiden' is unknown",
        ),
        (
            {"recipe": {"name": "mlp", "params": {"hidden": [0]}}},
            "spec field 'recipe.params.hidden' must be a list of positive integers",
        ),
        (
            {"recipe": {"name": "mlp", "params": {"dropout": 1.5}}},
            "spec field 'recipe.params.dropout' must be < 1.0; got 1.5",
        ),
        ({"dataset": {"target": "y"}}, "spec is missing required field 'dataset.path'"),
        ({"dataset": "data.csv"}, "spec field 'dataset' must be a mapping of settings"),
        ({"dataset": {"path": "d.csv", "format": "xlsx"}}, "spec field 'dataset.format' is 'xlsx'"),
        (
            {"dataset": {"path": "d.csv", "text_column": "t"}},
            "'dataset.text_column' is only for text recipes",
        ),
        (
            {"dataset": {"path": "d.csv", "target": "y", "exclude": "id"}},
            "spec field 'dataset.exclude' must be a non-empty list of strings",
        ),
        (
            {"dataset": {"path": "d.csv", "target": "y", "exclude": ["id", "y"]}},
            "spec field 'dataset.exclude' drops the target 'y'; keep it, or change dataset.target",
        ),
        (  # the label is never known when predicting: a leak, not a feature
            {"dataset": {"path": "d.csv", "target": "y", "features": ["a", "y"]}},
            "spec field 'dataset.features' lists the target 'y'; a model cannot read its own "
            "label when predicting: take it out of dataset.features",
        ),
        (
            {
                "dataset": {
                    "path": "d.csv",
                    "target": "y",
                    "features": ["a", "id"],
                    "exclude": ["id"],
                }
            },
            "spec field 'dataset.exclude' drops 'id', which dataset.features lists; "
            "name a column in one of them only",
        ),
        (
            {"dataset": {"path": "generated:waveforms", "exclude": ["x0"]}},
            "spec field 'dataset.exclude' drops columns of a CSV or Parquet table; "
            "generated:waveforms has none",
        ),
        ({"schedule": "linear"}, "spec field 'schedule.name' is 'linear'; expected one of"),
        (
            {"early_stopping": {"monitor": "rmse"}},
            "spec field 'early_stopping.monitor' is 'rmse'; expected one of ['accuracy', 'macro_f1', 'f1', 'loss']",
        ),
        (
            {"export": {"quantize": "yes"}},
            "spec field 'export.quantize' must be true or false; got 'yes'",
        ),
        ({"export": {"opset": 9}}, "spec field 'export.opset' must be >= 13; got 9"),
        ({"publish": {"alias": "Prod!"}}, "spec field 'publish.alias': invalid alias 'Prod!'"),
        ({"publish": {"alias": "production", "to": "s3"}}, "spec field 'publish.to' is unknown"),
    ],
)
def test_spec_errors_name_the_field(change: dict[str, Any], message: str) -> None:
    data = spec_dict("mlp")
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    assert message in _error(data)


def test_text_recipe_needs_a_text_column() -> None:
    data = spec_dict("transformer")
    del data["dataset"]["text_column"]
    assert _error(data) == "spec field 'dataset.text_column' is required by text recipes"


def test_transformer_width_must_split_across_heads() -> None:
    data = spec_dict("transformer")
    data["recipe"]["params"] = {"d_model": 10, "heads": 4}
    assert _error(data) == "spec field 'recipe.params.d_model' must be a multiple of 'heads'"


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"cannot read spec .*missing\.yaml"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="is not valid YAML"):
        load_spec(bad)
    # The CLI's error is one line (README, exit 1): PyYAML's message spans four, caret included.
    indented = tmp_path / "indented.yaml"
    indented.write_text("name: x\n  task: [\n")
    with pytest.raises(SpecError) as caught:
        load_spec(indented)
    assert caught.value.message == (
        f"spec {indented} is not valid YAML: mapping values are not allowed here (line 2, column 7)"
    )
    # A key given twice kept the last one, unsaid (epochs: 3 then epochs: 50 trained 50).
    twice = tmp_path / "twice.yaml"
    twice.write_text("name: x\nepochs: 3\nrecipe: {name: mlp}\nepochs: 50\n")
    with pytest.raises(SpecError) as caught:
        load_spec(twice)
    assert caught.value.message == (
        f"spec {twice} is not valid YAML: the key 'epochs' is given twice (line 4, column 1)"
    )
    (tmp_path / "twice.json").write_text('{"name": "x", "recipe": {"name": "a", "name": "b"}}')
    with pytest.raises(SpecError, match="not valid JSON: the key 'name' is given twice"):
        load_spec(tmp_path / "twice.json")
    top = tmp_path / "list.yaml"
    top.write_text("- name: x\n")
    with pytest.raises(SpecError, match="spec field 'spec' must be a mapping of settings"):
        load_spec(top)


def test_demo_specs_run_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README's and --help's `aiaas train training/specs/NAME.yaml`, run outside a clone (aiaas
    installed from a wheel): the package's copy of the spec, not 'No such file'."""
    from infra.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert find_spec("training/specs/iris-logistic.yaml") == BUNDLED_SPECS / "iris-logistic.yaml"
    assert main(["train", "training/specs/iris-logistic.yaml", "--check"]) == 0
    assert "valid (iris-logistic, classification" in capsys.readouterr().out
    # A file of that path here is the user's own, and any other missing path stays an error
    # that lists the demo specs.
    (tmp_path / "training" / "specs").mkdir(parents=True)
    own = tmp_path / "training" / "specs" / "iris-logistic.yaml"
    own.write_text("name: mine\n")
    assert find_spec("training/specs/iris-logistic.yaml") == Path(
        "training/specs/iris-logistic.yaml"
    )
    assert main(["train", "specs/digits-mlp.yaml", "--check"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("aiaas train: error: cannot read spec specs/digits-mlp.yaml: No such")
    assert "training/specs/digits-mlp.yaml" in err and "\n" not in err
