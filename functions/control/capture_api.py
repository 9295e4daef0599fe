"""A model's data capture: show it, set the share captured and the denied fields, turn it off.

The predict function reads the setting within its alias TTL: no redeploy. Captured lines land
under `capture/<model>/<version>/<YYYY-MM-DD>/` in the store (`aiaas capture export` reads them).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictFloat

from functions.control.context import Actor, Plane
from functions.control.schemas import ERRORS, JSON_BODY, Strict
from functions.runtime import names
from functions.runtime.capture.setting import (
    MAX_DENY,
    MAX_FIELD,
    CaptureSetting,
    read_setting,
    set_capture,
)

router = APIRouter(prefix="/control/models", tags=["capture"], responses=ERRORS)

# A denied field as check_deny takes it: something besides blanks, and within its blanks no
# control or formatting character (str.isprintable; its rarer ones are left to the server).
_UNPRINTABLE = r"\x00-\x1f\x7f-\xa0\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff"
PRINTABLE_NAME = rf"^(?=[\s\S]*\S)\s*[^{_UNPRINTABLE}]*\s*$"


class CaptureChange(Strict):
    """Capture `sample` of the answered requests; `deny` names fields never written."""

    sample: StrictFloat = Field(
        examples=[0.05],
        description="share captured, 0 (off) or from 1e-06 (one in a million) to 1 (all)",
        # documented; set_capture checks it (kept to 6 places: a share below 1e-06 would be 0)
        json_schema_extra={"anyOf": [{"const": 0}, {"minimum": 1e-6, "maximum": 1}]},
    )
    deny: list[str] | None = Field(
        default=None,
        examples=[["email", "name"]],
        description="body keys, record fields, feature names or OIP inputs whose values are "
        "removed before writing; omitted: keep the list set before",
        json_schema_extra={  # documented; check_deny checks it
            "maxItems": MAX_DENY,
            "items": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_FIELD,
                "pattern": PRINTABLE_NAME,
            },
        },
    )


class CaptureRecord(BaseModel):
    model: str
    sample: float
    deny: list[str]
    updated_at: str = Field(description="empty when capture was never set (off)")
    updated_by: str


@router.get("/{name}/capture", response_model=CaptureRecord, summary="A model's data capture")
def get_capture(name: str, plane: Plane) -> CaptureRecord:
    name = names.model_name(name)
    plane.registry.versions(name)  # an unknown model is a 404, not "off"
    return _record(name, read_setting(plane.store, name))


@router.put(
    "/{name}/capture",
    response_model=CaptureRecord,
    summary="Capture a sample of the model's requests and answers, without some fields",
    responses=JSON_BODY,
)
def put_capture(name: str, change: CaptureChange, plane: Plane, who: Actor) -> CaptureRecord:
    name = names.model_name(name)
    setting = set_capture(plane.registry, name, sample=change.sample, deny=change.deny, actor=who)
    return _record(name, setting)


@router.delete("/{name}/capture", response_model=CaptureRecord, summary="Stop capturing")
def stop_capture(name: str, plane: Plane, who: Actor) -> CaptureRecord:
    name = names.model_name(name)
    return _record(name, set_capture(plane.registry, name, sample=0.0, actor=who))


def _record(name: str, setting: CaptureSetting) -> CaptureRecord:
    return CaptureRecord.model_validate(setting.record(name))
