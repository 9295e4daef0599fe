"""A spec file's text to Python objects: JSON, or YAML read the way a user means it.

Both refuse a key given twice (each format's loader kept the last, unsaid), and a syntax error
becomes one `SpecError` line naming the file, not PyYAML's multi-line report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from training.errors import SpecError


def parse_text(path: Path, text: str) -> object:
    """The spec at `path` (its `text`) parsed as JSON for a .json file, else as YAML."""
    try:
        if Path(path).suffix == ".json":
            return json.loads(text, object_pairs_hook=_once)
        return yaml.load(text, Loader=_OnceLoader)  # noqa: S506 - SafeLoader's subclass
    except (ValueError, yaml.YAMLError) as exc:
        raise SpecError(f"spec {path} is not valid {_kind(path)}: {_one_line(exc)}") from exc


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each given once: `epochs` twice kept the last, unsaid."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} is given twice")
        seen[key] = value
    return seen


class _OnceLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that gives a key twice (it kept the last).

    It also reads `1e-3` as a number: YAML 1.1's float needs a dot (`1.0e-3`), so PyYAML made
    `learning_rate: 1e-3`, as everyone writes it, the string '1e-3'; JSON and YAML 1.2 read it
    as a float, and so do we (for every field, so a string field keeps PyYAML's quoting rule).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        for index, key in enumerate(keys):
            if key in keys[:index]:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", node.value[index][0].start_mark
                )
        return super().construct_mapping(node, deep=deep)


_OnceLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _one_line(exc: Exception) -> str:
    """PyYAML's message spans lines (context, the line quoted, a caret): the CLI prints one."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if isinstance(exc, yaml.MarkedYAMLError) and mark is not None and problem:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def _kind(path: Path) -> str:
    return "JSON" if Path(path).suffix == ".json" else "YAML"
