"""What reaches the `live` alias API Gateway calls: a deploy moves it only to a new version,
and SAM names a version by a hash of the function's code location (parameters resolved) and its
Environment, MemorySize and SnapStart *as written* (samtranslator's `_construct_version`).

So every value a function behind an alias reads must be a literal or a resource in those
properties, never a parameter: a parameter's new value would reach $LATEST and never `live`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest

from infra.model_resources import model_resources
from infra.model_settings import template_models
from infra.template import load_template
from tests.infra.conftest import Packaged
from tests.infra.test_template_checks import sam_transform

HASHED = ("Environment", "MemorySize", "SnapStart")  # besides the code location


def referenced_names(node: Any) -> Iterator[str]:
    """Every name a `Ref` or a `Fn::Sub` variable in `node` refers to."""
    if isinstance(node, list):
        for item in node:
            yield from referenced_names(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::Sub":
                text, extra = (value, {}) if isinstance(value, str) else (value[0], value[1])
                found = re.findall(r"\$\{([^}!]+)\}", text)
                yield from (name.split(".")[0] for name in found if name not in extra)
                yield from referenced_names(extra)
            else:
                yield from referenced_names(value)


def test_no_function_behind_an_alias_reads_a_parameter() -> None:
    template = load_template()
    parameters = set(template["Parameters"])
    globals_ = template["Globals"]["Function"]
    aliased = {
        logical: resource["Properties"]
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and "AutoPublishAlias" in resource["Properties"]
    }
    assert {"Predictdigitsmlp", "ControlPlane"} <= set(aliased)
    for logical, properties in aliased.items():
        hashed = [globals_.get(key) for key in HASHED] + [properties.get(key) for key in HASHED]
        read = set(referenced_names(hashed))
        assert "ArtifactsBucket" in read  # the walk finds what is there
        assert not read & parameters, (logical, sorted(read & parameters))


def test_a_parameter_in_the_environment_would_keep_the_old_version_live(
    packaged: Packaged,
) -> None:
    # Why the test above matters, shown with the transform: two values, one version id.
    template = packaged.template()
    template["Parameters"]["Probe"] = {"Type": "String", "Default": "a"}
    variables = template["Resources"]["ControlPlane"]["Properties"].setdefault(
        "Environment", {"Variables": {}}
    )["Variables"]
    variables["PROBE"] = {"Ref": "Probe"}

    def version(value: str) -> set[str]:
        resources = sam_transform(copy.deepcopy(template), Probe=value)["Resources"]
        return {k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Version"}

    assert version("a") == version("b")


@pytest.mark.parametrize(
    "changed", [{"ModelSelector": ":3"}, {"ModelSelector": "@staging"}, {"AliasTtlSeconds": 5}]
)
def test_a_new_selector_or_alias_ttl_publishes_a_new_version(
    packaged: Packaged, changed: dict[str, Any]
) -> None:
    # What a deploy after editing Metadata.Models and `make template` gives CloudFormation: the
    # generator's resources for the new settings, on the code `sam package` uploaded.
    def version(settings: dict[str, Any]) -> str:
        template = packaged.template()
        code = template["Resources"]["Predictdigitsmlp"]["Properties"]["CodeUri"]
        template["Resources"].update(model_resources("digits-mlp", settings))
        template["Resources"]["Predictdigitsmlp"]["Properties"]["CodeUri"] = code
        resources = sam_transform(template)["Resources"]
        (found,) = [
            k
            for k, r in resources.items()
            if r["Type"] == "AWS::Lambda::Version" and k.startswith("Predictdigitsmlp")
        ]
        alias = resources["PredictdigitsmlpAliaslive"]["Properties"]["FunctionVersion"]
        assert alias == {"Fn::GetAtt": [found, "Version"]}  # `live` names that very version
        return found

    shipped = template_models(packaged.template())["digits-mlp"] or {}
    before = version(shipped)
    assert version(copy.deepcopy(shipped)) == before  # nothing changed: no new version
    assert version({**shipped, **changed}) != before
