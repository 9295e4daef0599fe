"""Version names that are the folders beside a model's versions (`aliases`, `rollouts`, ...)
are refused for a new version: IAM's `*` matches '/', so the control plane's and the rollout
function's grants to write `registry/models/*/aliases/*` also allowed replacing the manifest
of a version named `aliases` (hunt_deploy.md #4; the template's Deny statements close the same
gap from the other side: tests/infra/test_function_role_requests.py). The real CLI on a real
ONNX model; a store an older release wrote such a version into still reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.errors import InvalidName
from functions.runtime.registry import Registry
from infra.cli.main import main
from tests.infra.test_publish_version_twins import store_and_publish
from training.spec import load_spec

REPO = Path(__file__).resolve().parents[2]


def refusal(version: str) -> str:
    return (
        f"invalid version {version!r}: aliases, deleted_aliases, rollouts, versions name the "
        "folders beside a model's versions (where its aliases and rollouts are written), so a "
        "version of that name would not be write-once; pick another name"
    )


@pytest.mark.parametrize("version", ["aliases", "deleted_aliases", "rollouts", "versions"])
def test_publish_refuses_a_reserved_version_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str
) -> None:
    store, argv = store_and_publish(tmp_path, "--version", version)
    assert main(argv) == 1
    assert capsys.readouterr().err == f"aiaas publish: error: {refusal(version)}\n"
    assert not list(store.list_keys("models"))  # nothing written
    assert main([*argv[:-1], f"{version}-1"]) == 0  # a name that only starts so is fine


def test_a_version_an_older_store_holds_is_read_but_not_pulled_or_published(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, argv = store_and_publish(tmp_path / "a", "--version", "1")
    assert main(argv) == 0
    for key in list(source.list_keys("models/m/versions/1")):  # as a release before this wrote
        data = source.get_bytes(key)
        if key.endswith("/manifest.json"):
            data = json.dumps({**json.loads(data), "version": "aliases"}).encode()
        source.put_bytes(key.replace("/versions/1/", "/versions/aliases/"), data)
    registry = Registry(source)
    assert registry.resolve("m:aliases").version == "aliases"  # still served
    capsys.readouterr()
    edge = tmp_path / "b" / "store"
    assert main(["--store", str(edge), "pull", "m:aliases", "--from", source.uri]) == 1
    assert capsys.readouterr().err == f"aiaas pull: error: {refusal('aliases')}\n"
    assert not edge.exists()  # nothing copied
    with pytest.raises(InvalidName):  # the library's publish too, whoever calls it
        registry.publish(registry.resolve("m:aliases"), tmp_path / "a" / "m.onnx", {})


def test_a_training_spec_s_version_is_checked_too(tmp_path: Path) -> None:
    spec = (REPO / "training" / "specs" / "iris-logistic.yaml").read_text()
    path = tmp_path / "spec.yaml"
    path.write_text(spec + "version: rollouts\n")
    with pytest.raises(Exception, match="invalid version 'rollouts'"):
        load_spec(path)
