"""A parameter value the template refuses is refused with what to write instead.

CloudFormation refuses a value outside a parameter's AllowedPattern before any resource is
touched; without a ConstraintDescription its message is the pattern itself ("must match pattern
^$|^https?://[^,/\\s]+(,https?://[^,/\\s]+)*$"), which leaves a user who wrote a trailing slash
or `a, b` to reverse-engineer a regular expression."""

from __future__ import annotations

import re

from infra.template import load_template

PARAMETERS = load_template()["Parameters"]
PATTERNED = {name: p for name, p in PARAMETERS.items() if "AllowedPattern" in p}


def test_every_patterned_parameter_says_what_to_write() -> None:
    assert set(PATTERNED) == {"CorsAllowOrigins", "AlarmEmail", "TrainingImageTag"}
    for name, parameter in PATTERNED.items():
        text = parameter.get("ConstraintDescription", "")
        assert len(text) > 20, name
        example = re.findall(r"\(([^()]*)\)\s*$", text)  # its closing example is a good value
        assert example and re.fullmatch(parameter["AllowedPattern"], example[0]), (name, text)


def test_cors_origins_name_the_mistakes_the_pattern_refuses() -> None:
    parameter = PATTERNED["CorsAllowOrigins"]
    rule = re.compile(parameter["AllowedPattern"])
    text = parameter["ConstraintDescription"]
    mistakes = {
        "https://app.example.com/": "trailing slash",
        "https://app.example.com/app": "no path",
        "https://a.example.com, https://b.example.com": "without spaces",
    }
    for value, said in mistakes.items():
        assert not rule.fullmatch(value), value
        assert said in text, said
