"""Names that become storage keys: models, versions, aliases and references to them."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from functions.runtime import names
from functions.runtime.errors import InvalidName
from functions.runtime.registry import ModelRef, parse_ref

BAD_MODEL_NAMES = [
    "",
    "../x",
    "..",
    "a/b",
    "a\\b",
    "%2e%2e",
    "%2e%2e%2fetc",
    "a..b",
    "x" * 65,
    "Iris",
    "IRIS",
    "-iris",
    "iris-",
    ".hidden",
    "iris\n",
    "iris ",
    "ir is",
    "iris@prod",
    "iris:1",
    "íris",
    None,
    7,
]


@pytest.mark.parametrize("bad", BAD_MODEL_NAMES)
def test_bad_model_names_are_refused_with_the_rule(bad: object) -> None:
    with pytest.raises(InvalidName) as caught:
        names.model_name(bad)
    assert caught.value.status == HTTPStatus.BAD_REQUEST
    assert caught.value.message.startswith("invalid model name ")
    assert "1-64 characters of a-z" in caught.value.message


def test_long_names_are_cut_short_in_the_message() -> None:
    with pytest.raises(InvalidName) as caught:
        names.model_name("x" * 10_000)
    assert len(caught.value.message) < 200


def test_a_cut_name_keeps_its_quotes_and_says_its_length() -> None:
    """The repr was cut at 80 characters, closing quote and all: `'xxx…x: use 1-64` said
    neither where the name ended nor how long it was."""
    with pytest.raises(InvalidName) as caught:
        names.model_name("x" * 100)
    assert caught.value.message.startswith(f"invalid model name {'x' * 60!r}... (100 characters): ")
    with pytest.raises(InvalidName) as caught:
        names.job_file_name("a" * 256)
    assert caught.value.message.startswith(
        f"invalid job file name {'a' * 60!r}... (256 characters)"
    )
    with pytest.raises(InvalidName) as caught:
        names.model_name("x" * 65)  # short enough to quote whole
    assert caught.value.message.startswith(f"invalid model name {'x' * 65!r}: ")


def test_a_message_lists_a_few_names_and_counts_the_rest() -> None:
    assert names.shown_names(["a", "b"]) == "'a', 'b'"
    assert names.shown_names([str(i) for i in range(9)]) == "'0', '1', '2', '3', '4' and 4 more"
    assert names.shown_names(["1", "2", "3"], 2, quoted=False) == "1, 2 and 1 more"
    assert names.shown_names(["x" * 100], quoted=False) == f"{'x' * 60!r}... (100 characters)"


def test_an_error_message_is_bounded_whatever_it_quotes() -> None:
    """Each run of over 200 characters without a space is cut; the whole keeps its start and
    its end (what to fix is often said last)."""
    short = "no column 'y'; its columns: a, b"
    assert names.shown_message(short) == short
    run = names.shown_message(f"no column {'L' * 10_000!r} to read labels from")
    assert run == f"no column '{'L' * 199}... (10002 characters) to read labels from"
    spaced = names.shown_message("start " + "x " * 500_000 + "end")
    assert len(spaced) < 2_100
    assert spaced.startswith("start x x ") and spaced.endswith(" x x end")
    assert "characters left out) ... " in spaced


@pytest.mark.parametrize("good", ["iris", "a", "digits-mlp", "bert_base.v2", "x" * 64, "0"])
def test_good_model_names_pass(good: str) -> None:
    assert names.model_name(good) == good


@pytest.mark.parametrize("bad", ["", "../1", "1/2", "..", "v..1", "-1", "1.", "%2e", "v" * 65])
def test_bad_versions_are_refused(bad: str) -> None:
    with pytest.raises(InvalidName, match="invalid version") as caught:
        names.version_name(bad)
    assert caught.value.status == HTTPStatus.BAD_REQUEST


@pytest.mark.parametrize("good", ["1", "42", "v2", "2024.01.02", "RC_1", "1.0-beta"])
def test_good_versions_pass(good: str) -> None:
    assert names.version_name(good) == good


@pytest.mark.parametrize("bad", ["", "Production", "1st", "prod/x", "../prod", "p" * 33, "prod-"])
def test_bad_aliases_are_refused(bad: str) -> None:
    with pytest.raises(InvalidName, match="invalid alias") as caught:
        names.alias_name(bad)
    assert "starting with a letter" in caught.value.message


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("iris", ModelRef("iris")),
        ("iris:3", ModelRef("iris", version="3")),
        ("iris@production", ModelRef("iris", alias="production")),
    ],
)
def test_parse_ref_forms(text: str, ref: ModelRef) -> None:
    assert parse_ref(text) == ref
    assert str(ref) == text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("../x@production", "model name"),
        ("iris@../x", "alias"),
        ("iris:../1", "version"),
        ("iris:", "version"),
        ("iris@", "alias"),
        ("@production", "model name"),
        ("iris:1@prod", "model name"),
        ("a/b:1", "model name"),
    ],
)
def test_parse_ref_validates_each_part(text: str, kind: str) -> None:
    with pytest.raises(InvalidName, match=f"invalid {kind}"):
        parse_ref(text)
