"""`--reason TEXT` on the commands that set an alias as one step of their work: `aiaas publish
--alias`, `aiaas train --publish` (its --alias or the spec's publish.alias; `--submit` passes it
to the job) and `aiaas pull` (kept with where the version came from). Where
AIAAS_REQUIRE_REASON is on, one without a reason is a usage error (exit 2) before anything is
published, trained or copied: these moves had bypassed it, and a refusal after the work would
have left the version unaliased."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.aws_batch import container_command
from infra.cli.main import main
from tests.infra.test_cli_move_reason import WHY, aiaas
from tests.onnx_factory import linear_classifier
from tests.torchless import torch_or_skip
from tests.training.conftest import spec_dict

REQUIRED = (
    "error: every alias move here needs a reason (AIAAS_REQUIRE_REASON is on): give --reason "
    'TEXT, such as a change ticket ("CHG-1234: fixes false declines")'
)


def _versions(store: Path, name: str) -> list[str]:
    return Registry(LocalStore(store)).versions(name, missing_ok=True)


def _refused(done: subprocess.CompletedProcess[str], command: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == f"aiaas {command}: {REQUIRED}", done.stderr


def test_publish_alias_keeps_its_reason_and_a_required_one_is_asked_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, store = linear_classifier(tmp_path / "m.onnx"), tmp_path / "store"
    publish = ["publish", str(model), "--name", "m", "--labels", "a,b,c"]
    _refused(
        aiaas(str(store), *publish, "--alias", "production", AIAAS_REQUIRE_REASON="1"), "publish"
    )
    assert _versions(store, "m") == []  # nothing published: no version left unaliased

    assert main(["--store", str(store), *publish, "--alias", "production", "--reason", WHY]) == 0
    record = Registry(LocalStore(store)).alias_record("m", "production")
    assert record is not None and (record["version"], record["reason"]) == ("1", WHY)
    capsys.readouterr()
    assert main(["--store", str(store), "versions", "m"]) == 0
    assert f"1; why: {WHY}" in capsys.readouterr().out

    # No alias to move: nothing asked, and a reason given is said to do nothing.
    done = aiaas(str(store), *publish, "--reason", WHY, AIAAS_REQUIRE_REASON="1")
    assert done.returncode == 0, done.stderr
    assert "note: --reason only takes effect with an alias to move (--alias)" in done.stderr
    assert _versions(store, "m") == ["1", "2"]


def test_pull_keeps_the_reason_beside_where_the_version_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "staging", tmp_path / "edge"
    model = linear_classifier(tmp_path / "m.onnx")
    publish = ["publish", str(model), "--name", "m", "--labels", "a,b,c", "--alias", "production"]
    assert main(["--store", str(source), *publish]) == 0
    pull = ["pull", "m", "--from", str(source), "--no-progress"]
    _refused(aiaas(str(target), *pull, AIAAS_REQUIRE_REASON="1"), "pull")
    assert not target.exists() or _versions(target, "m") == []  # nothing copied

    assert main(["--store", str(target), *pull, "--reason", WHY]) == 0
    record = Registry(LocalStore(target)).alias_record("m", "production")
    assert record is not None and record["version"] == "1"
    assert record["reason"] == f"{WHY}; pulled m:1 from {LocalStore(source).uri}"


def test_train_publish_alias_keeps_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    spec = (
        tmp_path / "job.yaml"
    )  # TorchScript export: the CLI's flow is the point, not the exporter
    job = spec_dict("logistic", name="iris-why", export={"exporter": "torchscript"})
    spec.write_text(yaml.safe_dump({**job, "publish": {"alias": "staging"}}))
    # The spec's publish.alias is a move too: asked before the data is read or torch loads.
    _refused(aiaas(str(store), "train", str(spec), "--publish", AIAAS_REQUIRE_REASON="1"), "train")
    assert _versions(store, "iris-why") == []
    # Not published: nothing moves, nothing asked.
    checked = aiaas(str(store), "train", str(spec), "--check", AIAAS_REQUIRE_REASON="1")
    assert checked.returncode == 0, checked.stderr

    torch_or_skip()  # it trains
    argv = ["train", str(spec), "--publish", "--no-progress", "--out", str(tmp_path / "run")]
    assert main(["--store", str(store), *argv, "--reason", WHY]) == 0
    record = Registry(LocalStore(store)).alias_record("iris-why", "staging")
    assert record is not None and (record["version"], record["reason"]) == ("1", WHY)


def test_a_submitted_job_carries_the_reason_as_one_argument() -> None:
    command = container_command(Path("spec.yaml"), alias="production", reason="-1: a why")
    assert command[-3:] == ["--alias", "production", "--reason=-1: a why"]
    assert "--reason" not in " ".join(container_command(Path("spec.yaml"), alias="production"))
