"""Request and response bodies of the control plane (they become its OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Unknown fields are an error: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ModelSummary(BaseModel):
    name: str
    versions: int
    latest: str
    aliases: dict[str, str]
    problems: list[str] = []  # registry entries of this model that could not be read


class ModelList(BaseModel):
    models: list[ModelSummary]


class ModelDetail(BaseModel):
    name: str
    versions: list[str]
    aliases: dict[str, str]
    problems: list[str] = []  # registry entries of this model that could not be read


class AliasChange(Strict):
    """Promote: point the alias at this version."""

    version: str = Field(examples=["3"])


class AliasHistoryEntry(BaseModel):
    version: str
    updated_at: str
    updated_by: str


class AliasRecord(BaseModel):
    """An alias, who moved it last and when, and where it pointed before (newest first)."""

    model: str
    alias: str
    version: str
    updated_at: str
    updated_by: str
    history: list[AliasHistoryEntry]


class Deleted(BaseModel):
    deleted: str


class JobSource(Strict):
    """A job whose input is already in the store, under `uploads/` (for files over 6 MB)."""

    source: str = Field(examples=["uploads/2026-01-05.csv"])
    file: str | None = Field(
        default=None, description="name under batch/<model>/input/ (default: the source's name)"
    )


class JobStatus(BaseModel):
    """A job's keys in the store and, once scored, its run summary (counts, timings, errors)."""

    model_config = ConfigDict(extra="allow")

    model: str
    file: str
    input: str
    output: str
    errors: str
    summary: str
    status: str = Field(description="pending, succeeded or failed")


class JobList(BaseModel):
    jobs: list[JobStatus]


class ErrorBody(BaseModel):
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 404, 409, 413, 422)
}
