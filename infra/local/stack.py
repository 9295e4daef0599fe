"""The stack's functions as `aiaas serve` and `aiaas invoke` run them, defined in code.

template.yaml belongs to the SAM project, not to the installed package: a `pip install aiaas`
has no template to read. What the local cloud needs from it (each function's handler, HTTP
routes, environment, memory and timeout) is this table; tests/infra/test_local_stack.py checks
that the table and the template resolve to the same functions, so neither drifts unnoticed.
`aiaas serve --template FILE` reads a template instead (a customised stack).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from infra.model_settings import ModelSettings
from infra.template import FunctionSpec, HttpRoute

PREDICT_HANDLER = "functions.predict.handler.handler"
DEFAULT_SELECTOR = ModelSettings.selector  # Metadata.Models' ModelSelector default
DEFAULT_ALIAS_TTL_S = ModelSettings.alias_ttl_s  # and its AliasTtlSeconds default

# The template's Globals (AIAAS_STORE is a cloud bucket there; local runs set their own).
GLOBAL_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "aiaas",
    "POWERTOOLS_METRICS_NAMESPACE": "aiaas",
    "TOKENIZERS_PARALLELISM": "false",
    "ORT_DISABLE_TELEMETRY": "1",
}
DEFAULT_MEMORY_MB = 1024
DEFAULT_TIMEOUT_S = 30

# The control plane's methods, one route each under /control/ (not ANY: an ANY route took a
# browser's CORS preflight to the authorizer in AWS, hunt_journey10 2). Every method but
# OPTIONS: PATCH, which no control route takes, reaches it for its 405 naming those it does.
CONTROL_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")

# Per model, `{name}` is the model; `{version}` stays a path parameter, as in the template.
PREDICT_ROUTES = (
    ("POST", "/models/{name}/predict"),
    ("POST", "/models/{name}/versions/{{version}}/predict"),
    ("POST", "/models/{name}/explain"),
    ("POST", "/v2/models/{name}/explain"),
    ("GET", "/v2/models/{name}"),
    ("GET", "/v2/models/{name}/ready"),
    ("POST", "/v2/models/{name}/infer"),
    ("GET", "/v2/models/{name}/versions/{{version}}"),
    ("GET", "/v2/models/{name}/versions/{{version}}/ready"),
    ("POST", "/v2/models/{name}/versions/{{version}}/infer"),
    ("GET", "/models/{name}/tokenizer"),
    ("GET", "/models/{name}/versions/{{version}}/tokenizer"),
)


def predict_logical_id(model: str) -> str:
    """`Predict&{ModelName}`: the loop's `&{}` keeps only the name's letters and digits."""
    return "Predict" + re.sub(r"[^A-Za-z0-9]", "", model)


def _spec(
    logical_id: str,
    handler: str,
    routes: Iterable[tuple[str, str]] = (),
    environment: dict[str, str] | None = None,
    memory_mb: int = DEFAULT_MEMORY_MB,
    timeout_s: int = DEFAULT_TIMEOUT_S,
) -> FunctionSpec:
    return FunctionSpec(
        logical_id=logical_id,
        handler=handler,
        environment={**GLOBAL_ENVIRONMENT, **(environment or {})},
        routes=[HttpRoute(method, path) for method, path in routes],
        properties={"MemorySize": memory_mb, "Timeout": timeout_s},
    )


def predict_function(model: str, selector: str = DEFAULT_SELECTOR) -> FunctionSpec:
    """The predict function of one model (the template's `Fn::ForEach::Models` body)."""
    return _spec(
        predict_logical_id(model),
        PREDICT_HANDLER,
        [(method, path.format(name=model)) for method, path in PREDICT_ROUTES],
        {
            "AIAAS_MODEL": model,
            "AIAAS_MODEL_SELECTOR": selector,
            "AIAAS_ALIAS_TTL": str(DEFAULT_ALIAS_TTL_S),
        },
    )


def shared_functions() -> dict[str, FunctionSpec]:
    """The functions every stack has, whatever its models."""
    specs = [
        _spec(
            "Health",
            "functions.health.handler.handler",
            [("GET", "/v2/health/live"), ("GET", "/v2/health/ready"), ("GET", "/v2")],
            memory_mb=256,
        ),
        _spec(
            "BatchFunction",
            "functions.batch.handler.handler",
            environment={
                "AIAAS_BATCH_CHUNK_ROWS": "4096",
                "AIAAS_BATCH_SHARD_BYTES": "268435456",
            },
            memory_mb=3008,
            timeout_s=900,
        ),
        _spec(
            "ControlPlane",
            "functions.control.handler.handler",
            [("GET", "/docs"), ("GET", "/openapi.json")]
            + [(method, "/control/{proxy+}") for method in CONTROL_METHODS],
            environment={"AIAAS_ALIAS_TTL": "60"},  # a rollout step's wait on an S3 store
            memory_mb=512,
        ),
        _spec(  # scheduled in the cloud; locally `aiaas invoke DriftJob` runs it
            "DriftJob",
            "functions.drift.handler.handler",
            environment={"AIAAS_DRIFT_WINDOW_SECONDS": "3600", "AIAAS_DRIFT_THRESHOLD": "0.2"},
            memory_mb=512,
            timeout_s=300,
        ),
        _spec(  # a step of the rollout state machine in the cloud; locally `aiaas rollout`
            "RolloutFunction",  # runs the same loop against the gateway's own metrics
            "functions.rollout.handler.handler",
            memory_mb=256,
            timeout_s=60,
        ),
        _spec(  # fed by a log subscription in the cloud; locally `aiaas serve` replays in a
            "ShadowFunction",  # process of its own, and `aiaas invoke` runs this on a log event
            "functions.shadow.handler.handler",
            memory_mb=2048,
            timeout_s=120,
        ),
    ]
    return {spec.logical_id: spec for spec in specs}


def stack_functions(
    models: Iterable[str], selector: str = DEFAULT_SELECTOR
) -> dict[str, FunctionSpec]:
    """Every function of a stack serving these models with this ModelSelector setting."""
    predict: dict[str, FunctionSpec] = {}
    for model in models:
        spec = predict_function(model, selector)
        logical_id, n = spec.logical_id, 1
        while logical_id in predict:  # iris-logistic beside iris_logistic (a store from before
            n += 1  # publish refused such a pair): each served, the later one's id numbered
            logical_id = f"{spec.logical_id}{n}"
        predict[logical_id] = replace(spec, logical_id=logical_id)
    return {**predict, **shared_functions()}


def same_function(model: str, models: Iterable[str]) -> str | None:
    """Another of `models` whose predict function's logical id is `model`'s (names that differ
    only in '-', '_' or '.'), or None: a template's functions need one id each."""
    wanted = predict_logical_id(model)
    return next((m for m in models if m != model and predict_logical_id(m) == wanted), None)
