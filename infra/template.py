"""Reading template.yaml the way CloudFormation would, for the local gateway and `aiaas invoke`.

Supports what our template uses: the short-form intrinsic tags, `Ref`, `Fn::Sub`, `Fn::GetAtt`,
`Fn::Join`, `Fn::FindInMap` and Globals. Anything it cannot resolve locally (a bucket's physical
name, a region) resolves to a placeholder, since local runs override the store with AIAAS_STORE.
The per-model resources are generated (infra/model_resources.py); locally, `functions` serves
any list of models in the same shape (`aiaas serve`: every model in the store).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.cfn_yaml import DEFAULT_TEMPLATE, load_template, template_cache_dir
from infra.model_resources import resources_for
from infra.model_settings import template_models

__all__ = ["DEFAULT_TEMPLATE", "load_template", "template_cache_dir"]  # re-exported
_FUNCTION = "AWS::Serverless::Function"


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str


@dataclass
class FunctionSpec:
    """One function of the template, as a local runtime needs it."""

    logical_id: str
    handler: str
    environment: dict[str, str]
    routes: list[HttpRoute] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        default = spec.get("Default")
        if spec.get("Type") == "CommaDelimitedList" and isinstance(default, str):
            default = [item.strip() for item in default.split(",") if item.strip()]
        values[name] = default
    return values


class Resolver:
    """Resolves intrinsics against parameters, loop variables and placeholders."""

    def __init__(
        self, values: Mapping[str, Any], mappings: Mapping[str, Any] | None = None
    ) -> None:
        self.values = dict(values)
        self.mappings = dict(mappings or {})

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.values.get(arg, f"<{arg}>")
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::GetAtt":
                return f"<{'.'.join(arg)}>"
            if key == "Fn::Join":
                return str(arg[0]).join(str(self.resolve(part)) for part in arg[1])
            if key == "Fn::FindInMap":
                return self._find_in_map(arg)
        return {key: self.resolve(value) for key, value in node.items()}

    def _find_in_map(self, arg: list[Any]) -> Any:
        # AWS::LanguageExtensions adds the optional {"DefaultValue": ...} fourth argument.
        name, first, second = (str(self.resolve(part)) for part in arg[:3])
        found = self.mappings.get(name, {}).get(first, {}).get(second)
        if found is not None:
            return found
        if len(arg) > 3 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
            return self.resolve(arg[3]["DefaultValue"])
        return f"<{name}.{first}.{second}>"

    def _sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        scope = {**self.values, **{k: self.resolve(v) for k, v in extra.items()}}
        resolved = re.sub(
            r"\$\{([^}!]+)\}", lambda m: str(scope.get(m.group(1), f"<{m.group(1)}>")), text
        )
        return resolved.replace("${!", "${")  # `${!Literal}` is CloudFormation's escape


def served_resources(
    template: Mapping[str, Any], models: list[str] | None = None, selector: str | None = None
) -> dict[str, Any]:
    """The template's resources; with `models`, its per-model resources are those models'
    instead (settings from Metadata.Models where listed, else the defaults); with `selector`,
    every model's ModelSelector setting is that one."""
    resources = dict(template.get("Resources", {}))
    if models is None and selector is None:
        return resources
    table = template_models(template)
    for logical in resources_for(list(table), table):
        resources.pop(logical, None)
    served = list(table) if models is None else models
    if selector is not None:
        table = {model: {**(table.get(model) or {}), "ModelSelector": selector} for model in served}
    return {**resources, **resources_for(served, table)}


def functions(
    template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> dict[str, FunctionSpec]:
    """Every serverless function, with Globals merged and intrinsics resolved.

    `overrides` are parameter values, plus `ModelNames`: the models to serve in place of the
    template's (`aiaas serve` passes every model in its store), and `ModelSelector`: the
    selector of every model in place of its Metadata.Models setting (`aiaas serve --selector`).
    """
    values = {**parameter_defaults(template), **(overrides or {})}
    models = values.pop("ModelNames", None)
    selector = values.pop("ModelSelector", None)
    resolver = Resolver(values, template.get("Mappings"))
    globals_ = resolver.resolve(template.get("Globals", {}).get("Function", {}))
    found: dict[str, FunctionSpec] = {}
    for logical, resource in served_resources(template, models, selector).items():
        if resource.get("Type") != _FUNCTION:
            continue
        found[logical] = _spec(logical, globals_, resolver.resolve(resource.get("Properties", {})))
    return found


def _spec(logical: str, globals_: dict[str, Any], own: dict[str, Any]) -> FunctionSpec:
    # SAM applies Globals to every function; the function's own properties win.
    props = {**globals_, **own}
    env = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **props.get("Environment", {}).get("Variables", {}),
    }
    events = props.get("Events", {}) or {}
    routes = [
        HttpRoute(str(e["Properties"]["Method"]).upper(), str(e["Properties"]["Path"]))
        for e in events.values()
        if e.get("Type") == "HttpApi"
    ]
    return FunctionSpec(
        logical_id=logical,
        handler=str(props.get("Handler", "")),
        environment={k: str(v) for k, v in env.items()},
        routes=routes,
        properties=props,
        events=events,
    )
