"""Checks of template.yaml's per-model settings (Mappings.ModelSettings) before a deploy.

CloudFormation cannot express "SnapStart or provisioned concurrency, never both" per loop item,
so this is where the combination is rejected, with a message that says what to change.
`python -m infra.model_settings [--models a,b]` exits 1 and prints every problem; the tests run
the same check on the shipped template.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from infra.template import DEFAULT_TEMPLATE, load_template, parameter_defaults

SNAPSHOT = "PublishedVersions"
KEEP_WARM = "ProvisionedConcurrencyConfig"
KNOWN = {"MemorySize", "Timeout", "SnapStart", "KeepWarm", "ProvisionedConcurrency"}
MEMORY_MB = (128, 10240)
TIMEOUT_S = (1, 900)


def model_problems(model: str, settings: Mapping[str, Any]) -> list[str]:
    """What is wrong with one model's settings (empty when nothing is)."""
    where = f"Mappings.ModelSettings.{model}"
    problems = [
        f"{where}.{key}: unknown setting; use one of {sorted(KNOWN)}"
        for key in settings
        if key not in KNOWN
    ]
    snap = settings.get("SnapStart", SNAPSHOT)
    warm = settings.get("KeepWarm", [])
    count = settings.get("ProvisionedConcurrency")
    if snap not in (SNAPSHOT, "None"):
        problems.append(f"{where}.SnapStart: {snap!r} is neither {SNAPSHOT!r} nor 'None'")
    if warm not in ([], [KEEP_WARM]):
        problems.append(f"{where}.KeepWarm: must be [{KEEP_WARM}] (or left out), not {warm!r}")
    if warm and snap == SNAPSHOT:
        problems.append(
            f"{where}: SnapStart and provisioned concurrency exclude each other; for "
            f"provisioned concurrency set SnapStart: None, else drop KeepWarm"
        )
    if warm and not (isinstance(count, int) and count >= 1):
        problems.append(
            f"{where}.ProvisionedConcurrency: KeepWarm needs a count of at least 1, got {count!r}"
        )
    if count is not None and not warm:
        problems.append(
            f"{where}.ProvisionedConcurrency: has no effect without KeepWarm: [{KEEP_WARM}] "
            "(and SnapStart: None)"
        )
    problems += _range(where, settings, "MemorySize", MEMORY_MB)
    problems += _range(where, settings, "Timeout", TIMEOUT_S)
    return problems


def _range(where: str, settings: Mapping[str, Any], key: str, bounds: tuple[int, int]) -> list[str]:
    value = settings.get(key)
    if value is None or (isinstance(value, int) and bounds[0] <= value <= bounds[1]):
        return []
    return [f"{where}.{key}: {value!r} is outside {bounds[0]}..{bounds[1]}"]


def template_problems(
    template: Mapping[str, Any], models: Sequence[str] | None = None
) -> list[str]:
    """Problems of every model listed in the settings, and of `models` (default: ModelNames)."""
    table = template.get("Mappings", {}).get("ModelSettings", {})
    deployed = list(models if models is not None else parameter_defaults(template)["ModelNames"])
    problems: list[str] = []
    for model in dict.fromkeys([*table, *deployed]):
        problems += model_problems(model, table.get(model, {}))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.model_settings", description=__doc__)
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--models", help="comma-separated ModelNames you will deploy")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    problems = template_problems(load_template(args.template), models)
    for problem in problems:
        print(f"{args.template}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.template}: model settings are consistent")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
