"""The control-plane FastAPI app: routers, and one error shape (`{"error": ...}`) for all."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from functions.control import (
    batch_api,
    capture_api,
    cards_api,
    compare_api,
    models_api,
    rollouts_api,
)
from functions.control.context import SLASHED, ControlPlane
from functions.control.dataplane_openapi import with_data_plane
from functions.control.docs_page import CSP, docs_html
from functions.control.encoded_body import MAX_INFLATED_BYTES, EncodedBody
from functions.control.head_routes import HeadAsGet, with_head_operations
from functions.runtime.errors import AiaasError, BadRequest, public_answer
from functions.runtime.names import (
    SHOWN_CHARACTERS,
    shown,
    shown_message,
    shown_names,
    shown_path,
)
from functions.runtime.store import ObjectStore, open_store

log = logging.getLogger("aiaas.control")

HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
_QUERIES: dict[str, frozenset[str]] = {}  # a route's query parameters, by its unique id
PROBLEMS_LISTED = 10  # an error names this many problems (unknown fields, ...), then counts

DESCRIPTION = """Manage the model registry and batch jobs of an aiaas deployment.

Promote a version by pointing an alias at it (`PUT /control/models/{name}/aliases/{alias}`);
roll back with `POST .../rollback`. Every alias change records who made it and when.
Predictions themselves are served by each model's own function (`/models/{name}/predict`,
`/v2/models/{name}/infer`).
"""


def create_app(store: ObjectStore | None = None) -> FastAPI:
    """The app over `store` (default: `AIAAS_STORE`)."""
    app = FastAPI(
        title="aiaas control plane",
        version="1",
        description=DESCRIPTION,
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: functions/control/docs_page.py
        openapi_url="/openapi.json",
        redoc_url=None,
        dependencies=[Depends(_known_query)],
    )
    app.openapi = lambda: _document(app)  # type: ignore[method-assign]
    app.add_route("/docs", _docs, include_in_schema=False)
    app.state.control_plane = ControlPlane.on(store if store is not None else open_store())
    app.include_router(models_api.router)
    app.include_router(cards_api.router)
    app.include_router(batch_api.router)
    app.include_router(compare_api.router)
    app.include_router(capture_api.router)
    app.include_router(rollouts_api.router)
    app.add_exception_handler(AiaasError, _aiaas_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_middleware(HeadAsGet)
    app.add_middleware(TrailingSlashIgnored)
    app.add_middleware(EncodedBody, plain_limit=max(MAX_INFLATED_BYTES, batch_api.MAX_UPLOAD_BYTES))
    return app


def _document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of the control plane and the data plane's routes: the whole API."""
    if app.openapi_schema is None:
        app.openapi_schema = with_head_operations(with_data_plane(FastAPI.openapi(app)))
    return app.openapi_schema


async def _docs(request: Request) -> HTMLResponse:
    """The API's page, with nothing to load from outside this server (docs_page.py says why)."""
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
    return HTMLResponse(docs_html(bool(request.scope.get(SLASHED))), headers=headers)


async def _known_query(request: Request) -> None:  # async: no thread hop for a dict lookup
    """A 400 naming each query parameter the route does not take, as the data plane answers:
    FastAPI ignores them, so `?limt=1` listed 100 models as if it had not been sent."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    takes = _QUERIES.get(route.unique_id)
    if takes is None:
        takes = _QUERIES[route.unique_id] = _queries_of(route.dependant)
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in takes]
    if not unknown:
        # None of the routes takes a list: `?limit=5&limit=500` was the last one, silently.
        for name in request.query_params:
            if (times := len(request.query_params.getlist(name))) > 1:
                raise BadRequest(
                    f"query parameter {shown(name)} is given {times} times; give it once"
                )
        return
    listed = shown_names(unknown, PROBLEMS_LISTED)
    raise BadRequest(
        f"unknown query parameter{'s' if len(unknown) > 1 else ''} {listed}: "
        f"{request.method} {_path_of(request)} "
        + (f"takes only {', '.join(sorted(takes))}" if takes else "takes no query parameters")
    )


def _queries_of(dependant: Dependant) -> frozenset[str]:
    """The query parameters of a route's function and of every dependency it has."""
    names = frozenset(param.alias for param in dependant.query_params)
    return names.union(*(_queries_of(sub) for sub in dependant.dependencies))


