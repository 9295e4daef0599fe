"""The data plane's routes in the API's one OpenAPI document (`/openapi.json`).

The control plane serves the document for the whole HTTP API, but FastAPI lists only its own
routes: `/models/{name}/predict`, the Open Inference Protocol routes and health were missing, so
a client generated from the document (or schemathesis run from it) never saw the routes most
callers use. Each model's own function answers them (`functions/predict`, `functions/health`);
this module describes what they take and answer, and `with_data_plane` adds it to FastAPI's.
The names in paths follow `functions.runtime.names`: a name outside its rule is a 400.
"""

from __future__ import annotations

import copy
from typing import Any

from functions.control import batch_api, cards_api
from functions.runtime import dtypes, names

ERROR = {"$ref": "#/components/schemas/ErrorBody"}
# The status codes any data-plane route may answer with the error shape (README "Calling a
# model"): 401 without the token, 404 unknown model or version, 500 a model's own failure,
# 503 model not loadable, 504 past the function's Timeout.
_ERRORS = {
    "400": "malformed body or unknown query parameter",
    "404": "unknown model or version",
    "413": "payload over AIAAS_MAX_PAYLOAD_BYTES, or an answer over 6 MB",
    "415": "a Content-Type or Content-Encoding that is not taken",
    "422": "inputs that do not fit the model",
    # Documented in the README and docs/oip.md, and not in this document before (api hunt).
    "500": "the model failed on inputs that fit it, or answered NaN or infinity for them",
    "503": "model not loadable",
    "504": "the function did not answer within its Timeout",
}


def _pattern(rule: str) -> str:
    return "^" + rule + "$"


# Their patterns and rules in words: `_name_rules`, as for the control plane's names.
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
TOP_K = {
    "name": "top_k",
    "in": "query",
    "required": False,
    "description": "classes per prediction, highest score first",
    # dataplane.model.MAX_TOP_K (not imported: it would load onnxruntime into the control plane)
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
}

