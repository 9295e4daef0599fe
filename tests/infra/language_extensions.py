"""What the AWS::LanguageExtensions transform does to our template, offline, for samtranslator.

samtranslator runs after LanguageExtensions in CloudFormation and knows nothing of
`Fn::ForEach` or `Fn::FindInMap`'s DefaultValue, so the tests apply these first, as the service
would: loops in Resources, Conditions, Outputs and inside properties (the loop variable
replaced in keys and strings, `&{}` stripped to alphanumerics) and FindInMap lookups.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FOREACH = "Fn::ForEach::"


def expand(template: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The template after the transform, for these parameter values."""
    mappings = template.get("Mappings", {})
    out = {k: v for k, v in template.items() if k != "Transform"}
    out["Transform"] = "AWS::Serverless-2016-10-31"
    for section in ("Conditions", "Resources", "Outputs"):
        if section in template:
            out[section] = _walk(template[section], parameters, mappings)
    return out


def _walk(node: Any, params: Mapping[str, Any], mappings: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_walk(item, params, mappings) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::FindInMap"}:
        return _find_in_map(node["Fn::FindInMap"], params, mappings)
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith(FOREACH):
            variable, collection, fragment = value
            items = _walk(collection, params, mappings)
            if isinstance(items, dict) and "Ref" in items:
                items = params[items["Ref"]]
            for item in items:
                bound = _bind(fragment, variable, str(item))
                result.update(_walk(bound, params, mappings))
        else:
            result[key] = _walk(value, params, mappings)
    return result


def _find_in_map(arg: list[Any], params: Mapping[str, Any], mappings: Mapping[str, Any]) -> Any:
    keys = [params.get(k["Ref"], k) if isinstance(k, dict) and "Ref" in k else k for k in arg[:3]]
    found = mappings.get(keys[0], {}).get(keys[1], {}).get(keys[2])
    if found is not None:
        return found
    if len(arg) > 3:
        return arg[3]["DefaultValue"]
    raise KeyError(f"Fn::FindInMap {keys} has no value and no DefaultValue")


def _bind(node: Any, variable: str, item: str) -> Any:
    if isinstance(node, str):
        return node.replace("${" + variable + "}", item).replace(
            "&{" + variable + "}", re.sub(r"[^A-Za-z0-9]", "", item)
        )
    if isinstance(node, list):
        return [_bind(v, variable, item) for v in node]
    if isinstance(node, dict):
        if node == {"Ref": variable}:
            return item
        return {_bind(k, variable, item): _bind(v, variable, item) for k, v in node.items()}
    return node