class TrailingSlashIgnored:
    """`/control/models/` answered as `/control/models`, as the gateway routes `/models/x/predict/`.
    Starlette instead redirected it (a 307 with no body) to `https://<Host>/control/models`: a
    URL `aiaas serve` (plain HTTP) does not answer, and behind a custom domain's base path the
    wrong API; a client that does not follow redirects got an empty answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/", SLASHED: True}
        await self.app(scope, receive, send)


def error_answer(
    message: str, status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The one shape of every control-plane error: `{"error": message}`, the message cut to a
    bounded size (it quotes what the caller sent: a 1 MB label made a 1 MB error)."""
    return JSONResponse({"error": shown_message(message)}, status_code=status, headers=headers)


def _aiaas_error(request: Request, exc: AiaasError) -> JSONResponse:
    if exc.status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    # Busy, and a model not downloaded in time (download_deadline.py): when to try again
    wait = getattr(exc, "retry_after_s", None)
    headers = {"Retry-After": str(wait)} if wait else None
    return error_answer(public_answer(exc), int(exc.status), headers)


def _read_as_json(content_type: str) -> bool:
    """Whether a body of `content_type` is JSON as FastAPI reads it: application/json or
    application/*+json ('text/json' and 'application/x-ndjson' hold 'json' and are not). A body
    with no type is named as such (the 415 says so)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = kind.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    content_type = request.headers.get("content-type", "")
    if not _read_as_json(content_type) and any(e.get("loc") == ("body",) for e in exc.errors()):
        # FastAPI reads a body as JSON only when it says it is: any other is "not a dictionary"
        sent = f"'{content_type}'" if content_type else "no Content-Type"
        return error_answer(
            f"send the body as JSON with 'Content-Type: application/json' ({sent})", 415
        )
    problems = []
    unparsed = False  # a body that is not JSON at all: 400, as the data plane answers it
    for error in exc.errors():
        if error.get("type") == "json_invalid":  # loc is ("body", <character offset>)
            offset = error.get("loc", ("body", "?"))[-1]
            reason = (error.get("ctx") or {}).get("error", "malformed")
            problems.append(f"body is not valid JSON at character {offset}: {reason}")
            unparsed = True
            continue
        problems.append(f"{_where(error.get('loc', ()))}: {error.get('msg', 'invalid')}")
    status = 400 if unparsed else 422
    listed = problems[:PROBLEMS_LISTED]
    if len(problems) > len(listed):  # a body of 200,000 unknown fields: one problem each
        listed.append(f"and {len(problems) - len(listed)} more")
    return error_answer("invalid request: " + "; ".join(listed), status)


def _where(loc: Sequence[object]) -> str:
    """A field's place as a problem names it (`plan.steps.0`); a long part (an unknown field's
    name, a key of `weights`: the caller's own text) quoted and cut as `names.shown` cuts it."""
    parts = [
        part if isinstance(part, str) and len(part) <= SHOWN_CHARACTERS else shown(part)
        for part in loc
        if part != "body"
    ]
    return ".".join(str(part) for part in parts) or "body"


def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 400 and (unparsed := _unparsed_json(exc.__cause__)) is not None:
        return error_answer(f"invalid request: {unparsed}", 400)
    if exc.status_code == 405:
        allowed = ", ".join(_methods_of(request))
        return error_answer(
            f"{request.method} is not allowed on {_path_of(request)}; use {allowed}",
            405,
            headers={"Allow": allowed},
        )
    detail = str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":  # Starlette's: no route matched
        detail = f"no route for {request.method} {_path_of(request)} (see /docs for the routes)"
    return error_answer(detail, exc.status_code, headers=exc.headers)


def _path_of(request: Request) -> str:
    """The path the caller sent, as a message shows it: not `request.url.path`, which Starlette
    rebuilds through urllib, dropping tab, CR and LF (`POST /control/models/m%0a` was "not
    allowed on /control/models/m", hiding the newline that was the caller's mistake)."""
    return shown_path(request.scope["path"])


def _unparsed_json(cause: BaseException | None) -> str | None:
    """What was wrong with a body FastAPI's JSON parser raised on (it answers a bare 400 "There
    was an error parsing the body" for any error but a JSONDecodeError), or None."""
    if isinstance(cause, RecursionError):
        return "body is not valid JSON: nested too deeply (arrays or objects within each other)"
    if isinstance(cause, UnicodeDecodeError):
        return (
            f"body is not valid JSON: not UTF-8 (byte {cause.object[cause.start]:#04x} at "
            f"offset {cause.start})"
        )
    return None


def _methods_of(request: Request) -> list[str]:
    """Every method some route takes on this path: Starlette's 405 names only those of the
    first route whose path matched (`Allow: GET` on an alias that also takes PUT and DELETE)."""
    allowed = [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    if "GET" in allowed and "HEAD" not in allowed:  # HeadAsGet answers it
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return allowed
