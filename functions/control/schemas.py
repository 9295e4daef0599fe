"""Request and response bodies of the control plane (they become its OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictFloat,
    StrictInt,
    model_serializer,
    model_validator,
)

from functions.runtime import names
from functions.runtime.move_reason import MAX_REASON, REQUIRE_REASON_ENV

# A version a body names, as `names.version_name` checks it (documented; the check decides).
VERSION_NAME: dict[str, Any] = {"pattern": f"^{names.NO_DOTS}{names.VERSION_PATTERN}$"}


# Why a move is made, as move_reason.checked_reason takes it (documented; the check decides: a
# 400 saying what to fix, where a schema's 422 would not name the flag that asks for one).
REASON_RULE = (
    f"one line of printable text, at most {MAX_REASON} characters (a 400 otherwise); kept as "
    f"`reason` in the alias history; required (a 400 without it) where {REQUIRE_REASON_ENV} is on"
)
REASON: dict[str, Any] = {"maxLength": MAX_REASON, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}


def reason_field(what: str) -> Any:
    """A body's `reason`: why `what`."""
    return Field(
        default=None,
        examples=["CHG-1234: fixes false declines"],
        description=f"why {what}: {REASON_RULE}",
        json_schema_extra=REASON,
    )


def store_key_under(prefix: str) -> dict[str, Any]:
    """The OpenAPI pattern of a store key under `prefix` (a regex ending in '/'), as
    `names.store_key` checks a key a caller names whole: documentation; the check decides."""
    return {"pattern": f"^{prefix}{names.STORE_KEY_PATTERN}$", "maxLength": 1024}


class Strict(BaseModel):
    """Unknown fields are an error: a typo must not be silently ignored. Numbers are typed
    StrictFloat / StrictInt: lax pydantic took `true` for 1 (`{"sample": true}` captured every
    request) and "0.5" for 0.5, where the OpenAPI document says a number."""

    model_config = ConfigDict(extra="forbid")


def _integral(value: Any) -> Any:
    """5838.0 as 5838 (JSON Schema's integer, and what a client's float serialises to: it
    was refused as "Input should be a valid integer"); true, "5" and 5838.5 stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A count in a body: StrictInt, but a number with a zero fraction is one too.
Count = Annotated[StrictInt, BeforeValidator(_integral)]


class ShadowState(BaseModel):
    """An alias's shadow as its record holds it."""

    version: str
    sample: float


class AliasTargetState(BaseModel):
    """Where an alias sends requests: its main version, a split's weights, its shadow."""

    version: str
    weights: dict[str, float] | None = None
    shadow: ShadowState | None = None


TARGETS: Any = Field(
    default_factory=dict,
    description="each alias's whole target: `aliases` names only the main version, so a split "
    "alias (or its shadow) read as all of its requests on that one",
)


class ModelSummary(BaseModel):
    name: str
    versions: int
    latest: str
    aliases: dict[str, str]
    alias_targets: dict[str, AliasTargetState] = TARGETS
    problems: list[str] = []  # registry entries of this model that could not be read


class ModelList(BaseModel):
    models: list[ModelSummary]
    next: str | None = Field(
        default=None, description="more follow: pass this as `after` for the next page"
    )


class ModelDetail(BaseModel):
    name: str
    versions: list[str]
    aliases: dict[str, str]
    alias_targets: dict[str, AliasTargetState] = TARGETS
    problems: list[str] = []  # registry entries of this model that could not be read
    next: str | None = Field(
        default=None, description="more follow: pass this as `after` for the next page"
    )


class AliasChange(Strict):
    """Promote: point the alias at `version`; with `weight`, send only that share of its
    requests there and the rest to the version it points at now. Or set the split directly
    with `weights` (at most two versions, adding up to 1)."""

    # The two forms, documented (`one_form` decides): a null stands for an absent field.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["version"],
                    "properties": {"version": {"type": "string"}, "weights": {"type": "null"}},
                },
                {
                    "required": ["weights"],
                    "properties": {
                        "weights": {"type": "object"},
                        "version": {"type": "null"},
                        "weight": {"type": "null"},
                    },
                },
            ]
        },
    )
    version: str | None = Field(default=None, examples=["3"], json_schema_extra=VERSION_NAME)
    weight: StrictFloat | None = Field(
        default=None,
        examples=[0.1],
        description="the share of requests for `version`, from 1e-06 to 0.999999 (weights are "
        "kept to 6 places)",
        json_schema_extra={"minimum": 1e-6, "maximum": 0.999999},  # as the registry checks it
    )
    weights: dict[str, StrictFloat] | None = Field(
        default=None,
        examples=[{"1": 0.9, "2": 0.1}],
        json_schema_extra={"propertyNames": VERSION_NAME},
    )
    reason: str | None = reason_field("the alias moves")

    @model_validator(mode="after")
    def one_form(self) -> Self:
        if (self.version is None) == (self.weights is None):
            raise ValueError("give either version (and optionally weight) or weights")
        if self.weight is not None and self.version is None:
            raise ValueError("weight is the share of version: give version too")
        return self