SCHEMAS: dict[str, Any] = {
    "PredictRequest": {
        "type": "object",
        "description": "`inputs`: rows, a text or texts, or {input name: rows}; `instances`: "
        "rows or records {feature: value}",
        "properties": {
            "inputs": {"anyOf": [{"type": "array"}, {"type": "object"}, {"type": "string"}]},
            "instances": {"type": "array"},
            # TF-Serving's and Vertex AI's clients send these; taken when they ask nothing
            "signature_name": {"const": "serving_default"},
            "parameters": {"type": "object", "maxProperties": 0},
            "outputs": False,  # every output is answered: outputs are named on /v2 infer
        },
        # ?top_k is a query parameter: in the body (any case, - or _) a 400, as is a key one
        # letter off top_k, parameters, outputs or signature_name (body_refusals.py); any
        # other key is the caller's own (an id, notes: captured unless denied)
        "patternProperties": {"^[Tt][Oo][Pp][-_]?[Kk]$": False},
        "oneOf": [{"required": ["inputs"]}, {"required": ["instances"]}],  # exactly one: a 400
    },
    "ExplainRequest": {
        "type": "object",
        "description": 'a predict body, with `parameters`: {"samples": N, "patch": P}',
        "properties": {
            "inputs": {"anyOf": [{"type": "array"}, {"type": "object"}, {"type": "string"}]},
            "instances": {"type": "array"},
            "parameters": {"type": "object"},
        },
        "patternProperties": {"^[Tt][Oo][Pp][-_]?[Kk]$": False},
        "oneOf": [{"required": ["inputs"]}, {"required": ["instances"]}],
    },
    "PredictResponse": {
        "type": "object",
        "required": ["model", "version", "outputs"],
        "properties": {
            "model": {"type": "string"},
            "version": {"type": "string"},
            "outputs": {"type": "object"},
            "predictions": {"type": "array"},
        },
    },
    "Explanation": {"type": "object"},
    "TokenizerJson": {"type": "object", "description": "the model's Hugging Face tokenizer.json"},
    "ServerLive": {
        "type": "object",
        "required": ["live"],
        "properties": {"live": {"type": "boolean"}},
    },
    "Tensor": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {
                "type": "string",
                "enum": sorted(dtypes.BY_OIP),
            },
            "parameters": {"type": "object"},
            "data": {"type": "array"},
        },
    },
    "InferenceRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Tensor"},
                "minItems": 1,  # none is a 400
            },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                },
            },
        },
    },
    "InferenceResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
        },
    },
    "ModelMetadata": {
        "type": "object",
        "required": ["name", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array"},
            "outputs": {"type": "array"},
            "parameters": {"type": "object"},
        },
    },
    "ModelReady": {
        "type": "object",
        "required": ["ready"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "ready": {"type": "boolean"},
        },
    },
    "ServerMetadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _operation(
    tag: str,
    summary: str,
    answer: str,
    body: str | None = None,
    params: tuple[Any, ...] = (NAME,),
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": _json(answer)}}
    if body == "InferenceRequest":  # the binary tensor extension, when the request asks for it
        responses["200"]["content"]["application/octet-stream"] = BINARY
        responses["200"]["headers"] = {BINARY_HEADER["name"]: BINARY_ANSWER_HEADER}
    if body is not None:  # a model route that runs a version (pinned, or an alias's pick)
        params = (*params, ROUTING_KEY) if VERSION not in params else params
        responses["200"].setdefault("headers", {})[VERSION_HEADER] = ANSWERED_BY
    for status, why in _ERRORS.items():
        responses[status] = {"description": why, "content": {"application/json": {"schema": ERROR}}}
    operation: dict[str, Any] = {
        "tags": [tag],
        "summary": summary,
        "operationId": summary.lower().replace(" ", "_"),
        "parameters": list(params),
        "responses": responses,
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    if body == "InferenceRequest":  # binary tensors: JSON header, then the data, one body
        operation["requestBody"]["content"]["application/octet-stream"] = BINARY
        operation["parameters"].append(BINARY_HEADER)
    return operation


# What a client needs to send and read that the document did not say (journey15 hunt: a client
# generated from it could not send OIP's binary tensors, though it documented their answer,
# nor keep a caller on one version of a split alias): functions/predict/http.py's headers.
BINARY = {"schema": {"type": "string", "format": "binary"}}
BINARY_HEADER = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "required": False,
    "description": "with an application/octet-stream body: the bytes of its JSON header, the "
    "binary tensors following it (OIP's binary tensor extension, docs/oip.md)",
    "schema": {"type": "integer", "minimum": 0},
}
BINARY_ANSWER_HEADER = {
    "description": "on an application/octet-stream answer: the bytes of its JSON header",
    "schema": {"type": "integer"},
}
ROUTING_KEY = {
    "name": "x-aiaas-routing-key",
    "in": "header",
    "required": False,
    "description": "keeps a caller on one version of an alias split between two "
    "(docs/rollout.md); without it the caller's identity decides",
    "schema": {"type": "string"},
}
VERSION_HEADER = "x-aiaas-version"
ANSWERED_BY = {"description": "the version that answered", "schema": {"type": "string"}}


def _model_routes() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for prefix, pinned in (("", ""), ("/versions/{version}", " of a version")):
        params = (NAME, VERSION) if pinned else (NAME,)
        simple, oip = f"/models/{{name}}{prefix}", f"/v2/models/{{name}}{prefix}"
        predict = _operation(
            "predict", f"Predict{pinned}", "PredictResponse", "PredictRequest", (*params, TOP_K)
        )
        paths[f"{simple}/predict"] = {"post": predict}
        tokenizer = _operation("predict", f"Tokenizer{pinned}", "TokenizerJson", None, params)
        paths[f"{simple}/tokenizer"] = {"get": tokenizer}
        metadata = _operation("oip", f"Model metadata{pinned}", "ModelMetadata", None, params)
        paths[oip] = {"get": metadata}
        ready = _operation("oip", f"Model ready{pinned}", "ModelReady", None, params)
        paths[f"{oip}/ready"] = {"get": ready}
        infer = _operation("oip", f"Infer{pinned}", "InferenceResponse", "InferenceRequest", params)
        paths[f"{oip}/infer"] = {"post": infer}
    explain = _operation("explain", "Explain", "Explanation", "ExplainRequest")
    paths["/models/{name}/explain"] = {"post": explain}
    explain_oip = _operation("explain", "Explain OIP", "Explanation", "InferenceRequest")
    paths["/v2/models/{name}/explain"] = {"post": explain_oip}
    return paths


def _health_routes() -> dict[str, Any]:
    return {
        "/v2/health/live": {"get": _operation("health", "Server live", "ServerLive", None, ())},
        "/v2/health/ready": {"get": _operation("health", "Server ready", "ModelReady", None, ())},
        "/v2": {"get": _operation("health", "Server metadata", "ServerMetadata", None, ())},
    }


