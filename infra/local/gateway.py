"""The local API gateway: template routes -> real HTTP API v2.0 events -> the same handlers.

Transport-free: `Gateway.handle(GatewayRequest)` gives a `GatewayResponse`; granian moves the
bytes (server.py, app.py). Like API Gateway HTTP APIs where callers can tell: route selection
(most specific first), payload limit; the event and the response as payload 2.0 has them
(base64 for non-text bodies, header and query folding: payload.py).
"""

from __future__ import annotations

import hmac
import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from functions.predict.routes import runs_model
from functions.runtime.errors import AiaasError
from infra.extras import install_hint
from infra.local.functions import LocalFunction, log_init_failure, warm_groups
from infra.local.loaded_models import LoadedModels
from infra.local.metrics import GatewayMetrics
from infra.local.misses import no_route
from infra.local.open_guard import OpenGuard
from infra.local.paths import UndecodablePath
from infra.local.payload import GatewayRequest, GatewayResponse, build_event, error, to_http
from infra.local.request_ids import request_id

# The payload's names too (payload.py): the tests and handlers' callers import them from here.
__all__ = [
    "Gateway",
    "GatewayRequest",
    "GatewayResponse",
    "build_event",
    "error",
    "request_id",
    "to_http",
]

log = logging.getLogger("aiaas.gateway")

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024  # HTTP APIs reject larger payloads
ROUTE_CACHE_SIZE = 4096
METRICS_PATH = "/metrics"  # Prometheus text format; behind the token like every route
BEARER_PRINCIPAL = "bearer-token-holder"  # who `aiaas serve --token` callers are recorded as


@dataclass
class _Route:
    method: str
    template: str
    parts: tuple[str, ...]
    function: LocalFunction
    specificity: tuple[int, int] = field(init=False)
    # Whether a call may run the function's model: only such a call's answer carries the
    # model's recent time (timing.py), or a readiness/metadata route of a slow model went to a
    # thread. The predict function's routes say which run it; another function that tells its
    # model time (`model_seconds()`) is taken at its word on every route it serves.
    runs_model: bool = field(init=False)

    def __post_init__(self) -> None:
        literals = sum(1 for p in self.parts if not p.startswith("{"))
        self.specificity = (literals, len(self.parts))
        key = f"{self.method} {self.template}"
        self.runs_model = not self.function.is_model or runs_model(key)

    def match(self, method: str, parts: list[str]) -> dict[str, str] | None:
        if self.method not in (method, "ANY"):
            return None
        greedy = self.parts and self.parts[-1].endswith("+}")
        if len(parts) != len(self.parts) and not (greedy and len(parts) >= len(self.parts)):
            return None
        params: dict[str, str] = {}
        for i, want in enumerate(self.parts):
            if want.endswith("+}"):
                params[want[1:-2]] = "/".join(parts[i:])
                return params
            if want.startswith("{"):
                params[want[1:-1]] = parts[i]
            elif want != parts[i]:
                return None
        return params


