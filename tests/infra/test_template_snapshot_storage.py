"""SnapStart takes at most 512 MB of ephemeral storage (/tmp): Lambda refuses a function with
more, so such a stack failed at deploy, after its build and upload. docs/large_models.md
suggests `EphemeralStorage` for a model whose versions do not fit /tmp twice; the template
check now refuses the pair on a snapshotting function, written or generated, and says what to
change instead of letting the deploy find it."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import model_resources
from infra.model_resources import main as generate
from infra.model_settings import template_problems
from infra.template import DEFAULT_TEMPLATE, load_template

SHAPE = model_resources.SHAPE.read_text()
STORAGE = "    EphemeralStorage:\n      Size: 2048\n"


def with_models(tmp_path: Path, models: str) -> Path:
    path = tmp_path / "template.yaml"
    text = DEFAULT_TEMPLATE.read_text()
    path.write_text(text.replace("    digits-mlp:\n      MemorySize: 1024\n", models, 1))
    return path


@pytest.fixture
def bigger_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-model shape with 2 GB of /tmp for every predict function."""
    at = SHAPE.index("    Policies:\n")
    shape = tmp_path / "model_resources.yaml"
    shape.write_text(SHAPE[:at] + STORAGE + SHAPE[at:])
    monkeypatch.setattr(model_resources, "SHAPE", shape)


def test_a_generated_snapshotting_function_with_more_tmp_is_refused(
    tmp_path: Path, bigger_tmp: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = with_models(tmp_path, "    digits-mlp:\n      MemorySize: 1024\n")
    before = path.read_text()
    assert generate(["--write", "--template", str(path)]) == 1
    err = capsys.readouterr().err
    assert (
        "Resources.Predictdigitsmlp: EphemeralStorage 2048 MB with SnapStart, which takes at "
        "most 512 MB of /tmp (Lambda refuses the pair); keep /tmp at 512 MB, or turn SnapStart "
        "off (a model's SnapStart: None in Metadata.Models, with ProvisionedConcurrency to keep "
        "instances warm)"
    ) in err
    assert path.read_text() == before  # nothing half-written


def test_the_same_without_snapstart_is_generated(tmp_path: Path, bigger_tmp: None) -> None:
    models = "    digits-mlp:\n      SnapStart: None\n      ProvisionedConcurrency: 2\n"
    path = with_models(tmp_path, models)
    assert generate(["--write", "--template", str(path)]) == 0
    function = load_template(path)["Resources"]["Predictdigitsmlp"]["Properties"]
    assert function["EphemeralStorage"] == {"Size": 2048}
    assert function["SnapStart"] == {"ApplyOn": "None"}


def test_a_written_snapshotting_function_with_more_tmp_is_refused(tmp_path: Path) -> None:
    """The control plane snapshots too."""
    text = DEFAULT_TEMPLATE.read_text()
    at = text.index("      SnapStart:\n", text.index("  ControlPlane:\n"))
    path = tmp_path / "template.yaml"
    path.write_text(text[:at] + "      EphemeralStorage:\n        Size: 1024\n" + text[at:])
    assert template_problems(load_template(path)) == [
        "Resources.ControlPlane: EphemeralStorage 1024 MB with SnapStart, which takes at most "
        "512 MB of /tmp (Lambda refuses the pair); keep /tmp at 512 MB, or turn SnapStart off (a "
        "model's SnapStart: None in Metadata.Models, with ProvisionedConcurrency to keep "
        "instances warm)"
    ]
    assert template_problems(load_template(DEFAULT_TEMPLATE)) == []


def test_a_size_written_as_a_string_is_refused_too(tmp_path: Path) -> None:
    """(rev19 7) CloudFormation takes `Size: "1024"` as the number; the check read only ints,
    so the pair passed it and Lambda refused it at deploy."""
    text = DEFAULT_TEMPLATE.read_text()
    at = text.index("      SnapStart:\n", text.index("  ControlPlane:\n"))
    path = tmp_path / "template.yaml"
    path.write_text(text[:at] + '      EphemeralStorage:\n        Size: "1024"\n' + text[at:])
    (said,) = template_problems(load_template(path))
    assert said.startswith("Resources.ControlPlane: EphemeralStorage 1024 MB with SnapStart")
