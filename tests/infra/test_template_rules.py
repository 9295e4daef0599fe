"""The template's Rules, evaluated as CloudFormation does before it changes anything: a
combination of parameters that cannot work is refused with what to change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from infra.template import load_template

TEMPLATE = load_template()
DEFAULTS = {name: p.get("Default", "") for name, p in TEMPLATE["Parameters"].items()}
LISTS = {name for name, p in TEMPLATE["Parameters"].items() if p["Type"] == "CommaDelimitedList"}


def value(expression: Any, parameters: Mapping[str, str]) -> Any:
    """The rule functions this template uses: Ref, Fn::Equals, Fn::Not, Fn::Contains,
    Fn::EachMemberEquals."""
    if not isinstance(expression, dict):
        return expression
    ((function, argument),) = expression.items()
    if function == "Ref":
        text = parameters[argument]
        return text.split(",") if argument in LISTS else text
    args = [value(a, parameters) for a in argument]
    if function == "Fn::Equals":
        return args[0] == args[1]
    if function == "Fn::Not":
        return not args[0]
    if function == "Fn::Contains":
        return args[1] in args[0]
    if function == "Fn::EachMemberEquals":
        return all(member == args[1] for member in args[0])
    raise AssertionError(f"a rule function this evaluator does not know: {function}")


def refusals(**given: str) -> list[str]:
    parameters = {**DEFAULTS, **given}
    said = []
    for rule in TEMPLATE["Rules"].values():
        if "RuleCondition" in rule and not value(rule["RuleCondition"], parameters):
            continue
        said += [
            a["AssertDescription"] for a in rule["Assertions"] if not value(a["Assert"], parameters)
        ]
    return said


ISSUER = "https://issuer.example.com"


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"UserPool": "Create"},
        {"JwtIssuer": ISSUER, "JwtAudience": "client-1"},
        {
            "Training": "Enabled",
            "TrainingSubnetIds": "subnet-1",
            "TrainingSecurityGroupIds": "sg-1",
        },
    ],
)
def test_combinations_that_work_pass_every_rule(given: dict[str, str]) -> None:
    assert refusals(**given) == []


def test_a_user_pool_beside_an_issuer_is_refused_not_ignored() -> None:
    """With UserPool Create the authorizer trusted the stack's pool alone: the JwtIssuer given
    too was dropped without a word, and each of its tokens answered 401."""
    assert refusals(UserPool="Create", JwtIssuer=ISSUER, JwtAudience="client-1") == [
        "UserPool Create makes the stack's pool the JWT issuer; leave JwtIssuer (and JwtAudience)"
        " empty, or set UserPool None to accept your issuer's tokens.",
        AUDIENCE_REFUSED,
    ]


AUDIENCE_REFUSED = (
    "UserPool Create makes the stack's app client the JWT audience; leave JwtAudience empty, or"
    " set UserPool None with JwtIssuer and JwtAudience to accept other audiences."
)


def test_a_user_pool_beside_an_audience_is_refused_not_ignored() -> None:
    """(rev19 5) With UserPool Create the authorizer took the stack's app client alone as the
    audience: a JwtAudience given without an issuer passed every rule and was dropped without a
    word (a token for another app client of the pool: 401)."""
    assert refusals(UserPool="Create", JwtAudience="client-1,client-2") == [AUDIENCE_REFUSED]


def test_the_other_rules_still_refuse_what_they_did() -> None:
    assert refusals(JwtIssuer=ISSUER) == [
        "JwtIssuer needs JwtAudience, one or more accepted audiences."
    ]
    assert len(refusals(Training="Enabled")) == 2
