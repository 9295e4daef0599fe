"""CloudFormation YAML: the short-form intrinsic tags (`!Ref x` -> `{"Ref": "x"}`), a safe loader,
and a parse cache, for infra/template.py, infra/model_settings.py and infra/model_resources.py."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, cast

from functions.runtime.errors import AiaasError
from functions.runtime.settings import make_dirs

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


def project_template() -> Path:
    """The template the deploy tools (`python -m infra.model_fit`, `infra.model_settings`,
    `infra.model_resources`) read unless given `--template`: the checkout's, beside infra/;
    an installed aiaas has none there (template.yaml stays in the clone), so the working
    directory's, the SAM project's folder they are run in."""
    return DEFAULT_TEMPLATE if DEFAULT_TEMPLATE.is_file() else Path("template.yaml")


def tool_failed(prog: str, template: Path, exc: AiaasError | OSError) -> int:
    """A deploy tool's error as one line on stderr, exit 1 (it was a traceback); a template
    that is not there says how to name one."""
    said = exc.message if isinstance(exc, AiaasError) else f"{template}: {exc.strerror or exc}"
    if not template.exists():
        said += " (run it in your SAM project's folder, or give its template with --template FILE)"
    print(f"{prog}: error: {said}", file=sys.stderr)
    return 1


@functools.cache
def _loader() -> type:
    """A SafeLoader (libyaml's C one when present) that turns `!Ref x` into `{"Ref": "x"}`,
    `!Sub s` into `{"Fn::Sub": s}`, ... PyYAML is imported only when a template is parsed."""
    import yaml

    class CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    def tag(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if suffix == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    CfnLoader.add_multi_constructor("!", tag)
    return CfnLoader


def load_template(path: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """The template as data; an AiaasError naming the file when it is not a SAM template (a
    list, a scalar, an empty file, broken YAML were tracebacks from `aiaas invoke` and `aiaas
    serve`, which had already printed its banner)."""
    doc = load_yaml(path)
    problem = template_problem(doc)
    if problem is not None:
        raise AiaasError(f"the template {path} is not a SAM template: {problem}")
    return cast(dict[str, Any], doc)


# The sections the local runtime reads, each a mapping when present.
SECTIONS = ("Parameters", "Mappings", "Globals", "Metadata", "Conditions", "Outputs")


def template_problem(doc: Any) -> str | None:
    """What keeps `doc` from being a template: its shape only (sections, resources)."""
    if doc is None:
        return "the file is empty"
    if not isinstance(doc, dict):
        return f"it holds {_what(doc)}, not a mapping of sections (Resources, ...)"
    if "Resources" not in doc:
        return "it has no Resources"
    resources = doc["Resources"]
    # `Resources: {}` is a shape the local tools read (a template of Metadata.Models alone,
    # for `infra.model_fit`); `Resources:` with nothing under it is YAML's null.
    if not isinstance(resources, dict):
        return f"Resources is {_what(resources)}, not a mapping of resources"
    for name in SECTIONS:
        if name in doc and not isinstance(doc[name], dict):
            return f"{name} is {_what(doc[name])}, not a mapping"
    for logical, resource in resources.items():
        if not isinstance(resource, dict):
            return f"resource {logical} is {_what(resource)}, not a mapping (Type, Properties)"
        if not isinstance(resource.get("Type"), str):
            return f"resource {logical} has no Type"
        if not isinstance(resource.get("Properties", {}), dict):
            return f"resource {logical}'s Properties is {_what(resource['Properties'])}"
    return None


def _what(value: Any) -> str:
    """`a list`, `the value 5`, `empty`: a value as the message names it."""
    if value is None or value == {}:
        return "empty"
    if isinstance(value, (bool, int, float)):
        return f"the value {value!r}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"  # a YAML date


def load_yaml(path: Path) -> Any:
    """A CloudFormation YAML file as data (a template, a template's fragment).

    Each parse is kept as JSON under the user's cache directory, named by the template's
    sha256, so a later start reads JSON: importing PyYAML and parsing the template took
    ~25 ms of `aiaas serve`'s cold start. A parse that JSON cannot hold as it is (a YAML date,
    a number as a key) is simply not cached.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:  # `aiaas serve --template typo.yaml`: one line, not a traceback
        raise AiaasError(f"cannot read the template {path}: {exc.strerror or exc}") from exc
    try:
        cached = template_cache_dir() / f"{hashlib.sha256(text).hexdigest()}.json"
    except (RuntimeError, KeyError):  # no home directory to cache in: parse every time
        cached = None
    if cached is not None:
        try:
            return json.loads(cached.read_bytes())
        except (OSError, ValueError):
            pass
    import yaml

    try:
        doc = yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        why = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AiaasError(f"the template {path} is not valid YAML: {why}{where}") from exc
    try:
        encoded = json.dumps(doc)
        if cached is not None and json.loads(encoded) == doc:
            _write_atomically(cached, encoded.encode())
    except (OSError, TypeError, ValueError):
        pass  # not cacheable here: parsed again next time
    return doc


def template_cache_dir() -> Path:
    """Where parsed templates are kept: `$XDG_CACHE_HOME/aiaas/templates` (~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aiaas" / "templates"


def _write_atomically(path: Path, data: bytes) -> None:
    make_dirs(path.parent)  # never a missing HOME: not cached there
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(temporary).replace(path)
    finally:
        Path(temporary).unlink(missing_ok=True)


_SHORT = {"Ref": "!Ref", "Fn::Sub": "!Sub", "Fn::GetAtt": "!GetAtt", "Fn::If": "!If"}
_SHORT.update({f"Fn::{name}": f"!{name}" for name in ("Join", "Select", "Split", "Equals", "Not")})


def dump(data: Any) -> str:
    """YAML text with intrinsics in the short form (`!Ref x`), keys in their given order."""
    import yaml

    class CfnDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # repeated policies are written out, never as &anchors

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)  # list items indented under their key

    def mapping(dumper: yaml.SafeDumper, node: dict[str, Any]) -> Any:
        if len(node) == 1:
            ((key, value),) = node.items()
            tag = _SHORT.get(key)
            if tag == "!GetAtt" and isinstance(value, list):
                return dumper.represent_scalar(tag, ".".join(value))
            if tag is not None and isinstance(value, str):
                return dumper.represent_scalar(tag, value)
            if tag is not None and isinstance(value, list):
                return dumper.represent_sequence(tag, value, flow_style=True)
        return dumper.represent_dict(node)

    CfnDumper.add_representer(dict, mapping)
    text = yaml.dump(data, Dumper=CfnDumper, sort_keys=False, width=100, allow_unicode=True)
    # A tagged scalar is always quoted by PyYAML; a logical id needs no quotes.
    return re.sub(r"(!Ref|!GetAtt) '([A-Za-z0-9.:]+)'", r"\1 \2", text)
