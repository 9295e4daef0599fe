"""The predict function's HTTP API v2 adapter: events in, data-plane calls, responses out.

Every error is mapped to a response in one place (`handle`); the answers themselves come from
the transport-free data plane (`functions/runtime/dataplane/`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from functions.predict import http
from functions.predict.caller_ids import caller_ids
from functions.predict.capture import CaptureTap
from functions.predict.http import HttpRequest, HttpResponse
from functions.predict.metric_names import NO_LABEL
from functions.predict.routes import PREDICT_ROUTES, check_query, match
from functions.predict.shadow import CopySink, Later, ShadowTap, sink_from_env
from functions.predict.telemetry import RequestMetrics, logger
from functions.runtime.aside import host_wait_s, long_lived
from functions.runtime.dataplane import model as model_plane
from functions.runtime.dataplane import server as server_plane
from functions.runtime.drift.monitor import DEFAULT_INTERVAL, DriftMonitor
from functions.runtime.errors import AiaasError, InvalidName, ModelUnavailable, ResponseTooLarge
from functions.runtime.model import LoadedModel
from functions.runtime.pool import ModelPool
from functions.runtime.refs import selector_problem
from functions.runtime.registry import DEFAULT_ALIAS, ModelRef, Registry, parse_ref
from functions.runtime.routed import MainNotServed
from functions.runtime.served import ServedModel
from functions.runtime.settings import (
    DEFAULT_EXPLAIN_SECONDS,
    DEFAULT_MAX_PAYLOAD,
    RuntimeSettings,
    env_number,
    max_payload_bytes,
)
from functions.runtime.store import open_store

_NO_PARAMS: dict[str, str] = {}

Action = Callable[["PredictService", HttpRequest, dict[str, str]], HttpResponse]


class PredictService:
    """Answers HTTP API v2 events for one model (name + version or alias)."""

    def __init__(
        self,
        served: ServedModel,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        explain_seconds: float = DEFAULT_EXPLAIN_SECONDS,
        metrics: RequestMetrics | None = None,
        drift: DriftMonitor | None = None,
        shadow_sink: CopySink | None = None,
    ) -> None:
        self.served = served
        self.plane = model_plane.ModelPlane(served, drift)
        self.max_payload = max_payload
        self.explain_seconds = explain_seconds
        self._explain: Any = None  # the explain plane, built on the first explain request
        self.metrics = metrics or RequestMetrics.from_env(os.environ)
        # Copies leave this process (functions/predict/shadow.py): the default sink is chosen
        # from the environment, the one `service_from_env` was given or this process's.
        sink = shadow_sink or sink_from_env(os.environ, self.metrics)
        self.shadow = ShadowTap(self.plane, self.metrics, sink)
        # Off until the model's capture setting says; its counts go out with the metrics.
        # Its writes are waited for in Lambda only (aside.host_wait_s); elsewhere a timer writes
        # the lines a burst left held, with no request after it (aside.long_lived).
        self.capture = CaptureTap(
            served,
            report=self.metrics.capture,
            wait_s=host_wait_s(os.environ),
            timer=long_lived(os.environ),
        )
        served.pool.on_evict = self.metrics.eviction  # counted only when one happens
        served.pool.on_load = self.metrics.version_load  # ... and each load, the first included
        self._actions: dict[str, Action] = {
            r.action: getattr(type(self), r.action) for r in PREDICT_ROUTES
        }
        # The `alias` label of each route's requests: the served ref's alias (a bare name's is
        # production's), '-' for routes pinned to a version (they bypass the split) and for a
        # function serving `name:version`. From the ref, never the caller: bounded.
        ref = served.ref
        alias = NO_LABEL if ref.version else (ref.alias or DEFAULT_ALIAS)
        self._alias_of = {
            r.key: NO_LABEL if "{version}" in r.key else alias for r in PREDICT_ROUTES
        }
        self._alias_of[NO_LABEL] = alias

    # ---- entry --------------------------------------------------------------------------

    def handle(self, event: Mapping[str, Any], later: Later | None = None) -> HttpResponse:
        """One event in, one response out; never raises. `later`: the host runs work given to
        it after the response is handed over (`aiaas serve`); None (Lambda): no such moment."""
        start = time.perf_counter()
        route_key, params, request_id = NO_LABEL, _NO_PARAMS, ""
        request: HttpRequest | None = None
        failed: BaseException | None = None  # a 5xx's cause, logged once the version is known
        try:
            request = http.parse_event(event, self.max_payload)
            request_id = request.request_id
            request.later = later
            route, params = match(PREDICT_ROUTES, request.method, request.path)
            route_key = route.key
            if request.query:
                check_query(PREDICT_ROUTES, route, params, request.path, request.query)
            response = self._actions[route.action](self, request, params)
        except AiaasError as exc:
            if request is None:  # refused while parsing (a 413, bad base64): still labelled
                route_key, params, request_id = _labels_of(event)
            response = http.error_response(exc)
            if exc.status >= 500:
                failed = exc
        except Exception as exc:
            failed = exc
            response = http.json_response(500, {"error": "internal error"})
        # The version routing chose (even when it then failed) is named in the response and
        # counted; else the pinned one once it resolved, else the one answering now.
        routed = request.version if request is not None else None
        version = routed or self._version_label(params.get("version"))
        if version != NO_LABEL:
            response["headers"][http.VERSION_HEADER] = version
        elapsed = time.perf_counter() - start
        status = response["statusCode"]
        alias = self._alias_of.get(route_key, NO_LABEL)
        if routed is None and 400 <= status < 500:
            # Refused before routing picked a version (a 413, an unknown query parameter): not
            # routed by the alias's split, so not a 4xx of the version a rollout judges there
            alias = NO_LABEL  # (the baseline's: its rate was the candidate's room, rev18 4)
        self.metrics.record(self.served.name, version, route_key, status, elapsed, alias)
        if status != 200:  # a refused request writes the lines held long enough too (docs say
            self.capture.buffer.tick()  # any request): only a 200 did, errors kept them held
        if failed is None and not self.metrics.log_requests:
            return response
        # The request's lines: the request line's fields, and the caller's own ids (an
        # ingress's X-Request-ID, a traceparent's trace id) to join its logs with these.
        fields: dict[str, object] = {"model": self.served.name, "version": version}
        fields.update({"route": route_key, "status": status, "request_id": request_id})
        if request is not None:
            fields.update(caller_ids(request.header))
        if failed is not None:
            _log_failure(failed, fields)
        if self.metrics.log_requests:
            logger.info("request", extra={**fields, "ms": round(elapsed * 1e3, 3)})
        return response

    def _version_label(self, pinned: str | None) -> str:
        """The version a request counts for: the pinned one (once it has resolved), else the
        one answering now; '-' when none is loaded or a pinned one never resolved."""
        if pinned is None:
            return self.plane.answering_version
        return pinned if pinned in self.plane.resolved_versions else NO_LABEL

    def warm(self) -> None:
        """Load the model now (container init), so the first request does not pay for it."""
        self.capture.refresh()
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

    # ---- routes: each an HTTP view of one data-plane call ---------------------------------

    def predict(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        model = self._answering(request, params)
        top_k = model_plane.top_k(request.query.get("top_k"))
        answer = self.plane.predict(model, request.body, top_k)
        response = http.json_response(200, answer)
        # After the answer (after the response is sent, where the host has an after): a copy
        # line, replayed outside this process.
        self.shadow.offer(model, request.request_id, request.body, response["body"], request.later)
        self.capture.offer("predict", model, request, response["body"])
        return response

    def infer(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        oip = self.plane.oip  # imported by the first OIP request: not at a cold start
        header = request.header(oip.BINARY_HEADER)
        model = self._answering(request, params)
        decoded, outputs = self.plane.infer_outputs(model, request.body, header)
        body, json_length = oip.encode_response(model.manifest, decoded, outputs)
        if json_length is None:
            response = http.json_response(200, body)
            self.capture.offer("infer", model, request, response["body"])
        else:
            response = http.binary_response(
                200, body, {"inference-header-content-length": str(json_length)}
            )
            self.capture.offer("infer", model, request, None)  # binary tensors: not captured
        self.shadow.offer_infer(
            model, request.request_id, request.body, header, outputs, request.later
        )
        return response

    def _answering(self, request: HttpRequest, params: dict[str, str]) -> LoadedModel:
        try:
            model = self.plane.routed(params["name"], params.get("version"), request.routing_key)
        except MainNotServed as exc:  # named and counted as the version routing chose
            request.version = exc.version
            raise
        request.version = model.manifest.version
        return model

    def explain(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        # The version that answers this caller's predictions explains them (alias splits too).
        model = self._answering(request, params)
        return http.json_response(200, self._explainer().explain_model(model, request.body))

    def explain_v2(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        header = request.header(self.plane.oip.BINARY_HEADER)  # the codec: as `infer`'s
        model = self._answering(request, params)
        doc = self._explainer().explain_model_v2(model, request.body, header)
        return http.json_response(200, doc)

    def _explainer(self) -> Any:
        if self._explain is None:  # predict-only functions never import the explainers
            from functions.runtime.dataplane.explain import ExplainPlane

            self._explain = ExplainPlane(self.plane, self.explain_seconds)
        return self._explain

    def metadata(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        return http.json_response(200, self.plane.metadata(params["name"], params.get("version")))

    def tokenizer(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        # The tokenizer of the version this caller's predictions come from (alias splits too).
        model = self._answering(request, params)
        kind, document = self.plane.tokenizer(model)
        try:
            return http.json_response(200, document, {"x-aiaas-tokenizer": kind})
        except ResponseTooLarge:  # a 250k-token tokenizer.json: "ask for less" would not do
            m = model.manifest
            file = m.preprocessing.get("vocab_file", "tokenizer.json")
            raise ResponseTooLarge(
                f"model {model.ref}'s {file} is {len(document)} bytes, more than a response "
                f"holds ({http.MAX_RESPONSE_BYTES} bytes, AWS Lambda's limit): read it from the "
                f"registry, models/{m.name}/versions/{m.version}/{file}"
            ) from None

    def model_ready(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        ok, doc = self.plane.ready(params["name"], params.get("version"))
        return http.json_response(200 if ok else 503, doc)

    def live(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        return http.json_response(200, server_plane.live())

    def ready(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        return self.model_ready(request, {"name": self.served.name})

    def server_metadata(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        return http.json_response(200, server_plane.server_metadata())


def _labels_of(event: Mapping[str, Any]) -> tuple[str, dict[str, str], str]:
    """(route key, path parameters, request id) of an event `http.parse_event` refused, read
    from its head: its log line and counts name them like any other request's."""
    route_key, params, request_id = NO_LABEL, _NO_PARAMS, ""
    try:
        context = event["requestContext"]
        request_id = str(context.get("requestId", ""))
        method = str(context["http"]["method"]).upper()
        route, params = match(
            PREDICT_ROUTES, method, event.get("rawPath") or context["http"]["path"]
        )
        route_key = route.key
    except (AiaasError, KeyError, TypeError, AttributeError):
        pass  # not an HTTP API event, or no route: '-' as before
    return route_key, params, request_id


