"""Batch jobs: submit (upload, or copy from `uploads/`), follow one, list a model's."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, register_url_convertor

from functions.control.context import Plane
from functions.control.paging import After, limit_of
from functions.control.schemas import (
    ERRORS,
    JSON_BODY,
    LINE_FULL,
    JobList,
    JobSource,
    JobStatus,
)
from functions.runtime import names
from functions.runtime.errors import BadRequest, PayloadTooLarge
from functions.runtime.settings import max_upload_bytes

router = APIRouter(prefix="/control/batch", tags=["batch"], responses=ERRORS)

# Lambda takes at most 6 MB of request payload; bigger files go to uploads/ first.
MAX_UPLOAD_BYTES = max_upload_bytes(os.environ)


# A job list's `after` is a place in the input folder, not a job: any text up to the longest
# name a listing gives (a directory store's paths: 4096), compared with the keys and never
# read. Checked as a job file name, a page ending on a name no run takes (S3 takes
# `day2//x.csv`, a control character) gave a `next` the same route refused with a 400.
MAX_AFTER = 4096


@router.get("/{model}/jobs", response_model=JobList, summary="A model's batch jobs (in pages)")
def list_jobs(model: str, plane: Plane, after: After = None, limit: int = limit_of(100)) -> JobList:
    if after is not None and not 0 < len(after) <= MAX_AFTER:
        raise BadRequest(
            f"after has {len(after)} characters: pass a page's `next`, or a file name "
            f"(1-{MAX_AFTER} characters) to list the jobs after it"
        )
    jobs, cursor = plane.jobs.list(names.model_name(model), after, limit)
    return JobList(jobs=[JobStatus.model_validate(job) for job in jobs], next=cursor)


@router.post(
    "/{model}/jobs",
    response_model=JobStatus,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Submit a job whose input is already in the store under uploads/",
    responses={**JSON_BODY, **LINE_FULL},
)
def submit_from_store(model: str, source: JobSource, plane: Plane) -> dict[str, Any]:
    return plane.jobs.submit_copy(names.model_name(model), source.source, source.file)


class _AnyPath(PathConvertor):
    """`path`, newlines included: Starlette's `.*` stops at one, so `GET .../jobs/a%0a.csv` had
    no route (a 404) instead of the job file name check's 400 saying what is wrong."""

    regex = r"[\s\S]*"


register_url_convertor("anypath", _AnyPath())


@router.put(
    "/{model}/jobs/{file:anypath}",
    response_model=JobStatus,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Submit a job by uploading its input (CSV, JSONL or NPY) as the body",
    responses=LINE_FULL,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def submit_upload(model: str, file: str, request: Request, plane: Plane) -> dict[str, Any]:
    data = await request.body()
    if len(data) > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"the body is {len(data)} bytes, over the {MAX_UPLOAD_BYTES} byte upload limit; put "
            'the file under uploads/ in the bucket and POST {"source": "uploads/..."} instead'
        )
    sent_as = request.headers.get("content-type", "")
    return await run_in_threadpool(
        plane.jobs.submit_bytes, names.model_name(model), file, data, sent_as
    )


@router.get("/{model}/jobs/{file:anypath}", response_model=JobStatus, summary="A job's status")
def job_status(model: str, file: str, plane: Plane) -> dict[str, Any]:
    return plane.jobs.status(names.model_name(model), file)
