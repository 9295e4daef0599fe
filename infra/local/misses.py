"""What "no route" adds for a caller who is close: the methods a path takes, or the models served.

API Gateway answers any request without a route with a bare 404, and so does `aiaas serve`
(the status stays, so clients see what they will see in AWS); locally the message can also say
what to fix, since a mistyped model name or a GET on a POST route is the usual cause.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from functions.runtime import names

SHOWN_MODELS = 20  # a hint, not a catalogue: `aiaas models` lists them all


class RouteLike(Protocol):
    method: str
    parts: tuple[str, ...]

    def match(self, method: str, parts: list[str]) -> dict[str, str] | None: ...


def no_route(routes: Sequence[RouteLike], method: str, path: str) -> str:
    """The 404 message for `method path`, which no route takes."""
    parts = path.strip("/").split("/")
    message = f"no route for {method} {names.shown_path(path)}"  # cut: it was echoed whole
    methods = sorted({r.method for r in routes if r.match(r.method, parts) is not None})
    if methods:
        return f"{message}; this path takes {' or '.join(methods)}"
    asked = _model_asked(parts)
    served = sorted(_served(routes))
    if asked is not None and not names.is_model_name(asked):
        return f"{message}; {names.shown(asked)} is not a model name (use {names.MODEL_RULE})"
    if asked is None or asked in served:
        return message
    shown = ", ".join(served[:SHOWN_MODELS]) + (", ..." if len(served) > SHOWN_MODELS else "")
    return f"{message}; no model {names.shown(asked)} is served here (models: {shown or 'none'})"


def _model_asked(parts: list[str]) -> str | None:
    """What stands for the model name in a /models/NAME/... or /v2/models/NAME/... path."""
    at = 1 if parts[:1] == ["models"] else 2 if parts[:2] == ["v2", "models"] else None
    return parts[at] if at is not None and len(parts) > at and parts[at] else None


def _served(routes: Iterable[RouteLike]) -> set[str]:
    return {
        r.parts[1]
        for r in routes
        if r.parts[:1] == ("models",) and len(r.parts) > 1 and not r.parts[1].startswith("{")
    }
