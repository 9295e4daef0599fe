"""The predict service: one pinned model, both protocols, every error mapped in one place."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from functions.predict import http
from functions.predict.http import HttpRequest, HttpResponse
from functions.predict.routes import PREDICT_ROUTES, match
from functions.predict.telemetry import RequestMetrics, logger
from functions.runtime import names
from functions.runtime.codecs import oip, simple
from functions.runtime.errors import AiaasError, BadRequest, ModelNotFound, ModelUnavailable
from functions.runtime.model import LoadedModel
from functions.runtime.pool import ModelPool, ServedModel
from functions.runtime.registry import ModelRef, Registry, parse_ref
from functions.runtime.store import open_store

SERVER_NAME = "aiaas"
SERVER_VERSION = "0.1.0"
DEFAULT_MAX_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous invocation limit
MAX_TOP_K = 1000

Action = Callable[["PredictService", HttpRequest, dict[str, str]], HttpResponse]


class PredictService:
    """Answers HTTP API v2 events for one model (name + version or alias)."""

    def __init__(self, served: ServedModel, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.served = served
        self.max_payload = max_payload
        self.metrics = RequestMetrics()
        # The formatter directly: Logger.set_correlation_id costs ~4x more per request.
        self._log_keys = logger.registered_formatter
        self._actions: dict[str, Action] = {
            r.action: getattr(type(self), r.action) for r in PREDICT_ROUTES
        }

    # ---- entry --------------------------------------------------------------------------

    def handle(self, event: Mapping[str, Any]) -> HttpResponse:
        """One event in, one response out; never raises."""
        start = time.perf_counter()
        version = "-"
        try:
            request = http.parse_event(event, self.max_payload)
            self._log_keys.append_keys(correlation_id=request.request_id)
            route, params = match(PREDICT_ROUTES, request.method, request.path)
            response = self._actions[route.action](self, request, params)
            loaded = self.served.loaded
            version = loaded.manifest.version if loaded else "-"
        except AiaasError as exc:
            response = self._error(exc)
        except Exception:
            logger.exception("unhandled error")
            response = http.json_response(500, {"error": "internal error"})
        elapsed = time.perf_counter() - start
        self.metrics.record(self.served.name, version, elapsed, response["statusCode"])
        if self.metrics.log_requests:
            logger.info(
                "request", extra={"status": response["statusCode"], "ms": round(elapsed * 1e3, 3)}
            )
        return response

    def _error(self, exc: AiaasError) -> HttpResponse:
        if exc.status >= 500:
            logger.error("request failed: %s", exc.message)
        return http.error_response(exc)

    def warm(self) -> None:
        """Load the model now (container init), so the first request does not pay for it."""
        start = time.perf_counter()
        try:
            model = self.served.current()
        except AiaasError as exc:
            # Stay up: the first request retries and answers 503 with a clear message if it fails.
            logger.warning("model %s not loaded at init: %s", self.served.ref, exc.message)
            return
        self.metrics.cold_start(
            model.manifest.name, model.manifest.version, time.perf_counter() - start
        )

    # ---- helpers ------------------------------------------------------------------------

    def _model(self, params: dict[str, str]) -> LoadedModel:
        name = params["name"]
        if name != self.served.name:  # the served name is valid; anything else is checked
            names.model_name(name)
            raise ModelNotFound(
                f"model {name!r} is not served here; this endpoint serves {self.served.name!r}"
            )
        version = params.get("version")
        if version is None:
            return self.served.current()
        return self.served.version(names.version_name(version))

    # ---- simple JSON --------------------------------------------------------------------

    def predict(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        model = self._model(params)
        top_k = _top_k(request.query.get("top_k"))
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None
        inputs = simple.decode(body, model.manifest)
        outputs = model.predict(inputs, typed=False)
        return http.json_response(200, simple.encode(model.manifest, outputs, top_k))

    # ---- Open Inference Protocol v2 -----------------------------------------------------

    def infer(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        model = self._model(params)
        header = request.header(oip.BINARY_HEADER)
        decoded = oip.decode_request(
            request.body, oip.parse_header_length(header, len(request.body))
        )
        outputs = model.predict(decoded.inputs, typed=True, outputs=decoded.outputs)
        body, json_length = oip.encode_response(model.manifest, decoded, outputs)
        if json_length is None:
            return http.json_response(200, body)
        return http.binary_response(
            200, body, {"inference-header-content-length": str(json_length)}
        )

    def metadata(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        model = self._model(params)
        registry = self.served.pool.registry
        try:
            versions = registry.versions(model.manifest.name)
        except AiaasError:
            versions = [model.manifest.version]
        return http.json_response(200, oip.model_metadata(model.manifest, versions))

    def model_ready(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        try:
            model = self._model(params)
        except ModelUnavailable as exc:
            return http.json_response(503, {"error": exc.public_message, "ready": False})
        return http.json_response(
            200, {"name": model.manifest.name, "version": model.manifest.version, "ready": True}
        )

    def live(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        return http.json_response(200, {"live": True})

    def ready(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        return self.model_ready(request, {"name": self.served.name})

    def server_metadata(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        return http.json_response(
            200,
            {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": ["binary_tensor_data"]},
        )


def _top_k(raw: str | None) -> int:
    if raw is None:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP_K:
        raise BadRequest(f"top_k must be an integer from 1 to {MAX_TOP_K}; got {raw!r}")
    return int(raw)


def model_ref_from_env(env: Mapping[str, str]) -> ModelRef:
    """`AIAAS_MODEL` plus `AIAAS_MODEL_SELECTOR` (`@alias` or `:version`; default: the name's default)."""
    name = env.get("AIAAS_MODEL")
    if not name:
        raise ModelUnavailable(
            "AIAAS_MODEL is not set", public_message="this function has no model configured"
        )
    return parse_ref(name + env.get("AIAAS_MODEL_SELECTOR", ""))


def service_from_env(
    env: Mapping[str, str] | None = None, pool: ModelPool | None = None
) -> PredictService:
    """A service configured the way template.yaml configures the function."""
    env = os.environ if env is None else env
    if pool is None:
        pool = ModelPool(Registry(open_store(env.get("AIAAS_STORE"))))
    ttl = float(env["AIAAS_ALIAS_TTL"]) if env.get("AIAAS_ALIAS_TTL") else None
    served = ServedModel(pool, model_ref_from_env(env), ttl=ttl)
    limit = int(env.get("AIAAS_MAX_PAYLOAD_BYTES") or DEFAULT_MAX_PAYLOAD)
    return PredictService(served, max_payload=limit)
