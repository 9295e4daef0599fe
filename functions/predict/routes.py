"""Route matching: an ordered table of (method, path pattern) -> service method name, with the
query parameters each route takes. A route that runs a model (POST) refuses any other, never
silently ignoring it: a typo (`?topk=3`) would answer a question not asked. A read (GET:
metadata, readiness, health, tokenizer) ignores the others, as Triton and KServe do: a gateway
or client that adds its own (an API key in the query string, tritonclient's `query_params`)
must not make every model "not ready"; `version=` on a read stays a 400 naming the route that
pins a version (ignored, it would answer for another version than the one asked).

Patterns are '/'-separated; `{name}` segments capture. The first match wins, as API Gateway
picks the most specific route and our table has no overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.runtime.errors import BadRequest, MethodNotAllowed, NotFound


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    action: str
    query: frozenset[str] = frozenset()
    key: str = ""  # "POST /models/{name}/predict": the route label of metrics and logs

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.pattern):
            return None
        params: dict[str, str] = {}
        for want, got in zip(self.pattern, parts, strict=True):
            if want.startswith("{"):
                params[want[1:-1]] = got
            elif want != got:
                return None
        return params


def route(method: str, path: str, action: str, query: tuple[str, ...] = ()) -> Route:
    pattern = tuple(path.strip("/").split("/"))
    return Route(method, pattern, action, frozenset(query), f"{method} {path}")


PREDICT_ROUTES: tuple[Route, ...] = (
    route("POST", "/models/{name}/predict", "predict", query=("top_k",)),
    route("POST", "/models/{name}/versions/{version}/predict", "predict", query=("top_k",)),
    route("POST", "/models/{name}/explain", "explain"),
    route("POST", "/v2/models/{name}/infer", "infer"),
    route("POST", "/v2/models/{name}/explain", "explain_v2"),
    route("POST", "/v2/models/{name}/versions/{version}/infer", "infer"),
    route("GET", "/v2/models/{name}", "metadata"),
    route("GET", "/v2/models/{name}/versions/{version}", "metadata"),
    route("GET", "/v2/models/{name}/ready", "model_ready"),
    route("GET", "/v2/models/{name}/versions/{version}/ready", "model_ready"),
    route("GET", "/v2/health/live", "live"),
    route("GET", "/v2/health/ready", "ready"),
    route("GET", "/v2", "server_metadata"),
    route("GET", "/models/{name}/tokenizer", "tokenizer"),
    route("GET", "/models/{name}/versions/{version}/tokenizer", "tokenizer"),
)

# What a read (GET) still refuses, however many others it ignores: each would change its answer.
REFUSED_ON_READS = frozenset({"version"})

# The actions that run a model (the others read its metadata, readiness or tokenizer).
MODEL_ACTIONS = frozenset({"predict", "infer", "explain", "explain_v2"})


def runs_model(route: str) -> bool:
    """Whether `route` (the HTTP API's: "POST /models/m/versions/{version}/predict") runs the
    model; its readiness, metadata and tokenizer do not (`aiaas serve` never holds them back
    behind the model's heavy calls)."""
    method, _, path = route.partition(" ")
    try:
        return _match(PREDICT_ROUTES, method, path)[0].action in MODEL_ACTIONS
    except (NotFound, MethodNotAllowed):  # not a route of the predict function
        return False


MATCH_CACHE_SIZE = 4096
# (id of the table, method, path) -> (the table, route, parameters): a function sees few
# distinct paths, and matching one against every route costs ~1 us a request. The entry holds
# the table, so no other table can take its id while the entry is there.
_matched: dict[tuple[int, str, str], tuple[tuple[Route, ...], Route, dict[str, str]]] = {}


def match(routes: tuple[Route, ...], method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route and path parameters for a request, or NotFound / MethodNotAllowed."""
    key = (id(routes), method, path)
    found = _matched.get(key)
    if found is None:
        found = (routes, *_match(routes, method, path))
        if len(_matched) >= MATCH_CACHE_SIZE:  # scans must not grow it without bound
            _matched.clear()
        _matched[key] = found
    return found[1], dict(found[2])  # a copy: the caller may add to its parameters


def _match(routes: tuple[Route, ...], method: str, path: str) -> tuple[Route, dict[str, str]]:
    parts = path.strip("/").split("/")
    allowed = []
    for candidate in routes:
        params = candidate.match(parts)
        if params is None:
            continue
        if candidate.method == method:
            return candidate, params
        allowed.append(candidate.method)
    if allowed:
        raise MethodNotAllowed(f"{method} is not allowed on {path}; use {' or '.join(allowed)}")
    raise NotFound(f"no route for {method} {path}")


def check_query(
    routes: tuple[Route, ...],
    found: Route,
    params: dict[str, str],
    path: str,
    query: dict[str, str],
) -> None:
    """BadRequest naming each query parameter `found` does not take (`version=` points to the
    route that pins a version): a parameter that is ignored answers a question not asked. A
    read (GET) ignores them but those of REFUSED_ON_READS (the module's docstring says why)."""
    unknown = [name for name in query if name not in found.query]
    if found.method == "GET":
        unknown = [name for name in unknown if name in REFUSED_ON_READS]
    if not unknown:
        return
    listed = ", ".join(repr(name) for name in unknown)
    takes = ", ".join(sorted(found.query))
    message = (
        f"unknown query parameter{'s' if len(unknown) > 1 else ''} {listed}: {found.method} "
        f"{path} {f'takes only {takes}' if takes else 'takes no query parameters'}"
    )
    pinned = _versioned(routes, found) if "version" in unknown else None
    if pinned is not None:
        where = "/".join(_fill(part, params) for part in pinned.pattern)
        message += f"; to use a given version, {pinned.method} /{where}"
    raise BadRequest(message)


def _fill(part: str, params: dict[str, str]) -> str:
    """A pattern segment with this request's parameter in it (`{version}` left for the caller)."""
    return params[part[1:-1]] if part.startswith("{") and part != "{version}" else part


def _versioned(routes: tuple[Route, ...], found: Route) -> Route | None:
    """The route that does what `found` does for a given version, if there is one."""
    for other in routes:
        if other is found or (other.method, other.action) != (found.method, found.action):
            continue
        if tuple(p for p in other.pattern if p not in ("versions", "{version}")) == found.pattern:
            return other
    return None