class RollbackSpec(Strict):
    """Where to roll back to: `to`, an earlier version; absent, the version before."""

    to: str | None = Field(default=None, examples=["2"], json_schema_extra=VERSION_NAME)
    reason: str | None = reason_field("the alias is rolled back")


class ShadowSpec(Strict):
    """A version that gets a copy of `sample` of the alias's requests after they are answered
    (it answers no caller); its agreement with the served version is recorded as metrics."""

    version: str = Field(examples=["2"], json_schema_extra=VERSION_NAME)
    sample: StrictFloat = Field(
        default=1.0,
        examples=[0.2],
        description="share of requests copied, from 1e-06 (one in a million) to 1",
        json_schema_extra={"minimum": 1e-6, "maximum": 1},  # documented; checked later
    )
    reason: str | None = reason_field("the shadow is set")


def _unrecorded(what: str) -> Any:
    """An alias's time or actor: a record written by hand may lack it (the registry reads such
    a record leniently, functions/runtime/alias_record.py). Required, it made every answer about
    the alias a plain-text 500, a PUT or rollback that had moved the alias included."""
    return Field(default=None, description=f"{what} (null: not recorded)")


class AliasHistoryEntry(BaseModel):
    version: str
    weights: dict[str, float] | None = None
    shadow: ShadowState | None = None
    updated_at: str | None = _unrecorded("when the alias was moved here")
    updated_by: str | None = _unrecorded("who moved it")
    reason: str | None = _unrecorded("why, as whoever moved it said")
    deleted_at: str | None = Field(default=None, description="when the alias was then deleted")
    deleted_by: str | None = Field(default=None, description="who deleted it")
    deleted_reason: str | None = Field(default=None, description="why, as they said (null: not)")


class AliasRecord(BaseModel):
    """An alias, who moved it last and when, and where it pointed before (newest first)."""

    model: str
    alias: str
    version: str
    weights: dict[str, float] | None = Field(
        default=None, description="when the alias splits traffic: each version's share"
    )
    shadow: ShadowState | None = Field(
        default=None, description="the version replayed a sample of the requests, if any"
    )
    updated_at: str | None = _unrecorded("when the alias was moved here")
    updated_by: str | None = _unrecorded("who moved it")
    reason: str | None = _unrecorded("why, as whoever moved it said")
    rolled_back: bool | None = Field(
        default=None,
        description="true when a rollback (a rollout's included) made this move: a plain "
        "rollback of it within 60 s is a 409, except its own actor's retry (null: another move)",
    )
    history: list[AliasHistoryEntry] = []
    warnings: list[str] | None = Field(
        default=None,
        description="what this move changes for the callers it moves (all of them, or a "
        "canary's or split's share), said, not refused: a version reading the features in "
        "another order than the one the alias served, or a text model's reading token ids as "
        "other tokens (clients that tokenize themselves get wrong answers) (null: nothing to say)",
    )


class Deleted(BaseModel):
    deleted: str


class JobSource(Strict):
    """A job whose input is already in the store, under `uploads/` (for files over 6 MB)."""

    source: str = Field(
        examples=["uploads/2026-01-05.csv"],
        description=f"a key under uploads/: {names.STORE_KEY_RULE}",
        json_schema_extra=store_key_under("uploads/"),
    )
    file: str | None = Field(
        default=None,
        description="name under batch/<model>/input/ (default: the source's name): "
        f"{names.JOB_FILE_RULE}; the whole key 1024 at most",
        json_schema_extra={
            "pattern": f"^{names.JOB_FILE_PATTERN}$",
            "maxLength": names.MAX_JOB_FILE,
        },
    )


