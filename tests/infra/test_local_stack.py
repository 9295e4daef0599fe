"""The local cloud's built-in functions (infra/local/stack.py) are template.yaml's functions.

An installed aiaas serves from the built-in table (it has no template.yaml); these tests read the
real template with the same reader `aiaas serve --template` uses and compare what a local run
takes from each function: handler, HTTP routes, environment, memory and timeout. They ask the
template only through `infra.template.functions`, so they hold however the template spells its
per-model functions (a loop or one resource per model).
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.functions import local_environment
from infra.local.stack import PREDICT_HANDLER, predict_logical_id, stack_functions
from infra.model_settings import template_models
from infra.template import FunctionSpec, functions, load_template

# A model the per-model settings do not list, and one whose name loses characters in its id.
EXTRA_MODELS = ["tiny-model", "name.with_marks-2"]


def local_view(spec: FunctionSpec) -> dict[str, Any]:
    """What a local run takes from a function: as `LocalFunction` reads it."""
    return {
        "handler": spec.handler,
        "routes": sorted((route.method, route.path) for route in spec.routes),
        "environment": local_environment(spec, {}),
        "timeout": spec.properties.get("Timeout", 30),
    }


def template_specs(selector: str | None) -> dict[str, FunctionSpec]:
    template = load_template()
    models = [*template_models(template), *EXTRA_MODELS]
    params: dict[str, Any] = {"ModelNames": models}
    if selector is not None:
        params["ModelSelector"] = selector
    return functions(template, params)


def served_models(specs: dict[str, FunctionSpec]) -> list[str]:
    return [s.environment["AIAAS_MODEL"] for s in specs.values() if s.handler == PREDICT_HANDLER]


@pytest.mark.parametrize("selector", [None, "", ":3"])
def test_built_in_functions_match_the_template(selector: str | None) -> None:
    from_template = template_specs(selector)
    models = served_models(from_template)
    assert models, "the template has no predict function to compare"
    built_in = stack_functions(models) if selector is None else stack_functions(models, selector)
    assert sorted(built_in) == sorted(from_template)
    for logical_id, spec in from_template.items():
        assert local_view(built_in[logical_id]) == local_view(spec), logical_id


def test_memory_matches_the_template_for_models_without_their_own_settings() -> None:
    # Per-model MemorySize comes from Metadata.Models in the cloud; locally it only sizes
    # onnxruntime's thread pool, and the built-in table uses the default every model starts with.
    from_template = template_specs(None)
    settings = {m for m, s in template_models(load_template()).items() if s and "MemorySize" in s}
    built_in = stack_functions(served_models(from_template))
    for logical_id, spec in from_template.items():
        if spec.handler == PREDICT_HANDLER and spec.environment["AIAAS_MODEL"] in settings:
            continue
        assert built_in[logical_id].properties["MemorySize"] == spec.properties["MemorySize"]


def test_a_predict_function_is_named_as_the_template_names_it() -> None:
    assert predict_logical_id("name.with_marks-2") == "Predictnamewithmarks2"
    assert "Predictnamewithmarks2" in template_specs(None)
