"""functions/requirements.txt, what `sam build` installs, is a complete lock: exact pins, each
within pyproject.toml's ranges, and exactly what the built bundle holds."""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.infra.conftest import Packaged
from tests.infra.test_deploy_bundles import _bundle, location

ROOT = Path(__file__).resolve().parents[2]


def lines(path: Path) -> list[str]:
    return [
        line.split("#", 1)[0].strip()
        for line in path.read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]


def locked() -> dict[str, str]:
    pins = {}
    for line in lines(ROOT / "functions/requirements.txt"):
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"not an exact pin: {line}"
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def pyproject_ranges() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    # `text`: tokenizers, so models published with a tokenizer.json answer on Lambda too.
    found = [*project["dependencies"], *extras["aws"], *extras["control"], *extras["text"]]
    return {canonicalize_name(Requirement(r).name): Requirement(r) for r in found}


def test_every_pin_is_exact_and_within_the_ranges() -> None:
    pins = locked()
    ranges = pyproject_ranges()
    wanted = [Requirement(line) for line in lines(ROOT / "functions/requirements.in")]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is in requirements.in but not locked"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])
        assert name in ranges, f"{name} is bundled but not a dependency in pyproject.toml"
        assert ranges[name].specifier.contains(pins[name]), (name, pins[name], str(ranges[name]))


def test_the_bundle_needs_no_boto3_and_no_build_tools() -> None:
    assert not {"boto3", "botocore", "pip", "setuptools", "torch"} & set(locked())


@pytest.mark.slow
def test_the_built_bundle_holds_exactly_the_lock(packaged: Packaged) -> None:
    code = packaged.template()["Resources"]["Predictdigitsmlp"]["Properties"]["CodeUri"]
    bundle: zipfile.ZipFile = _bundle(packaged.server.endpoint, *location(code))
    installed = {}
    for name in bundle.namelist():
        top = name.split("/", 1)[0]
        if top.endswith(".dist-info") and name.endswith("/METADATA"):
            distribution, version = top[: -len(".dist-info")].rsplit("-", 1)
            installed[canonicalize_name(distribution)] = version
    assert installed == locked()
