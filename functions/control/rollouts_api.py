"""Rollouts (docs/rollout.md): list and read them, start one, abort one.

Starting writes the rollout's record and moves the first step (refusals are immediate 4xx);
the loop that judges the steps then runs in AWS as the rollout state machine, started here
(`AIAAS_ROLLOUT_STATE_MACHINE`, its ARN). Without one (`aiaas serve` on a directory store) the
loop is `aiaas rollout`, which reads the gateway's /metrics: a start here is refused, saying so.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from functions.control.context import Actor, Plane, conditional_get, move_reason
from functions.control.schemas import ERRORS, JSON_BODY, NOT_MODIFIED, VERSION_NAME, reason_field
from functions.runtime import names
from functions.runtime.alias_move_notes import moves_said
from functions.runtime.errors import Conflict, ServiceUnavailable
from functions.runtime.rollout.attention import attention
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan, plan_schema
from functions.runtime.rollout.preconditions import RolloutPrecondition, rollout_etag
from functions.runtime.rollout.record import RolloutBook, RolloutRecord
from functions.runtime.rollout.settle import settle_s

router = APIRouter(prefix="/control/models", tags=["rollouts"], responses=ERRORS)

STATE_MACHINE = os.environ.get("AIAAS_ROLLOUT_STATE_MACHINE", "")
EXECUTION_NAME_MAX = 80


class RolloutStart(BaseModel):
    """Roll `version` out onto `alias` with `plan` (steps as shares: [0.1, 0.5, 1])."""

    model_config = ConfigDict(extra="forbid")
    version: str = Field(examples=["3"], json_schema_extra=VERSION_NAME)
    alias: str = Field(default="production")
    plan: dict[str, Any] = Field(
        examples=[{"steps": [0.1, 0.5, 1], "bake_s": 300, "max_error_rate": 0.01}],
        description="steps, bake_s, max_error_rate; optional max_p99_ms, min_agreement, "
        "min_requests, shadow_sample",
        json_schema_extra=plan_schema(),  # documents the plan's checks, which still decide
    )
    reason: str | None = reason_field(
        "the rollout is started (logged, and kept with each of its moves of the alias)"
    )


class RolloutAbort(BaseModel):
    """Why the rollout is aborted (the body is optional)."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = reason_field(
        "the rollout is aborted (logged, and kept with the move back)"
    )


def rollout_precondition(
    if_match: Annotated[
        str | None,
        Header(description="only if the alias's latest rollout is still this one (its ETag)"),
    ] = None,
    if_none_match: Annotated[
        str | None, Header(description="`*`: start only if no rollout of the alias is running")
    ] = None,
) -> RolloutPrecondition:
    """The caller's condition on the rollout it last saw (412 when it no longer holds)."""
    return RolloutPrecondition(if_match, if_none_match)


When = Annotated[RolloutPrecondition, Depends(rollout_precondition)]


class _StartOnly:
    """The start of a rollout reads no metrics (CloudWatch windows by time; see engine)."""

    def begin(self, model: str, since: float) -> None:
        return None

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = ""
    ) -> Any:
        raise Conflict("the control plane does not judge rollouts; its state machine does")


@router.get("/{name}/rollouts", summary="The latest rollout of each alias of a model")
def list_rollouts(name: str, plane: Plane) -> dict[str, Any]:
    plane.registry.versions(names.model_name(name))  # 404 for an unknown model
    found, now = RolloutBook(plane.store).all(name), time.time()
    return {"rollouts": [{**tagged(r), **attention(plane.registry, r, now)} for r in found]}


@router.get(
    "/{name}/rollouts/{alias}",
    response_model=dict[str, Any],  # the schema as before; a 304 or 412 answers without one
    responses=NOT_MODIFIED,
    summary="A rollout: its state, latest check and log",
    description="The ETag (also `etag` in the body) names the rollout and its state: an "
    "`If-Match` on a start or an abort holds until a rollout starts or ends. `not_watched` "
    "(null while a driver checks it): a running one whose driver stopped, with the seconds "
    "since it was heard from and the commands that resume or abort it. `not_in_effect` (null "
    "while the alias serves the rollout's split): a running one whose alias was moved by hand, "
    "saying what the alias serves: its driver's next check ends it as superseded, or an abort "
    "does without moving the alias.",
)
def get_rollout(
    name: str, alias: str, plane: Plane, request: Request, response: Response
) -> dict[str, Any] | Response:
    name, alias = names.model_name(name), names.alias_name(alias)
    plane.registry.versions(name)
    record = RolloutBook(plane.store).require(name, alias)
    if (answered := conditional_get(request, rollout_etag(record))) is not None:
        return answered
    return {**tagged(record, response), **attention(plane.registry, record, time.time())}


