"""docs/deploy.md as an operator reads it: every parameter of template.yaml in its table with
the template's default, the outputs it names are the template's, and the alarms it lists are
the template's alarms (per model: `Predict<model>...`), all of them."""

from __future__ import annotations

import re
from typing import Any

from infra.template import DEFAULT_TEMPLATE, load_template, served_resources

DOC = DEFAULT_TEMPLATE.parent / "docs" / "deploy.md"
TICKED = re.compile(r"`([A-Za-z0-9<>]+)`")


def section(title: str) -> str:
    """The text of the numbered section `## N. <title>`, up to the next one."""
    text = DOC.read_text(encoding="utf-8")
    start = re.search(rf"^## \d+\. {re.escape(title)}$", text, re.M)
    assert start, f"{DOC}: no section {title!r}"
    end = re.search(r"^## ", text[start.end() :], re.M)
    return text[start.end() : start.end() + end.start() if end else None]


def documented_defaults() -> dict[str, str]:
    """Each parameter of the table in section 3, with its default as written ('' for empty)."""
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section("Check, build, deploy").splitlines()
        if line.startswith("| `")
    ]
    found: dict[str, str] = {}
    for names_cell, default_cell, *_ in rows:
        names = TICKED.findall(names_cell)
        defaults = [d.strip().strip("`") for d in default_cell.split(", ")]
        if len(defaults) != len(names):  # one default for all the names of the row
            defaults = [default_cell.strip("`")] * len(names)
        found |= {n: "" if d == "empty" else d for n, d in zip(names, defaults, strict=True)}
    return found


def template_default(parameter: dict[str, Any]) -> str:
    return str(parameter.get("Default", ""))


def test_every_parameter_is_documented_with_its_default() -> None:
    parameters = load_template()["Parameters"]
    assert documented_defaults() == {n: template_default(p) for n, p in parameters.items()}


def test_the_outputs_named_are_the_template_s() -> None:
    text = section("Check, build, deploy")
    listed = text[text.index("Outputs: ") :].split("\n\n", 1)[0]
    assert set(TICKED.findall(listed)) == set(load_template()["Outputs"])


def test_the_alarms_section_names_every_alarm_and_only_those() -> None:
    resources = served_resources(load_template(), ["digits-mlp"])
    alarms = {n for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    named = {n.replace("<model>", "digitsmlp") for n in TICKED.findall(section("Alarms and logs"))}
    assert alarms <= named
    assert {n for n in named if n.endswith(("Alarm", "Errors", "Throttles", "Drift"))} <= alarms
