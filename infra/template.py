"""Reading template.yaml the way CloudFormation would, for the local gateway and `aiaas invoke`.

Supports what our template uses: the short-form intrinsic tags, `Fn::ForEach` (from the
AWS::LanguageExtensions transform, with `&{Var}` logical ids), `Ref`, `Fn::Sub` and Globals.
Anything it cannot resolve locally (a bucket's physical name, a region) resolves to a
placeholder, since local runs override the store with AIAAS_STORE.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
_FUNCTION = "AWS::Serverless::Function"


@functools.cache
def _loader() -> type:
    """A SafeLoader (libyaml's C one when present) that turns `!Ref x` into `{"Ref": "x"}`,
    `!Sub s` into `{"Fn::Sub": s}`, ... PyYAML is imported only when a template is parsed."""
    import yaml

    class CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    def tag(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if suffix == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    CfnLoader.add_multi_constructor("!", tag)
    return CfnLoader


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


def load_template(path: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """The template as data.

    Each parse is kept as JSON under the user's cache directory, named by the template's
    sha256, so a later start reads JSON: importing PyYAML and parsing the template took
    ~25 ms of `aiaas serve`'s cold start. A parse that JSON cannot hold as it is (a YAML date,
    a number as a key) is simply not cached.
    """
    text = path.read_bytes()
    try:
        cached = template_cache_dir() / f"{hashlib.sha256(text).hexdigest()}.json"
    except (RuntimeError, KeyError):  # no home directory to cache in: parse every time
        cached = None
    if cached is not None:
        try:
            doc: dict[str, Any] = json.loads(cached.read_bytes())
            return doc
        except (OSError, ValueError):
            pass
    import yaml

    doc = yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    try:
        encoded = json.dumps(doc)
        if cached is not None and json.loads(encoded) == doc:
            _write_atomically(cached, encoded.encode())
    except (OSError, TypeError, ValueError):
        pass  # not cacheable here: parsed again next time
    return doc


def template_cache_dir() -> Path:
    """Where parsed templates are kept: `$XDG_CACHE_HOME/aiaas/templates` (~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aiaas" / "templates"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(temporary).replace(path)
    finally:
        Path(temporary).unlink(missing_ok=True)


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
        if any(key.startswith(_FOREACH) for key in node):
            return self.resolve(expand_property_loops(node, self))
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


_FOREACH = "Fn::ForEach::"


def expand_property_loops(node: Mapping[str, Any], resolver: Resolver) -> dict[str, Any]:
    """A property map with its `Fn::ForEach::` keys replaced by what they expand to."""
    expanded: dict[str, Any] = {}
    for key, body in node.items():
        if not key.startswith(_FOREACH):
            expanded[key] = body
            continue
        variable, collection, fragment = body
        items = resolver.resolve(collection)
        for item in items if isinstance(items, list) else [items]:
            for name, value in fragment.items():
                expanded[_loop_key(name, variable, str(item))] = value
    return expanded


def _loop_key(name: str, variable: str, item: str) -> str:
    return name.replace("${" + variable + "}", item).replace(
        "&{" + variable + "}", re.sub(r"[^A-Za-z0-9]", "", item)
    )


def expand_foreach(resources: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Resources with every `Fn::ForEach::<Name>` expanded (one level, as our template uses)."""
    expanded: dict[str, Any] = {}
    for key, body in resources.items():
        if not key.startswith("Fn::ForEach::"):
            expanded[key] = body
            continue
        variable, collection, templates = body
        items = Resolver(values).resolve(collection)
        for item in items if isinstance(items, list) else [items]:
            scope = Resolver({**values, variable: item})
            for logical, resource in templates.items():
                name = logical.replace("${" + variable + "}", item).replace(
                    "&{" + variable + "}", re.sub(r"[^A-Za-z0-9]", "", item)
                )
                expanded[name] = _substitute_loop(_bind_strings(resource, variable, item), scope)
    return expanded


def _bind_strings(node: Any, variable: str, item: str) -> Any:
    # The transform replaces ${Var} and &{Var} in every key and string of the fragment.
    if isinstance(node, str):
        return _loop_key(node, variable, item)
    if isinstance(node, list):
        return [_bind_strings(value, variable, item) for value in node]
    if isinstance(node, dict):
        return {
            _loop_key(k, variable, item): _bind_strings(v, variable, item) for k, v in node.items()
        }
    return node


def _substitute_loop(node: Any, scope: Resolver) -> Any:
    # Keep intrinsics for later resolution, but bind the loop variable now.
    if isinstance(node, list):
        return [_substitute_loop(item, scope) for item in node]
    if isinstance(node, dict):
        if len(node) == 1 and next(iter(node)) in ("Ref", "Fn::Sub"):
            return scope.resolve(node)
        return {k: _substitute_loop(v, scope) for k, v in node.items()}
    return node


def functions(
    template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> dict[str, FunctionSpec]:
    """Every serverless function, with Globals merged and intrinsics resolved."""
    values = {**parameter_defaults(template), **(overrides or {})}
    resolver = Resolver(values, template.get("Mappings"))
    globals_ = resolver.resolve(template.get("Globals", {}).get("Function", {}))
    found: dict[str, FunctionSpec] = {}
    for logical, resource in expand_foreach(template.get("Resources", {}), values).items():
        if resource.get("Type") != _FUNCTION:
            continue
        # SAM applies Globals to every function; the function's own properties win.
        props = {**globals_, **resolver.resolve(resource.get("Properties", {}))}
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
        found[logical] = FunctionSpec(
            logical_id=logical,
            handler=str(props.get("Handler", "")),
            environment={k: str(v) for k, v in env.items()},
            routes=routes,
            properties=props,
            events=events,
        )
    return found