# Every route of the API needs the bearer token once `aiaas serve --token` (or a JWT authorizer in
# AWS) is set; without one it is open (loopback) or signed with SigV4 (AWS_IAM, the default).
BEARER = {"type": "http", "scheme": "bearer", "description": "`aiaas serve --token T`, or a JWT"}
UNAUTHORIZED = {
    "description": "missing or wrong bearer token",
    "content": {"application/json": {"schema": ERROR}},
}

# encoded_body.EncodedBody answers a body of these methods sent with a Content-Encoding other
# than gzip or deflate a 415, on every control route: the ones without a JSON body (a job's
# upload, a DELETE) did not list it, so a client generated from the document had no case for it.
ENCODED_BODY_METHODS = ("delete", "patch", "post", "put")
UNSUPPORTED_ENCODING = {
    "description": "a Content-Encoding other than gzip or deflate",
    "content": {"application/json": {"schema": ERROR}},
}


# A path parameter's rule (FastAPI's document said only "string", so a client or a fuzzer could
# not tell that `/control/models/My Model` is a 400): the pattern, and the rule in words.
NO_DOTS = names.NO_DOTS  # no `..` anywhere, as names.py and the card route refuse it
RULES = {
    "name": (NO_DOTS + names.MODEL_PATTERN, names.MODEL_RULE),
    "model": (NO_DOTS + names.MODEL_PATTERN, names.MODEL_RULE),
    "version": (NO_DOTS + names.VERSION_PATTERN, names.VERSION_RULE),
    "alias": (names.ALIAS_PATTERN, names.ALIAS_RULE),
    "card file": (NO_DOTS + cards_api.CARD_FILE.pattern, cards_api.CARD_FILE_RULE),
    # names.job_file_name: '/'-separated parts of 1-255 characters, none '.', '..' or a temp name
    "file": (names.JOB_FILE_PATTERN, names.JOB_FILE_RULE),
}


def _name_rules(path: str, parameters: Any) -> None:
    for parameter in parameters:
        rule = (
            "card file" if parameter["name"] == "file" and "/card/" in path else parameter["name"]
        )
        if parameter["in"] == "path" and rule in RULES:
            pattern, words = RULES[rule]
            parameter["schema"]["pattern"] = _pattern(pattern)
            if rule == "file":  # the whole key batch/<model>/input/<file>: 1024 at most
                parameter["schema"]["maxLength"] = names.MAX_JOB_FILE if "/batch/" in path else 1024
            parameter.setdefault("description", words)


def with_data_plane(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (FastAPI's, of the control plane) with the data plane's routes and schemas,
    and the bearer token every route then needs (a 401 without it): the whole API."""
    ours = copy.deepcopy({**_model_routes(), **_health_routes()})  # NAME etc. are shared
    document["paths"] = {**ours, **document["paths"]}
    document["components"]["schemas"].update(SCHEMAS)
    document["components"]["securitySchemes"] = {"bearer": BEARER}
    document["security"] = [{"bearer": []}, {}]
    for path, route in document["paths"].items():
        for method, operation in route.items():
            operation["responses"].setdefault("401", UNAUTHORIZED)
            if path.startswith("/control/") and method in ENCODED_BODY_METHODS:
                operation["responses"].setdefault("415", UNSUPPORTED_ENCODING)
            _name_rules(path, operation.get("parameters", ()))
            for parameter in operation.get("parameters", ()):
                if parameter["name"] == "after":  # a page's `next`: an empty one is a 400
                    _after_rule(path, parameter["schema"]["anyOf"][0])
    return document


# What a page of each list is of: its `after` is one of them, and one outside the rule a 400.
# A job list's is any text (batch_api.MAX_AFTER): it lists the names no run takes, too.
AFTER = {
    "/control/models": "name",
    "/control/models/{name}": "version",
}
AFTER_LENGTH = {"/control/batch/{model}/jobs": batch_api.MAX_AFTER}


def _after_rule(path: str, schema: dict[str, Any]) -> None:
    schema["minLength"] = 1
    if path in AFTER:
        pattern, _ = RULES[AFTER[path]]
        schema["pattern"] = _pattern(pattern)
    if path in AFTER_LENGTH:
        schema["maxLength"] = AFTER_LENGTH[path]
