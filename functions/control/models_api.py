"""Models, versions and aliases: list, inspect, promote, roll back, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from functions.control.context import Actor, ControlPlane, Plane
from functions.control.schemas import (
    ERRORS,
    AliasChange,
    AliasRecord,
    Deleted,
    ModelDetail,
    ModelList,
    ModelSummary,
    ShadowSpec,
)
from functions.runtime import names
from functions.runtime.errors import NotFound

router = APIRouter(prefix="/control/models", tags=["models"], responses=ERRORS)


@router.get("", response_model=ModelList, summary="List models")
def list_models(plane: Plane) -> ModelList:
    found = []
    for name in plane.registry.models():
        versions = plane.registry.versions(name)
        aliases, problems = plane.registry.alias_report(name)
        found.append(
            ModelSummary(
                name=name,
                versions=len(versions),
                latest=versions[-1],
                aliases=aliases,
                problems=problems,
            )
        )
    return ModelList(models=found)


@router.get("/{name}", response_model=ModelDetail, summary="A model's versions and aliases")
def model_detail(name: str, plane: Plane) -> ModelDetail:
    versions = plane.registry.versions(names.model_name(name))
    aliases, problems = plane.registry.alias_report(name)
    return ModelDetail(name=name, versions=versions, aliases=aliases, problems=problems)


@router.get("/{name}/versions/{version}", summary="One version's manifest")
def version_manifest(name: str, version: str, plane: Plane) -> dict[str, Any]:
    manifest = plane.registry.manifest(names.model_name(name), names.version_name(version))
    return manifest.to_dict()


@router.get(
    "/{name}/aliases/{alias}", response_model=AliasRecord, summary="An alias and its history"
)
def get_alias(name: str, alias: str, plane: Plane) -> AliasRecord:
    return _record(name, alias, _existing(plane, name, alias))


@router.put(
    "/{name}/aliases/{alias}",
    response_model=AliasRecord,
    summary="Promote a version, or send it a share of the requests",
)
def promote(
    name: str,
    alias: str,
    change: AliasChange,
    plane: Plane,
    who: Actor,
) -> AliasRecord:
    name, alias = names.model_name(name), names.alias_name(alias)
    if change.weights is not None:
        record = plane.registry.set_alias_weights(name, alias, change.weights, actor=who)
    else:
        version = names.version_name(change.version)
        record = plane.registry.set_alias(name, alias, version, weight=change.weight, actor=who)
    return _record(name, alias, record)


@router.put(
    "/{name}/aliases/{alias}/shadow",
    response_model=AliasRecord,
    summary="Replay a sample of the alias's requests to a shadow version, after answering them",
)
def set_shadow(name: str, alias: str, shadow: ShadowSpec, plane: Plane, who: Actor) -> AliasRecord:
    name, alias = names.model_name(name), names.alias_name(alias)
    version = names.version_name(shadow.version)
    record = plane.registry.set_shadow(name, alias, version, shadow.sample, actor=who)
    return _record(name, alias, record)


@router.delete(
    "/{name}/aliases/{alias}/shadow", response_model=AliasRecord, summary="Stop shadowing"
)
def remove_shadow(name: str, alias: str, plane: Plane, who: Actor) -> AliasRecord:
    name, alias = names.model_name(name), names.alias_name(alias)
    return _record(name, alias, plane.registry.set_shadow(name, alias, None, actor=who))


@router.post(
    "/{name}/aliases/{alias}/rollback",
    response_model=AliasRecord,
    summary="Roll back to the version the alias pointed at before (or `to`, an earlier one)",
)
def rollback(name: str, alias: str, plane: Plane, who: Actor, to: str | None = None) -> AliasRecord:
    record = plane.registry.rollback(
        names.model_name(name), names.alias_name(alias), to=to, actor=who
    )
    return _record(name, alias, record)


@router.delete("/{name}/aliases/{alias}", response_model=Deleted, summary="Delete an alias")
def delete_alias(name: str, alias: str, plane: Plane) -> Deleted:
    plane.registry.delete_alias(names.model_name(name), names.alias_name(alias))
    return Deleted(deleted=f"{name}@{alias}")


def _existing(plane: ControlPlane, name: str, alias: str) -> dict[str, Any]:
    record = plane.registry.alias_record(names.model_name(name), names.alias_name(alias))
    if record is None:
        plane.registry.versions(name)  # an unknown model reads as such, not as a missing alias
        raise NotFound(f"alias {alias!r} of model {name!r} not found")
    return record


def _record(name: str, alias: str, record: dict[str, Any]) -> AliasRecord:
    return AliasRecord.model_validate({**record, "model": name, "alias": alias})
