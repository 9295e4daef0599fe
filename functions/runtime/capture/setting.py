"""A model's capture setting: `models/<name>/capture.json` in the registry, beside its aliases.

    {"model": "churn", "sample": 0.05, "deny": ["email", "name"],
     "updated_at": "...", "updated_by": "..."}

`sample` is the share of answered requests captured (0 = off, 1 = every one); `deny` names the
request fields whose values are never written (top-level body keys, record fields, feature
names, OIP input names: see redact.py). Stored per model rather than per alias: capture is
about the traffic a model's function answers, whichever alias or pinned version it serves, and
the predict function can already read its own model's prefix (no new permission). Read by the
function with the alias TTL (functions/predict/capture.py): a change needs no redeploy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

from functions.runtime import names
from functions.runtime.errors import BadRequest, CorruptRecord, NotFound
from functions.runtime.manifest import utc_now
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore

CAPTURE_FILE = "capture.json"
MAX_DENY = 256  # field names in a deny-list
MAX_FIELD = 128  # characters in one


def setting_key(name: str) -> str:
    return f"models/{names.model_name(name)}/{CAPTURE_FILE}"


@dataclass(frozen=True)
class CaptureSetting:
    """What share of a model's answered requests is captured, and which fields never are."""

    sample: float = 0.0
    deny: frozenset[str] = frozenset()
    updated_at: str = ""
    updated_by: str = ""

    @property
    def on(self) -> bool:
        return self.sample > 0.0

    def record(self, name: str) -> dict[str, object]:
        return {
            "model": name,
            "sample": self.sample,
            "deny": sorted(self.deny),
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }

    def describe(self) -> str:
        text = f"{self.sample * 100:.4g}% of answered requests" if self.on else "off"
        return text + (f", denied fields: {', '.join(sorted(self.deny))}" if self.deny else "")


OFF = CaptureSetting()


MIN_SAMPLE = 1e-6  # the share is kept to 6 places


def check_sample(sample: object) -> float:
    """A capture share: a number from 0 (off) to 1 (every request), both included."""
    if isinstance(sample, bool) or not isinstance(sample, int | float):
        raise BadRequest(f"sample must be a number from 0 to 1; got {sample!r}")
    if not 0 <= sample <= 1 or math.isnan(sample):
        raise BadRequest(
            f"sample must be from 0 to 1 (0.05 captures 5% of the answered requests, 0 turns "
            f"capture off); got {sample!r}"
        )
    if 0 < sample < MIN_SAMPLE:  # rounded to 6 places, 1e-7 was stored as 0: capture off, a 200
        raise BadRequest(
            f"sample must be 0 (off) or at least {MIN_SAMPLE:g} (one request in a million); "
            f"got {sample!r}"
        )
    return round(float(sample), 6)


def check_deny(fields: object, *, stored: bool = False) -> frozenset[str]:
    """A deny-list: at most MAX_DENY non-empty field names, each printable (a new one: a
    `stored` record's are read as they are). A name with a newline or an escape sequence was
    taken, and `aiaas capture MODEL` printed it as a line of its own (a forged `ERROR ...`) or
    ran it on the reader's terminal; no request field a deny-list can name carries one."""
    if isinstance(fields, str) or not isinstance(fields, Iterable):
        raise BadRequest(f'deny must be a list of field names such as ["email"]; got {fields!r}')
    found = list(fields)
    if len(found) > MAX_DENY:
        raise BadRequest(f"deny names at most {MAX_DENY} fields; got {len(found)}")
    for field in found:
        if not isinstance(field, str) or not field.strip() or len(field) > MAX_FIELD:
            raise BadRequest(
                f"each denied field must be a name of 1-{MAX_FIELD} characters; got {field!r:.60}"
            )
        if not stored and not field.strip().isprintable():
            raise BadRequest(
                f"denied field {field!r:.60} holds a control or formatting character (a line "
                "break, a tab, an escape, a bidirectional mark): name the field as the "
                "request's JSON names it, in printable characters"
            )
    return frozenset(f.strip() for f in found)


def parse_setting(name: str, raw: bytes) -> CaptureSetting:
    """The stored record; CorruptRecord (a 503 naming the fix) when it cannot be read."""
    try:
        doc = orjson.loads(raw)
        if not isinstance(doc, Mapping):
            raise TypeError("not an object")
        return CaptureSetting(
            check_sample(doc.get("sample")),
            check_deny(doc.get("deny", []), stored=True),
            str(doc.get("updated_at", "")),
            str(doc.get("updated_by", "")),
        )
    except (orjson.JSONDecodeError, TypeError, BadRequest) as exc:
        reason = exc.message if isinstance(exc, BadRequest) else str(exc)
        message = f"the capture setting of model {name!r} is corrupt ({reason}); set it again"
        raise CorruptRecord(message, public_message=message) from exc


def read_setting(store: ObjectStore, name: str) -> CaptureSetting:
    """The model's setting; off when none was ever set."""
    try:
        raw = store.get_bytes(setting_key(name))
    except NotFound:
        return OFF
    return parse_setting(name, raw)


def set_capture(
    registry: Registry,
    name: str,
    *,
    sample: object,
    deny: object | None = None,
    actor: str,
) -> CaptureSetting:
    """Capture `sample` of `name`'s answered requests (0: stop); `deny` None keeps the list
    set before, so turning capture back on never forgets which fields are private."""
    name = names.model_name(name)
    share = check_sample(sample)
    denied = None if deny is None else check_deny(deny)
    registry.versions(name)  # an unknown model is a 404 naming it, before anything is written
    if denied is None:
        try:
            denied = read_setting(registry.store, name).deny
        except CorruptRecord:
            denied = frozenset()
    setting = CaptureSetting(share, denied, utc_now(), actor)
    registry.store.put_bytes(setting_key(name), orjson.dumps(setting.record(name)))
    return setting
