"""The per-model block of template.yaml: generated from Metadata.Models and
infra/model_resources.yaml, kept up to date, and refusing settings that cannot deploy."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from infra.model_resources import main as generate
from infra.model_settings import main as check_settings
from infra.model_settings import model_problems, template_problems
from infra.template import DEFAULT_TEMPLATE, load_template


def test_the_generated_block_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert generate(["--check"]) == 0, capsys.readouterr().err


def test_writing_adds_a_model_and_a_stale_block_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        DEFAULT_TEMPLATE.read_text().replace(
            "  Models:\n", "  Models:\n    iris:\n      ProvisionedConcurrency: 2\n", 1
        )
    )
    assert generate(["--check", "--template", str(path)]) == 1
    assert "run `python -m infra.model_resources --write`" in capsys.readouterr().err
    assert generate(["--write", "--template", str(path)]) == 0
    assert generate(["--check", "--template", str(path)]) == 0
    resources = load_template(path)["Resources"]
    props = resources["Predictiris"]["Properties"]
    assert props["SnapStart"] == {"ApplyOn": "None"}
    assert props["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    assert props["Environment"]["Variables"]["AIAAS_MODEL"] == "iris"
    assert {"PredictirisLogs", "PredictirisThrottles", "PredictirisErrors"} <= set(resources)
    assert "Predictdigitsmlp" in resources


def test_selector_and_alias_ttl_are_written_as_literals(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        DEFAULT_TEMPLATE.read_text().replace(
            "  Models:\n",
            '  Models:\n    iris:\n      ModelSelector: ":7"\n      AliasTtlSeconds: 5\n',
            1,
        )
    )
    assert generate(["--write", "--template", str(path)]) == 0
    resources = load_template(path)["Resources"]
    assert resources["Predictiris"]["Properties"]["Environment"]["Variables"] == {
        "AIAAS_MODEL": "iris",
        "AIAAS_MODEL_SELECTOR": ":7",
        "AIAAS_ALIAS_TTL": "5",
    }
    defaults = resources["Predictdigitsmlp"]["Properties"]["Environment"]["Variables"]
    assert defaults["AIAAS_MODEL_SELECTOR"] == "@production"
    assert defaults["AIAAS_ALIAS_TTL"] == "60"


def test_bad_settings_are_not_generated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "template.yaml"
    original = DEFAULT_TEMPLATE.read_text().replace(
        "  Models:\n",
        "  Models:\n    iris:\n      SnapStart: PublishedVersions\n      ProvisionedConcurrency: 2\n",
        1,
    )
    path.write_text(original)
    assert generate(["--write", "--template", str(path)]) == 1
    assert "SnapStart and provisioned concurrency exclude each other" in capsys.readouterr().err
    assert path.read_text() == original


def test_shipped_settings_are_consistent(capsys: pytest.CaptureFixture[str]) -> None:
    assert template_problems(load_template()) == []
    assert check_settings(["--models", "digits-mlp,iris"]) == 0
    assert model_problems("m", {"ModelSelector": ":2026-05.1", "AliasTtlSeconds": 0}) == []
    assert capsys.readouterr().out.endswith("model settings are consistent\n")


def test_models_whose_ids_collide_are_refused() -> None:
    template: dict[str, Any] = {"Metadata": {"Models": {"a-b": None, "ab": {}}}}
    assert template_problems(template) == [
        "Metadata.Models: 'a-b' and 'ab' both give the logical id Predictab; rename one"
    ]
    assert template_problems({"Metadata": {"Models": {}}}) == [
        "Metadata.Models: no models; list at least one model to serve"
    ]


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            {"SnapStart": "PublishedVersions", "ProvisionedConcurrency": 2},
            ": SnapStart and provisioned concurrency exclude each other; drop SnapStart to keep "
            "instances warm, or drop ProvisionedConcurrency to snapshot",
        ),
        (
            {"ProvisionedConcurrency": 0},
            ".ProvisionedConcurrency: 0 is not a whole number in 1..1000",
        ),
        (
            {"ProvisionedConcurrency": 5, "ReservedConcurrency": 2},
            ": ProvisionedConcurrency 5 is over ReservedConcurrency 2, and Lambda keeps no more "
            "instances warm than the function may run at once (the deploy fails at its `live` "
            "alias); raise ReservedConcurrency to at least 5, or lower ProvisionedConcurrency",
        ),
        ({"SnapStart": "Yes"}, ".SnapStart: 'Yes' is neither 'PublishedVersions' nor 'None'"),
        ({"MemorySize": 64}, ".MemorySize: 64 is not a whole number in 128..10240"),
        ({"Timeout": "30"}, ".Timeout: '30' is not a whole number in 1..30"),
        ({"Timeout": 901}, ".Timeout: 901 is not a whole number in 1..30"),
        (
            {"Timeout": 900},  # Lambda's limit: accepted, and every request over 30 s a 503
            ".Timeout: 900 s is over the HTTP API's 30 s: API Gateway answers a request 503 "
            "after 30 s (its integration timeout, which cannot be raised) while the function "
            "runs on, billed, to its Timeout; use 1..30",
        ),
        (
            {"Memory": 512},
            ".Memory: unknown setting; use one of MemorySize, Timeout, SnapStart, "
            "ProvisionedConcurrency, ReservedConcurrency, ModelSelector, AliasTtlSeconds",
        ),
        (
            {"ModelSelector": "production"},
            ".ModelSelector: 'production' is neither '@<alias>' (e.g. '@production') nor "
            "':<version>' (e.g. ':3')",
        ),
        (
            {"ModelSelector": "@../x"},
            ".ModelSelector: '@../x' is neither '@<alias>' (e.g. '@production') nor "
            "':<version>' (e.g. ':3')",
        ),
        ({"AliasTtlSeconds": -1}, ".AliasTtlSeconds: -1 is not a whole number in 0..86400"),
    ],
)
def test_other_bad_settings_name_what_to_fix(settings: dict[str, Any], problem: str) -> None:
    assert model_problems("m", copy.deepcopy(settings)) == [f"Metadata.Models.m{problem}"]


def test_a_bad_model_name_is_refused() -> None:
    assert model_problems("Iris/../x", {}) == [
        "Metadata.Models.Iris/../x: not a model name; use 1-64 characters of a-z, 0-9, '-', "
        "'_', '.', starting and ending with a letter or digit"
    ]


def test_a_written_function_behind_the_api_may_not_outwait_it(tmp_path: Path) -> None:
    """The HTTP API's 30 s bounds the functions written into the template too (the control
    plane, health), not only the generated predict ones; a function with no HttpApi event (the
    batch function's 900 s) is no concern of it."""
    path = tmp_path / "template.yaml"
    text = DEFAULT_TEMPLATE.read_text()
    control = text.index("  ControlPlane:\n")
    at = text.index("      Timeout: 30\n", control)
    path.write_text(text[:at] + "      Timeout: 60\n" + text[at + len("      Timeout: 30\n") :])
    over = (
        "Resources.ControlPlane.Timeout: 60 s is over the HTTP API's 30 s: API Gateway answers "
        "a request 503 after 30 s (its integration timeout, which cannot be raised) while the "
        "function runs on, billed, to its Timeout; use 1..30"
    )
    assert template_problems(load_template(path)) == [over]
    assert generate(["--check", "--template", str(path)]) == 1
    # The Globals' Timeout is every function's that has none of its own (Health's)
    path.write_text(text.replace("    Timeout: 30\n", "    Timeout: 45\n", 1))
    assert template_problems(load_template(path)) == [
        over.replace("ControlPlane", "Health").replace("60", "45")
    ]
