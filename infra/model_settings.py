"""The models a stack serves and their per-model settings: template.yaml's `Metadata.Models`.

    Metadata:
      Models:
        digits-mlp:                 # defaults: 1024 MB, 30 s, SnapStart, @production, 60 s
        intents:
          MemorySize: 3008
          Timeout: 15
          ProvisionedConcurrency: 5 # keep 5 instances warm instead of SnapStart
          ModelSelector: ":7"       # pin version 7 (default "@production", an alias)
          AliasTtlSeconds: 30       # re-read the alias every 30 s (default 60)

SnapStart and provisioned concurrency exclude each other; `ReservedConcurrency` caps (and
reserves) a model's concurrency. A `Timeout` is at most the HTTP API's 30 s, as is that of any
function of the template with HttpApi events: API Gateway never waits longer for an answer. The selector and the alias TTL are settings here, not stack
parameters, because SAM names the version `live` points at by a hash of the function's
environment *as written*: a parameter's new value would reach $LATEST but never `live`, while
a new literal here publishes a new version. `python -m infra.model_settings [--models a,b]` exits 1 and
prints every problem with what to change; `python -m infra.model_resources --write` refuses to
generate resources from settings with problems.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.runtime.errors import AiaasError
from functions.runtime.names import MODEL_RULE, is_model_name
from functions.runtime.refs import is_selector
from infra.cfn_yaml import load_template, project_template, tool_failed

SNAPSHOT = "PublishedVersions"
NO_SNAPSHOT = "None"
SNAPSHOT_STORAGE_MB = 512  # the most ephemeral storage Lambda takes with SnapStart
MEMORY_MB = (128, 10240)
# API Gateway's HTTP APIs end every integration at 30 s, a quota that cannot be raised: the
# caller then gets a 503 while the function runs on, billed, to its own Timeout (Lambda's
# 1..900). A predict function is reached through its HTTP API routes only.
HTTP_API_TIMEOUT_S = 30
TIMEOUT_S = (1, HTTP_API_TIMEOUT_S)
LAMBDA_TIMEOUT_S = 900
ALIAS_TTL_S = (0, 86400)
KNOWN = (
    "MemorySize",
    "Timeout",
    "SnapStart",
    "ProvisionedConcurrency",
    "ReservedConcurrency",
    "ModelSelector",
    "AliasTtlSeconds",
)
WHERE = "Metadata.Models"
FUNCTION = "AWS::Serverless::Function"


@dataclass(frozen=True)
class ModelSettings:
    """One model's function settings, defaults filled in."""

    memory_mb: int = 1024
    timeout_s: int = 30
    snap_start: bool = True
    provisioned: int | None = None
    reserved: int | None = None
    selector: str = "@production"  # AIAAS_MODEL_SELECTOR: "@alias" or ":version"
    alias_ttl_s: int = 60  # AIAAS_ALIAS_TTL: seconds before an alias is read again

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> ModelSettings:
        """Settings from a `Metadata.Models` entry (assumed free of `model_problems`)."""
        raw = raw or {}
        provisioned = raw.get("ProvisionedConcurrency")
        return cls(
            memory_mb=int(raw.get("MemorySize", cls.memory_mb)),
            timeout_s=int(raw.get("Timeout", cls.timeout_s)),
            snap_start=provisioned is None and raw.get("SnapStart", SNAPSHOT) == SNAPSHOT,
            provisioned=provisioned,
            reserved=raw.get("ReservedConcurrency"),
            selector=str(raw.get("ModelSelector", cls.selector)),
            alias_ttl_s=int(raw.get("AliasTtlSeconds", cls.alias_ttl_s)),
        )


def logical_name(model: str) -> str:
    """The alphanumerics of a model name, as its resources' logical ids carry them."""
    return re.sub(r"[^A-Za-z0-9]", "", model)