class JobStatus(BaseModel):
    """A job's keys in the store and, once scored, its run summary (counts, timings, errors)."""

    model_config = ConfigDict(extra="allow")

    model: str
    file: str
    input: str
    output: str | None = Field(default=None, description="absent for a refused input")
    errors: str | None = Field(default=None, description="absent for a refused input")
    summary: str | None = Field(default=None, description="absent for a refused input")
    status: str = Field(
        description="pending, succeeded or failed; refused for an object under input/ whose "
        "name no run takes (S3 takes `day2//x.csv`), `error` saying why. A job pending on S3 "
        "with no record of its run longer than its queue message can be in flight (7.5 h) "
        "adds `stalled`, `held`, `hint` and, where the queues could be read, `queue_depth` "
        "and `dead_letters`"
    )
    stalled: bool | None = Field(
        default=None,
        description="pending past 7.5 h with no record of its run: true when no run is known "
        "to be coming (its message in the dead-letter queue, its event never arrived, or the "
        "queues could not be read), false while the batch queue holds messages (a backlog); "
        "absent otherwise",
    )
    held: Literal["batch_queue", "dead_letter_queue", "none", "unknown"] | None = Field(
        default=None,
        description="with `stalled`: where its message is, as the queues' depths say (`none`: "
        "neither queue holds one, the event never arrived; `unknown`: they could not be read)",
    )
    hint: str | None = Field(
        default=None, description="with `stalled`: what holds the job and what to do about it"
    )
    queue_depth: int | None = Field(
        default=None,
        description="with `stalled`: the batch queue's messages, waiting and in flight",
    )
    dead_letters: int | None = Field(
        default=None, description="with `stalled`: the dead-letter queue's messages"
    )

    # No return annotation: pydantic documents a wrap serializer by the type it returns, and
    # `-> Any` made JobStatus `{}` in /openapi.json (a generated client had no job fields).
    @model_serializer(mode="wrap")
    def _left_out_when_unset(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        """The stall fields only on a job they describe (not `null` on every job)."""
        said = handler(self)
        for name in STALL_FIELDS:
            if said.get(name) is None:
                said.pop(name, None)
        return said


STALL_FIELDS = ("stalled", "held", "hint", "queue_depth", "dead_letters")


class JobList(BaseModel):
    jobs: list[JobStatus]
    next: str | None = Field(
        default=None, description="more follow: pass this as `after` for the next page"
    )


class CompareSpec(Strict):
    """Compare versions `a` and `b` on the file at `data` (a batch input or a capture file of
    this model); metrics use the `label` given, else the first the file has of the training
    target, the column `publish --data` scored A against, `label`, `target`, `y`."""

    a: str = Field(
        examples=["1"], description="version A, compared against", json_schema_extra=VERSION_NAME
    )
    b: str = Field(
        examples=["2"], description="version B, the candidate", json_schema_extra=VERSION_NAME
    )
    data: str = Field(
        examples=["batch/iris/input/holdout.csv"],
        description="a key under batch/<name>/ or capture/<name>/ (this model's)",
        json_schema_extra=store_key_under("(?:batch|capture)/"),
    )
    label: str | None = Field(default=None, examples=["species"])
    # An HTTP API answers within 30 s: the rows and timed calls are bounded to fit.
    max_rows: Count = Field(default=20_000, ge=1, le=20_000)
    latency_calls: Count = Field(default=500, ge=0, le=2_000)


class ErrorBody(BaseModel):
    error: str


# 503: what any route answers when the store cannot be reached or a record in it is corrupt
# (runtime.errors.StoreError); undocumented before, a client generated from the document had no
# case for it on a GET of a model's alias or capture (journey15 hunt).
STORE_TROUBLE = "the store could not be reached, or a record the route read is corrupt in it"
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 404, 409, 412, 413, 422)
}
ERRORS[503] = {"model": ErrorBody, "description": f"{STORE_TROUBLE} (the error names it)"}
# A read that sends an ETag: `If-None-Match` naming it is a 304, `If-Match` naming another a 412.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "If-None-Match names the current ETag: no body"},
}
# An alias's read and each move answer its ETag, the value a next `If-Match` names: undocumented,
# a client generated from the document had the If-Match parameter and no way to its value.
ETAG = {
    "ETag": {"description": "the alias's ETag: what If-Match names", "schema": {"type": "string"}}
}
TAGGED: dict[int | str, dict[str, Any]] = {200: {"headers": ETAG}}
# The routes that take a JSON body: any other Content-Type is a 415 (app._invalid_request).
JSON_BODY: dict[int | str, dict[str, Any]] = {
    415: {
        "model": ErrorBody,
        "description": "the body is not sent as `application/json`, or is sent with a "
        "Content-Encoding other than gzip or deflate",
    }
}
# A job submitted to `aiaas serve` on a directory store while its line of local runs is full.
LINE_FULL: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorBody,
        "description": "too many jobs wait to be scored here (`aiaas serve` on a directory "
        "store, `AIAAS_BATCH_LOCAL_QUEUE`); nothing was placed: submit it again later; or, "
        f"with no Retry-After, {STORE_TROUBLE}",
        "headers": {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        },
    }
}