def model_ref_from_env(env: Mapping[str, str]) -> ModelRef:
    """`AIAAS_MODEL` plus `AIAAS_MODEL_SELECTOR` (`@alias` or `:version`; default: the name's default)."""
    name = env.get("AIAAS_MODEL")
    if not name:
        raise ModelUnavailable(
            "AIAAS_MODEL is not set", public_message="this function has no model configured"
        )
    selector = env.get("AIAAS_MODEL_SELECTOR", "")
    problem = selector_problem(selector)  # as `aiaas serve --selector` refuses it
    if problem is not None:
        raise InvalidName(f"AIAAS_MODEL_SELECTOR: {problem}")  # a name refused: a 400
    return parse_ref(name + selector)


def service_from_env(
    env: Mapping[str, str] | None = None, pool: ModelPool | None = None
) -> PredictService:
    """A service configured the way template.yaml configures the function: the environment
    is read here, once (runtime settings, the model, the payload limit)."""
    env = os.environ if env is None else env
    settings = RuntimeSettings.from_env(env)
    if pool is None:
        pool = ModelPool(Registry(open_store(settings.store, settings.s3)), settings=settings)
    served = ServedModel(pool, model_ref_from_env(env), ttl=settings.alias_ttl)
    limit = max_payload_bytes(env)
    # Drift histograms flush to the store every this many seconds; 0 turns them off.
    interval = env_number(env, "AIAAS_DRIFT_FLUSH_SECONDS", DEFAULT_INTERVAL)
    # A long-lived server writes them on a timer (a quiet model's last rows an interval after
    # they were served); Lambda at the next request once an interval has passed.
    drift = (
        DriftMonitor(pool.registry.store, interval=interval, timer=long_lived(env))
        if interval > 0
        else None
    )
    metrics = RequestMetrics.from_env(env)
    return PredictService(
        served,
        max_payload=limit,
        explain_seconds=settings.explain_max_seconds,
        metrics=metrics,
        drift=drift,
        shadow_sink=sink_from_env(env, metrics),
    )


def _log_failure(exc: BaseException, fields: dict[str, object]) -> None:
    """A 5xx's one ERROR line, with the fields of the request line: which version (a canary's
    or the stable one's: one function, one log group), route and status, so `stats count() by
    version` needs no `AIAAS_LOG_REQUESTS` (off in the template); an unexpected error with its
    traceback. Never the request body."""
    if isinstance(exc, AiaasError):
        logger.error("request failed: %s", exc.message, extra=fields)
    else:
        logger.error("unhandled error", exc_info=exc, extra=fields)