class Gateway:
    """Routes HTTP requests to local function instances as API Gateway HTTP API would."""

    def __init__(
        self,
        functions: Mapping[str, LocalFunction],
        *,
        token: str | None = None,
        tokens: tuple[str, ...] = (),
        max_body: int = API_GATEWAY_MAX_BODY,
        on_miss: Callable[[str], bool] | None = None,
        metrics: GatewayMetrics | None = None,
        open_guard: OpenGuard | None = None,
    ) -> None:
        # Every token accepted (the one of --token, or AIAAS_API_TOKEN_FILE's, which
        # infra/local/token_file.py swaps in whole on a rotation); None: no auth.
        accepted = (token,) if token is not None else tokens
        self.tokens: tuple[bytes, ...] | None = tuple(t.encode() for t in accepted) or None
        self.metrics = metrics or GatewayMetrics()
        self.open_guard = open_guard  # with no token: what a web page's requests are refused
        self.max_body = max_body
        self.on_miss = on_miss  # rediscover functions (e.g. newly published models) for a path
        self._lock = threading.Lock()
        self._routes: list[_Route] = []
        # (method, path) -> route and parameters: matching every route took ~6 us a request.
        self._found: dict[tuple[str, str], tuple[_Route, dict[str, str]]] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.loaded = LoadedModels.from_env(self.functions)  # AIAAS_SERVE_MAX_MODELS
        self.add_functions(functions)

    def add_functions(self, functions: Mapping[str, LocalFunction]) -> None:
        with self._lock:
            for function in functions.values():
                function.attach(self.metrics, self.loaded)
            self.functions.update(functions)
            routes = [
                _Route(r.method, r.path, tuple(r.path.strip("/").split("/")), fn)
                for fn in self.functions.values()
                for r in fn.spec.routes
            ]
            routes.sort(key=lambda r: r.specificity, reverse=True)
            self._routes = routes
            self._found = {}

    def warm_up(self, others_after_s: float = 1.0, stop: threading.Event | None = None) -> None:
        """Initialise health and the models now (the first `AIAAS_SERVE_MAX_MODELS` if set), the
        rest a moment later (`stop`: the server is stopping, init no more; the order:
        `warm_groups`). The control plane's FastAPI import takes a few hundred ms of CPU: with
        the models it would slow the first predictions down. Failures wait for a request."""
        stop = stop or threading.Event()
        for group in warm_groups(list(self.functions.values()), self.loaded.most):
            for function in itertools.takewhile(lambda _: not stop.is_set(), group):
                try:
                    function.handler  # noqa: B018 - the property runs the function's init
                except Exception as exc:
                    log_init_failure(function.spec.logical_id, exc)
            stop.wait(others_after_s)

    def route(self, method: str, path: str) -> tuple[_Route, dict[str, str]] | None:
        key = (method, path)
        found = self._found.get(key)
        if found is not None:
            return found
        parts = path.strip("/").split("/")
        for candidate in self._routes:
            params = candidate.match(method, parts)
            if params is not None:
                if len(self._found) >= ROUTE_CACHE_SIZE:  # scans must not grow it unbounded
                    self._found.clear()
                self._found[key] = (candidate, params)
                return candidate, params
        return None

    def varies_probe(self, method: str, path: str) -> Callable[[], bool] | None:
        """What tells, before each call of this path, whether the model that will answer it
        may cost more on some request values than on others (infra/local/functions.py); None:
        its route runs no model (or there is no such route)."""
        found = self.route(method, path)
        if found is None:
            return None
        route, params = found
        return route.function.varies_probe(f"{method} {route.template}", params.get("version"))

    def refusal(
        self, headers: list[tuple[str, str]], body_length: int | None, proxied: bool = False
    ) -> GatewayResponse | None:
        """The answer to a request refused on its head alone (token, declared size), else None.

        The HTTP app asks before reading the body: an unauthenticated or oversized request gets
        its 401/413 without the body being read (or a `100 Continue` being sent for it)."""
        if self.tokens is not None and not self._authorized(headers):
            return error(401, "missing or invalid bearer token", [("www-authenticate", "Bearer")])
        guard = self.open_guard
        if self.tokens is None and guard and (why := guard.refusal(headers, proxied)):
            return error(403, why)
        if body_length is not None and body_length > self.max_body:
            return error(413, f"request body is over the {self.max_body} byte limit")
        return None

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        response = self.refusal(request.headers, len(request.body)) or self.dispatch(request)
        if response.route is not None:  # the gateway's own answer (GatewayApp's __call__ too)
            headers = dict(request.headers).get
            self.metrics.refused(response.status, response.route, request.request_id, headers)
        return response

    def dispatch(self, request: GatewayRequest, defer: bool = False) -> GatewayResponse:
        """Route an admitted request to its function (`refusal` already said None). `defer`:
        the caller runs `response.after` once it has sent the response (else the function
        does that work before it answers, as in Lambda)."""
        if request.path == METRICS_PATH and request.method in ("GET", "HEAD"):
            body, content_type = self.metrics.render()
            return GatewayResponse(200, [("content-type", content_type)], body)
        found = self.route(request.method, request.path)
        try:
            if found is None and self.on_miss is not None and self.on_miss(request.path):
                found = self.route(request.method, request.path)
        except AiaasError:  # the store cannot say whether it holds a model published since
            return error(503, "cannot look up new models: the model store is not reachable")
        if found is None:
            return error(404, no_route(self._routes, request.method, request.path))
        route, params = found
        # Past `refusal`, a token was presented: the caller is its holder (an authorizer's say).
        principal = BEARER_PRINCIPAL if self.tokens is not None else None
        after: list[Callable[[], None]] | None = [] if defer else None
        try:
            event = build_event(request, route.method, route.template, params, principal)
            result = route.function.invoke(event, None if after is None else after.append)
        except Exception as exc:
            response = self._failed(route, exc, request.request_id)
            response.route = f"{route.method} {route.template}"
            return response
        response = to_http(result)
        if route.runs_model:  # readiness, metadata: the model's time is not theirs
            response.model_seconds = route.function.model_seconds()
        response.after = after
        return response

    def _failed(self, route: _Route, exc: Exception, request_id: str) -> GatewayResponse:
        """The answer when the path cannot be decoded again (400) or the function raised (502)."""
        if isinstance(exc, UndecodablePath):
            return error(400, str(exc))
        name, ids = route.function.spec.logical_id, {"request_id": request_id}
        if isinstance(exc, AiaasError):
            log.error("%s failed: %s", name, exc.message, extra=ids)
            return error(502, "the function failed to answer")
        hint = install_hint(exc)
        if hint is not None:  # this install lacks an optional extra: not the caller's fault
            log.error("%s cannot run here: %s", name, hint, extra=ids)
            return error(501, f"not available in this installation: {hint}")
        log.exception("%s raised", name, extra=ids)
        return error(502, "the function raised an error")

    def accept_tokens(self, tokens: tuple[bytes, ...]) -> None:
        """These tokens and no others from now on (token_file.py); () refuses every caller."""
        if self.tokens is not None:
            self.tokens = tokens

    def _authorized(self, headers: list[tuple[str, str]]) -> bool:
        """One `Authorization: Bearer <token>` header, compared in constant time with every
        token accepted (all of them, not up to a match: the time says nothing of which one).
        Two headers are refused whatever they hold: a proxy that checks the last one and a
        gateway that checks the first would judge the same request differently (API Gateway
        joins them with a comma, which no token matches)."""
        values = [value for name, value in headers if name.lower() == "authorization"]
        if len(values) != 1:
            return False
        scheme, _, credential = values[0].partition(" ")
        if scheme.lower() != "bearer":
            return False
        presented = credential.strip().encode()
        matched = False
        for token in self.tokens or ():
            matched |= hmac.compare_digest(presented, token)
        return matched
