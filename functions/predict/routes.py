"""Route matching: an ordered table of (method, path pattern) -> service method name.

Patterns are '/'-separated; `{name}` segments capture. The first match wins, as API Gateway
picks the most specific route and our table has no overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.runtime.errors import MethodNotAllowed, NotFound


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    action: str

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


def route(method: str, path: str, action: str) -> Route:
    return Route(method, tuple(path.strip("/").split("/")), action)


PREDICT_ROUTES: tuple[Route, ...] = (
    route("POST", "/models/{name}/predict", "predict"),
    route("POST", "/v2/models/{name}/infer", "infer"),
    route("POST", "/v2/models/{name}/versions/{version}/infer", "infer"),
    route("GET", "/v2/models/{name}", "metadata"),
    route("GET", "/v2/models/{name}/versions/{version}", "metadata"),
    route("GET", "/v2/models/{name}/ready", "model_ready"),
    route("GET", "/v2/models/{name}/versions/{version}/ready", "model_ready"),
    route("GET", "/v2/health/live", "live"),
    route("GET", "/v2/health/ready", "ready"),
    route("GET", "/v2", "server_metadata"),
)


def match(routes: tuple[Route, ...], method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route and path parameters for a request, or NotFound / MethodNotAllowed."""
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