def template_models(template: Mapping[str, Any]) -> dict[str, Any]:
    """`Metadata.Models` as written: model name -> its raw settings (None for the defaults)."""
    models = template.get("Metadata", {}).get("Models") or {}
    return dict(models) if isinstance(models, Mapping) else {}


def model_problems(model: str, settings: Mapping[str, Any] | None) -> list[str]:
    """What is wrong with one model's name and settings (empty when nothing is)."""
    where = f"{WHERE}.{model}"
    if not is_model_name(model):
        return [f"{where}: not a model name; use {MODEL_RULE}"]
    if settings is None:
        return []
    if not isinstance(settings, Mapping):
        return [f"{where}: settings must be a mapping of {', '.join(KNOWN)}"]
    problems = [
        f"{where}.{key}: unknown setting; use one of {', '.join(KNOWN)}"
        for key in settings
        if key not in KNOWN
    ]
    snap = settings.get("SnapStart", SNAPSHOT)
    if snap not in (SNAPSHOT, NO_SNAPSHOT):
        problems.append(f"{where}.SnapStart: {snap!r} is neither {SNAPSHOT!r} nor {NO_SNAPSHOT!r}")
    if "ProvisionedConcurrency" in settings and settings.get("SnapStart") == SNAPSHOT:
        problems.append(
            f"{where}: SnapStart and provisioned concurrency exclude each other; drop SnapStart "
            "to keep instances warm, or drop ProvisionedConcurrency to snapshot"
        )
    problems += _range(where, settings, "MemorySize", MEMORY_MB)
    over = _over_the_api(f"{where}.Timeout", settings.get("Timeout"))
    problems += over or _range(where, settings, "Timeout", TIMEOUT_S)
    problems += _range(where, settings, "ProvisionedConcurrency", (1, 1000))
    problems += _range(where, settings, "ReservedConcurrency", (1, 1000))
    problems += _range(where, settings, "AliasTtlSeconds", ALIAS_TTL_S)
    problems += _warm_over_the_cap(where, settings)
    if "ModelSelector" in settings and not is_selector(settings["ModelSelector"]):
        problems.append(
            f"{where}.ModelSelector: {settings['ModelSelector']!r} is neither '@<alias>' "
            "(e.g. '@production') nor ':<version>' (e.g. ':3')"
        )
    return problems


def _warm_over_the_cap(where: str, settings: Mapping[str, Any]) -> list[str]:
    """Lambda refuses provisioned concurrency over the function's reserved concurrency: the
    deploy failed at the `live` alias, after the function was built, and rolled back."""
    warm, cap = settings.get("ProvisionedConcurrency"), settings.get("ReservedConcurrency")
    if type(warm) is not int or type(cap) is not int or warm <= cap:
        return []
    return [
        f"{where}: ProvisionedConcurrency {warm} is over ReservedConcurrency {cap}, and Lambda "
        "keeps no more instances warm than the function may run at once (the deploy fails at its "
        f"`live` alias); raise ReservedConcurrency to at least {warm}, or lower "
        "ProvisionedConcurrency"
    ]


def _over_the_api(where: str, timeout: object) -> list[str]:
    """A Timeout Lambda takes but the HTTP API in front of the function never waits for."""
    if type(timeout) is not int or not HTTP_API_TIMEOUT_S < timeout <= LAMBDA_TIMEOUT_S:
        return []
    return [
        f"{where}: {timeout} s is over the HTTP API's {HTTP_API_TIMEOUT_S} s: API Gateway "
        f"answers a request 503 after {HTTP_API_TIMEOUT_S} s (its integration timeout, which "
        "cannot be raised) while the function runs on, billed, to its Timeout; use "
        f"{TIMEOUT_S[0]}..{TIMEOUT_S[1]}"
    ]


