"""Reading template.yaml as CloudFormation would: tags, Globals, intrinsics; the per-model
functions it names, and the same shape served locally for any list of models."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from functions.runtime.errors import AiaasError
from infra.cfn_yaml import load_yaml
from infra.template import (
    DEFAULT_TEMPLATE,
    HttpRoute,
    Resolver,
    functions,
    load_template,
    parameter_defaults,
    template_cache_dir,
)

PREDICT_ROUTES = [
    ("POST", "/models/{m}/predict"),
    ("GET", "/v2/models/{m}"),
    ("GET", "/v2/models/{m}/ready"),
    ("POST", "/v2/models/{m}/infer"),
    ("GET", "/v2/models/{m}/versions/{{version}}"),
    ("GET", "/v2/models/{m}/versions/{{version}}/ready"),
    ("POST", "/v2/models/{m}/versions/{{version}}/infer"),
    ("POST", "/models/{m}/versions/{{version}}/predict"),
    ("POST", "/models/{m}/explain"),
    ("POST", "/v2/models/{m}/explain"),
    ("GET", "/models/{m}/tokenizer"),
    ("GET", "/models/{m}/versions/{{version}}/tokenizer"),
]


def predict_routes(model: str) -> set[HttpRoute]:
    return {HttpRoute(method, path.format(m=model)) for method, path in PREDICT_ROUTES}


@pytest.fixture(scope="module")
def template() -> dict[str, object]:
    return load_template()


def test_short_form_tags_become_intrinsics(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "A: !Ref Bucket\n"
        "B: !Sub 'arn:${AWS::Partition}:s3:::${Bucket}'\n"
        "C: !GetAtt Api.Arn\n"
        "D: !Join [',', [a, !Ref X]]\n"
        "E: !Sub ['${N}-x', {N: !Ref Name}]\n"
    )
    doc = load_yaml(path)
    assert doc == {
        "A": {"Ref": "Bucket"},
        "B": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}"},
        "C": {"Fn::GetAtt": ["Api", "Arn"]},
        "D": {"Fn::Join": [",", ["a", {"Ref": "X"}]]},
        "E": {"Fn::Sub": ["${N}-x", {"N": {"Ref": "Name"}}]},
    }


def test_the_loader_stays_safe(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("x: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(AiaasError, match="is not valid YAML") as refused:
        load_yaml(path)
    assert isinstance(refused.value.__cause__, yaml.YAMLError)


def test_a_parse_is_cached_by_content_and_a_change_is_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "t.yaml"
    path.write_text("A: !Ref B\nC: [1, 2.5, true, null]\n")
    first = load_yaml(path)
    assert first == {"A": {"Ref": "B"}, "C": [1, 2.5, True, None]}
    assert len(list(template_cache_dir().glob("*.json"))) == 1
    assert load_yaml(path) == first  # read back from the cache

    path.write_text("A: !Ref D\n")
    assert load_yaml(path) == {"A": {"Ref": "D"}}
    assert len(list(template_cache_dir().glob("*.json"))) == 2


def test_a_parse_json_cannot_hold_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "t.yaml"
    path.write_text("Version: 2010-09-09\n1: one\n")  # a YAML date, a number as a key
    assert load_yaml(path) == {"Version": datetime.date(2010, 9, 9), 1: "one"}
    assert not list(template_cache_dir().glob("*.json"))
    assert load_yaml(path) == {"Version": datetime.date(2010, 9, 9), 1: "one"}


def test_resolver() -> None:
    resolver = Resolver({"Bucket": "b1", "Names": ["a", "b"]})
    assert resolver.resolve({"Ref": "Bucket"}) == "b1"
    assert resolver.resolve({"Ref": "Missing"}) == "<Missing>"
    assert resolver.resolve({"Fn::Sub": "s3://${Bucket}/${AWS::Region}"}) == "s3://b1/<AWS::Region>"
    assert resolver.resolve({"Fn::Sub": ["${X}/${Bucket}", {"X": {"Ref": "Bucket"}}]}) == "b1/b1"
    assert resolver.resolve({"Fn::Sub": "${!Literal}"}) == "${Literal}"
    assert resolver.resolve({"Fn::GetAtt": ["Api", "Arn"]}) == "<Api.Arn>"
    assert resolver.resolve({"Fn::Join": ["-", ["x", {"Ref": "Bucket"}]]}) == "x-b1"
    assert resolver.resolve([{"Ref": "Bucket"}, {"k": {"Ref": "Names"}}]) == [
        "b1",
        {"k": ["a", "b"]},
    ]


def test_parameter_defaults_split_comma_delimited_lists(template: dict[str, object]) -> None:
    defaults = parameter_defaults(template)
    assert defaults["LogRetentionDays"] == 30
    assert defaults["TrainingInstanceTypes"] == ["g5.xlarge", "g6.xlarge"]
    assert parameter_defaults(
        {"Parameters": {"L": {"Type": "CommaDelimitedList", "Default": " a, b ,,c"}}}
    ) == {"L": ["a", "b", "c"]}


def test_default_template_has_a_predict_function_for_digits_mlp(
    template: dict[str, object],
) -> None:
    specs = functions(template)
    spec = specs["Predictdigitsmlp"]
    assert spec.handler == "functions.predict.handler.handler"
    assert set(spec.routes) == predict_routes("digits-mlp")
    assert len(spec.routes) == len(PREDICT_ROUTES)
    assert spec.environment["AIAAS_MODEL"] == "digits-mlp"
    assert spec.environment["AIAAS_MODEL_SELECTOR"] == "@production"
    assert spec.environment["AIAAS_ALIAS_TTL"] == "60"
    assert spec.environment["AIAAS_STORE"] == "s3://<ArtifactsBucket>/registry"
    assert spec.environment["POWERTOOLS_SERVICE_NAME"] == "aiaas"
    # Predict reads it to re-read aliases; the control plane, to wait that long in a rollout step.
    assert specs["ControlPlane"].environment["AIAAS_ALIAS_TTL"] == "60"
    assert "AIAAS_ALIAS_TTL" not in specs["BatchFunction"].environment


def test_globals_apply_to_every_function_and_own_properties_win(
    template: dict[str, object],
) -> None:
    specs = functions(template)
    assert specs["Predictdigitsmlp"].properties["MemorySize"] == 1024
    assert specs["Predictdigitsmlp"].properties["Timeout"] == 30
    assert specs["Health"].properties["MemorySize"] == 256
    assert specs["Health"].properties["Timeout"] == 30


def test_health_function_routes(template: dict[str, object]) -> None:
    health = functions(template)["Health"]
    assert health.handler == "functions.health.handler.handler"
    assert set(health.routes) == {
        HttpRoute("GET", "/v2/health/live"),
        HttpRoute("GET", "/v2/health/ready"),
        HttpRoute("GET", "/v2"),
    }
    assert "AIAAS_MODEL" not in health.environment


def test_the_template_names_one_predict_function_per_listed_model(
    template: dict[str, object],
) -> None:
    assert list(template["Metadata"]["Models"]) == ["digits-mlp"]  # type: ignore[index]
    resources = template["Resources"]  # type: ignore[index]
    assert resources["Predictdigitsmlp"]["Type"] == "AWS::Serverless::Function"
    assert not any(key.startswith("Fn::") for key in resources)  # nothing SAM CLI cannot build


def test_local_serving_gives_any_models_the_same_shape(template: dict[str, object]) -> None:
    specs = functions(
        template, {"ModelNames": ["iris", "digits-mlp", "text.v2"], "ModelSelector": ":3"}
    )
    predict = {k: v for k, v in specs.items() if v.handler == "functions.predict.handler.handler"}
    assert set(predict) == {
        "Predictiris",
        "Predictdigitsmlp",
        "Predicttextv2",
    }  # &{} drops '-', '.'
    for logical, model in [("Predictiris", "iris"), ("Predicttextv2", "text.v2")]:
        assert predict[logical].environment["AIAAS_MODEL"] == model
        assert predict[logical].environment["AIAAS_MODEL_SELECTOR"] == ":3"
        assert set(predict[logical].routes) == predict_routes(model)
    statement = predict["Predicttextv2"].properties["Policies"][0]["Statement"][0]
    assert (
        statement["Resource"]
        == "arn:<AWS::Partition>:s3:::<ArtifactsBucket>/registry/models/text.v2/*"
    )


def test_no_models_gives_no_predict_functions(template: dict[str, object]) -> None:
    specs = functions(template, {"ModelNames": []})
    assert not any(s.handler == "functions.predict.handler.handler" for s in specs.values())
    assert "Health" in specs


def test_models_not_in_the_template_get_the_default_settings(
    template: dict[str, object],
) -> None:
    specs = functions(template, {"ModelNames": ["iris", "digits-mlp"]})
    assert specs["Predictiris"].properties["MemorySize"] == 1024
    assert specs["Predictiris"].properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert specs["Predictdigitsmlp"].properties["MemorySize"] == 1024


def test_default_template_path_is_the_projects() -> None:
    assert DEFAULT_TEMPLATE.name == "template.yaml"
    assert DEFAULT_TEMPLATE.is_file()
