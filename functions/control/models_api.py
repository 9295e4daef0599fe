"""Models, versions and aliases: list, inspect, promote, roll back, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status

from functions.control.context import (
    QUERY_REASON,
    SLASHED,
    Actor,
    ControlPlane,
    Plane,
    When,
    conditional_get,
    move_reason,
)
from functions.control.paging import MAX_LIMIT, After, limit_of, page
from functions.control.schemas import (
    ERRORS,
    ETAG,
    JSON_BODY,
    NOT_MODIFIED,
    REASON,
    REASON_RULE,
    TAGGED,
    AliasChange,
    AliasRecord,
    AliasTargetState,
    Deleted,
    ModelDetail,
    ModelList,
    ModelSummary,
    RollbackSpec,
    ShadowSpec,
    ShadowState,
)
from functions.runtime import names
from functions.runtime.alias_deleted import deleted_note
from functions.runtime.alias_move_notes import callers_on, moves_said, state_before
from functions.runtime.alias_preconditions import record_bytes, record_etag
from functions.runtime.aliases import AliasTarget, Written
from functions.runtime.catalog import Listed, alias_targets, catalog
from functions.runtime.errors import (
    AiaasError,
    BadRequest,
    Conflict,
    NotFound,
    PreconditionFailed,
)
from functions.runtime.pruning import carry_out, plan_removal
from functions.runtime.refs import alias_key, version_sort_key

router = APIRouter(prefix="/control/models", tags=["models"], responses=ERRORS)
# A move without a body (a DELETE) says why in its query.
Reason = Annotated[
    str | None,
    Query(description=f"why: {REASON_RULE}", json_schema_extra=REASON),
]


@router.get("", response_model=ModelList, summary="List models (in pages)")
def list_models(plane: Plane, after: After = None, limit: int = limit_of(100)) -> ModelList:
    # One walk of the store (a request per 1,000 keys), not two listings a model of the page:
    # a page of 100 of 300 models cost ~235 requests (4-10 s on moto). A folder without a
    # published version (yet) is no model: left out before paging, so a page is full.
    listed = catalog(plane.store)
    after = None if after is None else names.model_name(after)
    chosen, cursor = page(list(listed), after, limit)
    found = [_summary(plane, name, listed[name]) for name in chosen]
    return ModelList(models=found, next=cursor)


@router.get(
    "/{name}", response_model=ModelDetail, summary="A model's versions (in pages) and aliases"
)
def model_detail(
    name: str, plane: Plane, after: After = None, limit: int = limit_of(MAX_LIMIT)
) -> ModelDetail:
    versions = plane.registry.versions(names.model_name(name))
    if after is not None:
        after = names.version_name(after)
    chosen, cursor = page(versions, after, limit, key=version_sort_key)
    targets, problems = alias_targets(plane.registry, name, versions=versions)
    return ModelDetail(
        name=name, versions=chosen, **_aliases(targets), problems=problems, next=cursor
    )


def _summary(plane: ControlPlane, name: str, listed: Listed) -> ModelSummary:
    versions = listed.versions
    targets, problems = alias_targets(plane.registry, name, listed.alias_keys, versions)
    return ModelSummary(
        name=name,
        versions=len(versions),
        latest=versions[-1],
        **_aliases(targets),
        problems=problems,
    )


def _aliases(targets: dict[str, AliasTarget]) -> dict[str, Any]:
    """`aliases` (each one's main version) and `alias_targets` (its split and shadow too: a
    weighted alias read as all of its requests on its main version, and a shadow not at all)."""
    return {
        "aliases": {alias: target.version for alias, target in targets.items()},
        "alias_targets": {
            alias: AliasTargetState(
                version=target.version,
                weights=target.weights(),
                shadow=None
                if target.shadow is None
                else ShadowState(version=target.shadow.version, sample=target.shadow.sample),
            )
            for alias, target in targets.items()
        },
    }


@router.get("/{name}/versions/{version}", summary="One version's manifest")
def version_manifest(name: str, version: str, plane: Plane) -> dict[str, Any]:
    manifest = plane.registry.manifest(names.model_name(name), names.version_name(version))
    return manifest.to_dict(as_stored=True)  # its schema_version as stored: what readers do


@router.delete(
    "/{name}/versions/{version}",
    response_model=Deleted,
    summary="Delete a version: every file, its manifest first (as `aiaas prune`)",
    description="409 naming why when the version is kept: an alias points at it (its canary "
    "or shadow too), a rollback of an alias would go to it, a running rollout uses it, a sharded "
    "batch run in flight pinned it, or it is the latest. Recorded with who deleted it (`models/{name}/pruned.json`); its name is never "
    "published again.",
)
def delete_version(
    name: str,
    version: str,
    plane: Plane,
    who: Actor,
    if_match: Annotated[str | None, Header(description="only `*`: versions carry no ETag")] = None,
) -> Deleted:
    # A stale If-Match deleted anyway (200): a version has no ETag, so no tag can match it.
    if if_match is not None and if_match.strip() != "*":
        raise PreconditionFailed(
            f"If-Match {if_match} cannot hold: a version has no ETag (it never changes); send "
            "no If-Match, or *"
        )
    plan = plan_removal(plane.registry, name, version)
    done = carry_out(plane.registry, plan, who)
    if not done.delete:
        why = done.kept.get(plan.delete[0].version, [])
        if why and why[0].startswith("another prune"):  # a DELETE or prune of it under way
            raise Conflict(f"version {version!r} of model {name!r} is not deleted here: {why[0]}")
        raise Conflict(
            f"version {version!r} of model {name!r} was promoted while it was being deleted; "
            "it is kept"
        )
    return Deleted(deleted=f"{plan.name}:{plan.delete[0].version}")


@router.get(
    "/{name}/aliases/{alias}",
    response_model=AliasRecord,
    summary="An alias and its history",
    responses={**NOT_MODIFIED, **TAGGED},
)
def get_alias(
    name: str, alias: str, plane: Plane, request: Request, response: Response
) -> AliasRecord | Response:
    record, etag = _existing(plane, name, alias)
    if (answered := conditional_get(request, etag)) is not None:
        return answered
    response.headers["ETag"] = etag
    return _record(name, alias, record)


@router.put(
    "/{name}/aliases/{alias}",
    response_model=AliasRecord,
    summary="Promote a version, or send it a share of the requests",
    description="201 when this creates the alias, 200 when it moves it. With `If-Match` (the "
    "ETag a GET gave), a 412 instead when someone moved the alias since.",
    responses={
        **TAGGED,
        201: {
            "model": AliasRecord,
            "description": "Created",
            "headers": {
                **ETAG,
                "Location": {
                    "description": "the alias, relative to this URL",
                    "schema": {"type": "string"},
                },
            },
        },
        412: ERRORS[409],
        **JSON_BODY,
    },
)
def promote(
    name: str,
    alias: str,
    change: AliasChange,
    plane: Plane,
    who: Actor,
    when: When,
    request: Request,
    response: Response,
) -> AliasRecord:
    name, alias = names.model_name(name), names.alias_name(alias)
    reason = move_reason(plane, change.reason)
    before = _target_now(plane, name, alias)  # whose callers this moves, as the CLI reads it
    if change.weights is not None:
        record = plane.registry.set_alias_weights(
            name, alias, change.weights, actor=who, when=when, reason=reason
        )
        moved = AliasTarget.of(record) != before  # the same split again: nothing moved
    else:
        version, written = names.version_name(change.version), Written()
        record = plane.registry.set_alias(
            name,
            alias,
            version,
            weight=change.weight,
            actor=who,
            when=when,
            written=written,
            reason=reason,
        )
        moved = written.written
    # A canary or a split moves a share of the callers: said as a whole move is (leftovers2 2)
    said = _move_warnings(plane, name, alias, before, record) if moved else []
    if when.existed is False:  # nothing before it (a corrupt record is replaced: a 200)
        response.status_code = status.HTTP_201_CREATED
        # The alias is the request's own URL: said relative to it, as the client sent it (behind
        # a proxy's path prefix or a stage, `/control/...` named another URL, or none).
        response.headers["Location"] = "." if request.scope.get(SLASHED) else alias
    answer = _moved(name, alias, record, response)
    return answer.model_copy(update={"warnings": said}) if said else answer


def _target_now(plane: ControlPlane, name: str, alias: str) -> AliasTarget | None:
    """Where the alias points before a move (None: no record, or one the move replaces)."""
    try:
        return plane.registry.alias_target(name, alias)
    except AiaasError:  # a corrupt record (the move replaces it) or a store refusing the read
        return None


def _move_warnings(
    plane: ControlPlane,
    name: str,
    alias: str,
    before: AliasTarget | None,
    record: dict[str, Any],
) -> list[str]:
    """What a move from `before` to `record` changes for the callers moved, said as `aiaas
    promote` says it: a version reading the features in another order (rev14 2: a rollout or
    canary of it is refused), or a text model's reading token ids as other tokens (its
    tokenizers read only when the manifests record different files)."""
    registry = plane.registry
    try:
        now = callers_on(registry, name, alias, AliasTarget.of(record))
    except AiaasError:  # a note, never a reason to fail the move
        return []
    was = callers_on(registry, name, alias, before)
    return [line.removeprefix("warning: ") for line in moves_said(registry, name, was, now)]


@router.put(
    "/{name}/aliases/{alias}/shadow",
    response_model=AliasRecord,
    summary="Replay a sample of the alias's requests to a shadow version, after answering them",
    responses={**JSON_BODY, **TAGGED},
)
def set_shadow(
    name: str,
    alias: str,
    shadow: ShadowSpec,
    plane: Plane,
    who: Actor,
    when: When,
    response: Response,
) -> AliasRecord:
    name, alias = names.model_name(name), names.alias_name(alias)
    version, reason = names.version_name(shadow.version), move_reason(plane, shadow.reason)
    record = plane.registry.set_shadow(
        name, alias, version, shadow.sample, actor=who, when=when, reason=reason
    )
    return _moved(name, alias, record, response)


@router.delete(
    "/{name}/aliases/{alias}/shadow",
    response_model=AliasRecord,
    summary="Stop shadowing",
    responses=TAGGED,
)
def remove_shadow(
    name: str,
    alias: str,
    plane: Plane,
    who: Actor,
    when: When,
    response: Response,
    reason: Reason = None,
) -> AliasRecord:
    name, alias = names.model_name(name), names.alias_name(alias)
    why = move_reason(plane, reason, QUERY_REASON)
    record = plane.registry.set_shadow(name, alias, None, actor=who, when=when, reason=why)
    return _moved(name, alias, record, response)


@router.post(
    "/{name}/aliases/{alias}/rollback",
    response_model=AliasRecord,
    summary="Roll back to the version the alias pointed at before (or `to`, an earlier one)",
    responses={**JSON_BODY, **TAGGED},
)
def rollback(
    name: str,
    alias: str,
    plane: Plane,
    who: Actor,
    when: When,
    response: Response,
    to: str | None = None,
    body: RollbackSpec | None = None,
) -> AliasRecord:
    # `{"to": "2"}` in the body was ignored (any body was), and the alias rolled back to the
    # version before: a caller naming a version in both places must name the same one.
    if body is not None and body.to is not None:
        if to is not None and to != body.to:
            raise BadRequest(
                f"rollback names two versions: ?to={to} and a body's to {names.shown(body.to)}"
            )
        to = body.to
    name, written = names.model_name(name), Written()
    reason = move_reason(plane, None if body is None else body.reason)
    record = plane.registry.rollback(
        name, names.alias_name(alias), to=to, actor=who, when=when, written=written, reason=reason
    )
    # A whole move, as a PUT without a weight: said as the CLI's rollback says it (rev15 5)
    before = state_before(record)
    said = _move_warnings(plane, name, alias, before, record) if written.written else []
    answer = _moved(name, alias, record, response)
    return answer.model_copy(update={"warnings": said}) if said else answer


@router.delete(
    "/{name}/aliases/{alias}",
    response_model=Deleted,
    summary="Delete an alias (recorded: a rollback restores it)",
    description="Who deleted it, when and where it pointed are kept (its GET's 404 says so) "
    "and `POST .../rollback` points it back there; promoting it again carries its history on. "
    "409 while a rollout drives the alias, and for `production` unless `?force=true`: without "
    "it a bare model name serves the newest published version, for every caller at once.",
)
def delete_alias(
    name: str,
    alias: str,
    plane: Plane,
    who: Actor,
    when: When,
    force: bool = False,
    reason: Reason = None,
) -> Deleted:
    name, alias = names.model_name(name), names.alias_name(alias)
    why = move_reason(plane, reason, QUERY_REASON)
    if not plane.registry.store.exists(alias_key(name, alias)):
        plane.registry.versions(name)  # an unknown model reads as such, as GET says it
    plane.registry.delete_alias(name, alias, actor=who, when=when, force=force, reason=why)
    return Deleted(deleted=f"{name}@{alias}")


def _existing(plane: ControlPlane, name: str, alias: str) -> tuple[dict[str, Any], str]:
    found = plane.registry.alias_record_tagged(names.model_name(name), names.alias_name(alias))
    if found is None:
        plane.registry.versions(name)  # an unknown model reads as such, not as a missing alias
        raise NotFound(deleted_note(plane.store, name, alias))
    return found


def _moved(name: str, alias: str, record: dict[str, Any], response: Response) -> AliasRecord:
    """The alias as this move wrote it, with the ETag a next `If-Match` names."""
    response.headers["ETag"] = record_etag(record_bytes(record))
    return _record(name, alias, record)


def _record(name: str, alias: str, record: dict[str, Any]) -> AliasRecord:
    return AliasRecord.model_validate({**record, "model": name, "alias": alias})