def api_timeout_problems(template: Mapping[str, Any]) -> list[str]:
    """Functions written into `template` (not generated from `Metadata.Models`, checked there)
    that have HttpApi events and a Timeout over the HTTP API's."""
    generated = {f"Predict{logical_name(model)}" for model in template_models(template)}
    functions = (template.get("Globals") or {}).get("Function") or {}
    default = functions.get("Timeout", 3) if isinstance(functions, Mapping) else 3
    problems = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if logical_id in generated or not isinstance(resource, Mapping):
            continue
        properties = resource.get("Properties") or {}
        events = properties.get("Events") or {}
        if resource.get("Type") != FUNCTION or not isinstance(events, Mapping):
            continue
        if any(isinstance(e, Mapping) and e.get("Type") == "HttpApi" for e in events.values()):
            where = f"Resources.{logical_id}.Timeout"
            problems += _over_the_api(where, properties.get("Timeout", default))
    return problems


def snapshot_storage_problems(
    resources: Mapping[str, Any], template: Mapping[str, Any] | None = None
) -> list[str]:
    """Functions of `resources` (with `template`'s Globals) that snapshot (SnapStart) with more
    than 512 MB of /tmp: Lambda refuses the pair, and the deploy failed on the function."""
    functions = ((template or {}).get("Globals") or {}).get("Function") or {}
    problems = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") != FUNCTION:
            continue
        properties = resource.get("Properties") or {}
        snap, storage = (
            properties.get(k, functions.get(k)) for k in ("SnapStart", "EphemeralStorage")
        )
        size = storage.get("Size") if isinstance(storage, Mapping) else None
        if isinstance(size, str) and size.strip().isdigit():
            size = int(size)  # `Size: "1024"`, which CloudFormation takes as the number
        snapshots = isinstance(snap, Mapping) and snap.get("ApplyOn") == SNAPSHOT
        if snapshots and type(size) is int and size > SNAPSHOT_STORAGE_MB:
            problems.append(
                f"Resources.{logical_id}: EphemeralStorage {size} MB with SnapStart, which "
                f"takes at most {SNAPSHOT_STORAGE_MB} MB of /tmp (Lambda refuses the pair); "
                "keep /tmp at 512 MB, or turn SnapStart off (a model's SnapStart: None in "
                "Metadata.Models, with ProvisionedConcurrency to keep instances warm)"
            )
    return problems


def _range(where: str, settings: Mapping[str, Any], key: str, bounds: tuple[int, int]) -> list[str]:
    value = settings.get(key)
    if value is None or (type(value) is int and bounds[0] <= value <= bounds[1]):
        return []
    return [f"{where}.{key}: {value!r} is not a whole number in {bounds[0]}..{bounds[1]}"]


def collisions(models: Sequence[str]) -> list[str]:
    """Model names whose resources would share logical ids (`a-b` and `ab` both give `Predictab`)."""
    seen: dict[str, str] = {}
    problems = []
    for model in models:
        other = seen.setdefault(logical_name(model), model)
        if other != model:
            problems.append(
                f"{WHERE}: {other!r} and {model!r} both give the logical id "
                f"Predict{logical_name(model)}; rename one"
            )
    return problems


def template_problems(
    template: Mapping[str, Any], models: Sequence[str] | None = None
) -> list[str]:
    """Problems of every model in `Metadata.Models`, and of `models` (others get the defaults)."""
    table = template_models(template)
    names = list(dict.fromkeys([*table, *(models or [])]))
    if not names:
        return [f"{WHERE}: no models; list at least one model to serve"]
    problems = collisions(names)
    for model in names:
        problems += model_problems(model, table.get(model))
    written = template.get("Resources") or {}
    return problems + api_timeout_problems(template) + snapshot_storage_problems(written, template)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.model_settings", description=__doc__)
    parser.add_argument("--template", type=Path, default=project_template())
    parser.add_argument("--models", help="also check these comma-separated names (defaults)")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    try:
        template = load_template(args.template)
    except AiaasError as exc:
        return tool_failed(parser.prog, args.template, exc)
    problems = template_problems(template, models)
    for problem in problems:
        print(f"{args.template}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.template}: model settings are consistent")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
