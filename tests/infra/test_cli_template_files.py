"""A --template that is no SAM template (empty, a list, a scalar, broken YAML) is one line
before anything starts: it was a traceback from `aiaas invoke`, and from `aiaas serve` after
it had printed its banner and routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.cli.main import EXIT_ERROR, run
from tests.infra.test_serve_operator import run_serve
from tests.s3server import free_port

ROOT = Path(__file__).resolve().parents[2]
HEALTH = str(ROOT / "events" / "health_live.json")

TEMPLATES = [
    ("empty.yaml", "", "is not a SAM template: the file is empty"),
    ("list.yaml", "- a\n", "is not a SAM template: it holds a list, not a mapping of sections "
     "(Resources, ...)"),
    ("rows.csv", "f0,f1\n1,2\n", "is not a SAM template: it holds the text 'f0,f1 1,2', not a "
     "mapping of sections (Resources, ...)"),
    ("none.yaml", "Parameters: {}\n", "is not a SAM template: it has no Resources"),
    ("r5.yaml", "Resources: 5\n", "is not a SAM template: Resources is the value 5, not a "
     "mapping of resources"),
    ("a5.yaml", "Resources:\n  A: 5\n", "is not a SAM template: resource A is the value 5, not "
     "a mapping (Type, Properties)"),
    ("p3.yaml", "Parameters: [3]\nResources:\n  A: {Type: X}\n", "is not a SAM template: "
     "Parameters is a list, not a mapping"),
    ("bad.yaml", "a: [\n", "is not valid YAML: "),  # then the parser's words (libyaml's or not)
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "said"), TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_invoke_with_a_template_that_is_none_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, said: str
) -> None:
    # AttributeError: 'NoneType' / 'list' / 'str' object has no attribute 'get'; TypeError:
    # 'int' object is not iterable; yaml's ParserError.
    template = tmp_path / name
    template.write_text(text)
    code = run(["--store", str(tmp_path / "store"), "invoke", "Health", "-e", HEALTH,
                "--template", str(template)])  # fmt: skip
    assert code == EXIT_ERROR
    err = capsys.readouterr().err
    line = f"aiaas invoke: error: the template {template} {said}"
    if name == "bad.yaml":  # the parser's words, then where
        assert err.startswith(line) and err.endswith(" (line 2, column 1)\n"), err
    else:
        assert err == line + "\n"


def test_serve_refuses_a_template_that_is_none_before_its_banner(tmp_path: Path) -> None:
    # It printed "aiaas serve: http://..." and the routes, then the traceback, exit 1.
    template = tmp_path / "list.yaml"
    template.write_text("- a\n")
    port = str(free_port())
    done = run_serve(tmp_path / "store", "--port", port, "--template", str(template))
    assert done.returncode == EXIT_ERROR
    assert done.stdout == ""  # no banner, no route
    assert done.stderr == (
        f"aiaas serve: error: the template {template} is not a SAM template: it holds a list, "
        "not a mapping of sections (Resources, ...)\n"
    )
