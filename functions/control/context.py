"""What every control-plane route needs: the registry and job book, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from functions.control.jobs import JobBook, local_runner
from functions.runtime.alias_preconditions import Precondition
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import ObjectStore

SLASHED = "aiaas.slashed"  # in the scope: the request's path ended in `/` (TrailingSlashIgnored)


@dataclass
class ControlPlane:
    """One store, its registry and its batch jobs; built once per container."""

    store: ObjectStore
    registry: Registry
    jobs: JobBook
    settings: RuntimeSettings = field(default_factory=RuntimeSettings)
    _pool: ModelPool | None = None

    def models(self) -> ModelPool:
        """Loaded model versions (for comparisons), built on first use: most calls need none."""
        if self._pool is None:
            self._pool = ModelPool(self.registry, settings=self.settings)
        return self._pool

    @classmethod
    def on(cls, store: ObjectStore, settings: RuntimeSettings | None = None) -> ControlPlane:
        registry = Registry(store)
        jobs = JobBook(store, registry, local_runner(store))
        return cls(store, registry, jobs, settings or RuntimeSettings.from_env())


def control_plane(request: Request) -> ControlPlane:
    plane: ControlPlane = request.app.state.control_plane
    return plane


def actor(request: Request) -> str:
    """Who makes this change, as API Gateway's authorizer vouched for it.

    Only the authorizer's context is trusted: headers are the caller's to write. `aiaas serve
    --token` sets a Lambda-authorizer context for callers that presented the token. Without an
    authorizer (an open `aiaas serve`, tests) the change is recorded as unauthenticated, with
    the caller's address.
    """
    event: dict[str, Any] = request.scope.get("aws.event") or {}
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    if iam.get("userArn"):
        return str(iam["userArn"])
    source = (context.get("http") or {}).get("sourceIp") or (
        request.client.host if request.client else "unknown"
    )
    principal = (authorizer.get("lambda") or {}).get("principal")
    if principal:  # a Lambda authorizer's context (`aiaas serve --token` sets one)
        return f"{principal}@{source}"
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    for claim in ("email", "username", "cognito:username", "sub"):
        if claims.get(claim):
            issuer = claims.get("iss", "jwt")
            return f"{claims[claim]} ({issuer})"
    return f"unauthenticated@{source}"


def precondition(
    if_match: Annotated[
        str | None, Header(description="move only if the alias's ETag is still this one")
    ] = None,
    if_none_match: Annotated[
        str | None, Header(description="`*`: create the alias only if it does not exist")
    ] = None,
) -> Precondition:
    """The caller's condition on an alias move (412 when it no longer holds), if any."""
    return Precondition(if_match, if_none_match)


# Route parameters: `plane: Plane` and `who: Actor` (FastAPI resolves them per request).
Plane = Annotated[ControlPlane, Depends(control_plane)]
Actor = Annotated[str, Depends(actor)]
When = Annotated[Precondition, Depends(precondition)]


def conditional_get(request: Request, etag: str) -> Response | None:
    """The answer a read's own preconditions call for (RFC 9110 13.1): a 412 when `If-Match`
    names none of the current `etag` (strong comparison), a 304 with no body when
    `If-None-Match` names it (weak), else None: answer in full. Both were ignored: a matching
    `If-None-Match` sent the whole body again, a stale `If-Match` a 200."""
    wanted = request.headers.get("if-match")
    if wanted is not None and wanted.strip() != "*" and etag not in _tags(wanted):
        return JSONResponse(
            {"error": f"If-Match names {wanted.strip()}; it is {etag} now: read it again"},
            status_code=412,
        )
    cached = request.headers.get("if-none-match")
    if cached is not None and (cached.strip() == "*" or _weak(etag) in map(_weak, _tags(cached))):
        return Response(status_code=304, headers={"ETag": etag})
    return None


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _weak(tag: str) -> str:
    return tag.removeprefix("W/")