@router.post(
    "/{name}/rollouts",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a rollout (AWS: its state machine runs the steps)",
    description="With `If-Match` (a rollout's ETag), a 412 instead when another rollout "
    "started or ended since; with `If-None-Match: *`, a 412 when one is running. `warnings` "
    "(null: nothing to say) says what moving the baseline's callers to the candidate changes "
    "for them, as `aiaas rollout` says it: a text model's candidate reading token ids as other "
    "tokens (clients that tokenize themselves get wrong answers).",
    responses=JSON_BODY,
)
def start_rollout(
    name: str, start: RolloutStart, plane: Plane, who: Actor, when: When, response: Response
) -> dict[str, Any]:
    name, alias = names.model_name(name), names.alias_name(start.alias)
    version, reason = names.version_name(start.version), move_reason(plane, start.reason)
    plan = RolloutPlan.from_dict({"settle_s": settle_s(plane.registry, name, alias), **start.plan})
    plan = plan.checked_new()
    # A 404 naming it before anything else: locally the refusal below told the caller to run
    # `aiaas rollout MODEL 9` of a version that does not exist.
    plane.registry.manifest(name, version)
    if not STATE_MACHINE:
        raise Conflict(
            "this control plane has no rollout state machine (AIAAS_ROLLOUT_STATE_MACHINE): "
            f"run the loop with `aiaas rollout {name} {version}` beside `aiaas serve`"
        )
    engine = RolloutEngine(plane.registry, _StartOnly())
    record = engine.start(name, version, plan, alias=alias, actor=who, when=when, reason=reason)
    if not record.running:  # the alias was moved by hand as it started: nothing to drive
        return tagged(record, response)
    import boto3  # only here: a start is rare, the client costs ~400 ms to build

    try:
        boto3.client("stepfunctions").start_execution(
            stateMachineArn=STATE_MACHINE,
            name=execution_name(name, alias, record.id),
            # The id: an execution drives its own rollout, never one started after it ended.
            input=json.dumps({"model": name, "alias": alias, "id": record.id}),
        )
    except Exception as exc:  # the first step moved and nothing would judge it: undo it
        engine.abort(name, alias, who, f"its state machine did not start ({exc})")
        said = (
            f"the rollout of {name}@{alias} could not start its state machine and was aborted "
            "(the alias is back on its baseline)"
        )
        raise ServiceUnavailable(
            f"{said}: {exc}", public_message=f"{said}; try again, or see the control plane's log"
        ) from exc
    # Its first step moved a share of the baseline's callers to the candidate: what that
    # changes for them, as `aiaas rollout` says it (it answered nothing of it, leftovers2 2).
    warned = moves_said(plane.registry, name, [record.baseline], [record.candidate])
    said_now = [line.removeprefix("warning: ") for line in warned]
    return {**tagged(record, response), "warnings": said_now or None}


def execution_name(model: str, alias: str, rollout_id: str) -> str:
    """A Step Functions execution name (at most 80 characters): a 64-character model name
    with its alias was refused after the first step had moved. A long one is cut, with a digest
    of the whole so that two long names never share one."""
    name = f"{model}-{alias}-{rollout_id}"
    if len(name) <= EXECUTION_NAME_MAX:
        return name
    digest = hashlib.sha256(f"{model}-{alias}".encode()).hexdigest()[:8]
    keep = EXECUTION_NAME_MAX - len(rollout_id) - len(digest) - 2
    return f"{f'{model}-{alias}'[:keep]}-{digest}-{rollout_id}"


@router.post(
    "/{name}/rollouts/{alias}/abort",
    summary="Abort: every request back on the baseline",
    description="With `If-Match` (the rollout's ETag), a 412 instead when it is no longer "
    "that rollout (another started since) or it ended.",
    responses=JSON_BODY,
)
def abort_rollout(
    name: str,
    alias: str,
    plane: Plane,
    who: Actor,
    when: When,
    response: Response,
    body: RolloutAbort | None = None,
) -> dict[str, Any]:
    name, alias = names.model_name(name), names.alias_name(alias)
    reason = move_reason(plane, None if body is None else body.reason)
    engine = RolloutEngine(plane.registry, _StartOnly())
    return tagged(engine.abort(name, alias, who, when=when, reason=reason), response)


def tagged(record: RolloutRecord, response: Response | None = None) -> dict[str, Any]:
    """The record with its ETag (in the body, and as the response's header when it has one)."""
    etag = rollout_etag(record)
    if response is not None:
        response.headers["ETag"] = etag
    return {**record.to_dict(), "etag": etag}
