"""Messages that named the wrong thing: a rollout plan's `shadow_sample` under the stored
minimum was told of the alias's `sample` ("to stop shadowing, remove the shadow"), and `aiaas
versions` cut the control plane's actor 'bearer-token-holder@127.0.0.1' to another address."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.errors import BadRequest
from functions.runtime.registry import Registry
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.store import LocalStore
from infra.cli.alias_history import history_lines
from tests import onnx_factory


@pytest.mark.parametrize("sample", [5e-324, 1e-7])
def test_a_plan_s_shadow_sample_under_the_stored_minimum_is_told_of_itself(sample: float) -> None:
    with pytest.raises(BadRequest) as refused:
        RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01, shadow_sample=sample)
    assert refused.value.message.startswith("shadow_sample must be at least 1e-06")


def test_a_long_actor_is_cut_with_an_ellipsis(tmp_path: Path) -> None:
    root = tmp_path
    registry = Registry(LocalStore(root / "store"))
    onnx = onnx_factory.linear_classifier(root / "m.onnx")
    for version in ("1", "2"):
        registry.publish(onnx_factory.manifest_for(onnx, "m", version), onnx)
    registry.set_alias("m", "production", "1", actor="bearer-token-holder@127.0.0.1")
    registry.set_alias("m", "production", "2", actor="bearer-token-holder@127.0.0.1")
    text = "\n".join(history_lines(registry, "m", ["production"]))
    assert "bearer-token-holder@127.0.0… 2" in text and "@127.0.0. " not in text
