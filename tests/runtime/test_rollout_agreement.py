"""What `--min-agreement` judges when the two versions name their classes differently
(functions/runtime/rollout/agreement.py, decision.py): agreement matched by class index, said
in the start's log and in the shadow stage's verdict; no shadow stage, said why, when nothing
links the classes. Real manifests of real ONNX models (tests/onnx_factory.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.manifest import ModelManifest
from functions.runtime.rollout.agreement import agreement_stage
from functions.runtime.rollout.decision import (
    SHADOW_STAGE,
    Action,
    ShadowStats,
    StepMetrics,
    VersionStats,
    decide,
)
from functions.runtime.rollout.plan import RolloutPlan
from tests import onnx_factory

PLAN = RolloutPlan(steps=(0.5, 1.0), bake_s=10, max_error_rate=0.01, min_agreement=0.9)


def classifier(tmp_path: Path, version: str, labels: tuple[str, ...]) -> ModelManifest:
    path = tmp_path / f"{version}.onnx"
    onnx_factory.linear_classifier(path, classes=len(labels), seed=int(version))
    return onnx_factory.manifest_for(path, "m", version, labels=labels)


@pytest.mark.parametrize(
    ("theirs", "shadow", "note"),
    [
        (("a", "b", "c"), True, ""),
        # a class dropped: matched by name, and the start names it
        (("c", "a"), True, "; versions 1 and 2 have different classes (only 1: 'b'; only 2: none)"),
        (("0", "1", "2"), True, "agreement matches their classes by class index ('a' = '0',"),
        (("0", "1"), False, "; no shadow stage: versions 1 and 2 share no class name and have 3"),
    ],
    ids=["same", "by-name", "by-index", "no-link"],
)
def test_the_shadow_stage_and_what_the_start_says(
    tmp_path: Path, theirs: tuple[str, ...], shadow: bool, note: str
) -> None:
    base = classifier(tmp_path, "1", ("a", "b", "c"))
    stage = agreement_stage(PLAN, base, classifier(tmp_path, "2", theirs))
    assert stage.shadow is shadow
    assert note in stage.note and bool(stage.note) is bool(note)
    if not shadow:
        assert stage.note.endswith(
            "--min-agreement 0.9 is not judged (the steps still judge errors and latency; "
            "`aiaas compare` shows how the two versions' answers cross)"
        )
    without = RolloutPlan(steps=(0.5, 1.0), bake_s=10, max_error_rate=0.01)
    assert agreement_stage(without, base, classifier(tmp_path, "3", theirs)).shadow is False


def shadowed(agreed: float, by_index: float) -> StepMetrics:
    stats = ShadowStats(copies=50, rows=100, agreed=agreed, by_index=by_index)
    return StepMetrics(VersionStats(requests=50), VersionStats(), stats)


def test_the_shadow_stage_says_the_agreement_it_judged_and_how_classes_were_matched() -> None:
    passed = decide(PLAN, SHADOW_STAGE, 11.0, shadowed(95, 100))
    assert passed.action is Action.ADVANCE
    assert passed.reason == (
        "the shadow stage baked within every limit: agreement 0.950 (95/100 rows, classes "
        "matched by class index)"
    )
    failed = decide(PLAN, SHADOW_STAGE, 11.0, shadowed(80, 100))
    assert failed.action is Action.ROLL_BACK
    assert failed.reason == (
        "agreement with the baseline 0.800 (80/100 rows, classes matched by class index) is "
        "under the limit 0.9"
    )
    by_name = decide(PLAN, SHADOW_STAGE, 11.0, shadowed(95, 0))
    assert by_name.reason.endswith("agreement 0.950 (95/100 rows)")
