"""What every control-plane route needs: the registry and job book, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from functions.control.jobs import JobBook
from functions.control.local_runs import local_runs
from functions.runtime.alias_preconditions import Precondition
from functions.runtime.move_reason import checked_reason
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
        jobs = JobBook(store, registry, local_runs(store))
        return cls(store, registry, jobs, settings or RuntimeSettings.from_env())


BODY_REASON = 'a "reason" in the JSON body'
QUERY_REASON = "?reason=TEXT"


def move_reason(plane: ControlPlane, given: str | None, how: str = BODY_REASON) -> str | None:
    """A move's reason as kept (`how`: where the caller gives one, named in a refusal), or a
    400: too long, a control character, or none where AIAAS_REQUIRE_REASON is on."""
    return checked_reason(given, required=plane.settings.require_reason, how=how)


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
    event = _object(request.scope.get("aws.event"))
    context = _object(event.get("requestContext"))
    authorizer = _object(context.get("authorizer"))  # a custom authorizer's may be anything
    iam = _object(authorizer.get("iam"))
    if iam.get("userArn"):
        return _printable(iam["userArn"])
    source = _object(context.get("http")).get("sourceIp") or (
        request.client.host if request.client else "unknown"
    )
    principal = _object(authorizer.get("lambda")).get("principal")
    if principal:  # a Lambda authorizer's context (`aiaas serve --token` sets one)
        return f"{_printable(principal)}@{_printable(source)}"
    claims = _object(_object(authorizer.get("jwt")).get("claims"))
    # `email` only where the issuer verified it: Cognito lets a user change their own, so an
    # unverified one recorded alias moves as made by whoever the user named (security hunt 2).
    verified = str(claims.get("email_verified", "")).lower() == "true"
    for claim in ("email", "cognito:username", "username", "sub"):
        if claims.get(claim) and (claim != "email" or verified):
            issuer = _printable(claims.get("iss", "jwt"))
            return f"{_printable(claims[claim])} ({issuer})"
    return f"unauthenticated@{_printable(source)}"


def _object(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (a string or list was a 500)."""
    return value if isinstance(value, dict) else {}


def _printable(value: object) -> str:
    """`value` as text with control characters escaped: the actor is printed by `aiaas
    versions`, where a newline forged a history line and an ESC drove the terminal."""
    text = str(value)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


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
