"""`aiaas train` and `python -m training`: publish with an alias, dry runs, errors, `aiaas show`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.onnx_factory import linear_classifier, manifest_for
from tests.torchless import torch_or_skip
from tests.training.conftest import spec_dict

REPO = Path(__file__).resolve().parents[2]


def _spec_file(tmp_path: Path, recipe: str = "logistic", **overrides: object) -> Path:
    """A spec exporting with TorchScript: the CLI's flow is the point here, not the exporter
    (dynamo's is tested where it is: test_recipes, test_export); 0.04 s a run, not ~2.4 s."""
    path = tmp_path / "job.yaml"
    overrides = {"export": {"exporter": "torchscript"}, **overrides}
    path.write_text(yaml.safe_dump(spec_dict(recipe, **overrides)))
    return path


def test_train_publishes_with_alias_and_show_prints_the_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()  # it trains
    store = str(tmp_path / "store")
    spec = _spec_file(tmp_path, name="iris-cli")
    args = [
        "--store",
        store,
        "train",
        str(spec),
        "--publish",
        "--alias",
        "staging",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "iris-cli: test accuracy=" in out and "parity: max abs diff" in out
    assert (
        f"published iris-cli:1 to {Path(store).resolve()}" in out and "iris-cli@staging -> 1" in out
    )
    assert main(args) == 0  # a second run is the next version
    assert "iris-cli@staging -> 2" in capsys.readouterr().out
    assert main(["--store", store, "show", "iris-cli@staging"]) == 0
    shown = capsys.readouterr().out
    assert "iris-cli:2 @staging" in shown and "    test: accuracy=" in shown
    # training/README.md: `aiaas show` prints metrics, parity and the card's path.
    parity = next(line for line in shown.splitlines() if line.startswith("  parity:"))
    assert parity.startswith("  parity:    max abs diff ") and "(tolerance 0.0001)" in parity
    assert "/models/iris-cli/versions/2/card/card.md" in shown
    card = Path(shown.split("card:")[1].strip()).read_text()
    assert (
        card.startswith("# iris-cli:2")
        and "![Loss curves](loss.png)" in card
        and "max abs diff" in card
    )


def test_train_without_publish_is_a_dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()  # it trains
    store = tmp_path / "store"
    spec = _spec_file(tmp_path, name="dry")
    assert (
        main(
            [
                "--store",
                str(store),
                "train",
                str(spec),
                "--out",
                str(tmp_path / "run"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert f"not published (dry run): artifacts in {tmp_path / 'run'}" in capsys.readouterr().out
    assert (tmp_path / "run" / "manifest.json").is_file() and (
        tmp_path / "run" / "card" / "card.md"
    ).is_file()
    assert Registry(LocalStore(store)).models() == []


def test_spec_alias_and_pinned_version_publish_to_s3(
    s3_store: S3Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()  # it trains
    spec = _spec_file(tmp_path, name="pinned", version="2024.1", publish={"alias": "production"})
    args = [
        "--store",
        s3_store.uri,
        "train",
        str(spec),
        "--publish",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    ]
    assert main(args) == 0
    assert "pinned@production -> 2024.1" in capsys.readouterr().out
    registry = Registry(s3_store)
    assert registry.resolve("pinned@production").version == "2024.1"
    assert registry.store.exists("models/pinned/versions/2024.1/card/loss.png")
    assert main(args) == 1  # versions are immutable
    assert "pinned:2024.1 is already published; versions are immutable" in capsys.readouterr().err


def test_a_number_taken_while_training_publishes_as_the_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    torch_or_skip()  # it trains
    # Two `aiaas train --publish` of one model at once on one store (found iterating: a CSV and
    # a Parquet run side by side): both read number 11 before training, and the second failed
    # after training, "wine-mlp:11 is already published". A number the user did not pin moves
    # on, as `aiaas publish` does; the card, which names the version, is written again.
    registry = Registry(LocalStore(tmp_path / "store"))
    theirs = linear_classifier(tmp_path / "theirs.onnx")
    read_number = Registry.next_version

    def read_then_lose(self: Registry, name: str) -> str:
        number = read_number(self, name)
        if not registry.versions(name, missing_ok=True):  # the other run publishes it now
            registry.publish(manifest_for(theirs, name, number, labels=("a", "b", "c")), theirs)
        return number

    monkeypatch.setattr(Registry, "next_version", read_then_lose)
    spec = _spec_file(tmp_path, name="race", epochs=1)
    argv = ["--store", registry.store.uri, "train", str(spec), "--publish", "--alias", "staging"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "published race:2 " in out and "race@staging -> 2" in out
    assert registry.versions("race") == ["1", "2"] and registry.alias("race", "staging") == "2"
    card = registry.store.get_bytes("models/race/versions/2/card/card.md").decode()
    assert card.startswith("# race:2\n")
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["version"] == "2"


class _Trained(Exception):
    """Raised by a stand-in for the training job: it was reached, with this spec."""


def test_version_flag_pins_the_version_and_a_taken_one_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    torch_or_skip()  # it trains
    # `aiaas publish --version V` pins a version; `aiaas train --version V` was "unrecognized
    # arguments" (only the spec's `version:` field did it), and a taken version was found
    # only after torch had loaded.
    registry = Registry(LocalStore(tmp_path / "store"))
    path = linear_classifier(tmp_path / "m.onnx")
    registry.publish(manifest_for(path, "iris-cli", "3", labels=("a", "b", "c")), path)
    spec = _spec_file(tmp_path, name="iris-cli")

    def job(spec: Any, *args: Any, **kwargs: Any) -> None:
        raise _Trained(spec.version)

    monkeypatch.setattr("training.job.run_job", job)
    argv = ["--store", registry.store.uri, "train", str(spec), "--publish", "--no-progress"]
    with pytest.raises(_Trained, match=r"^2026\.1$"):
        main([*argv, "--version", "2026.1"])
    assert main([*argv, "--version", "3"]) == 1
    # A CI job retried with its --version (the first run published it) is told how to go on,
    # not only "versions are immutable" (hunt_journey7 3); a retrained model's bytes differ,
    # so it cannot be "already published" as a publish of the same file is.
    assert capsys.readouterr().err == (
        "aiaas train: error: iris-cli:3 is already published; versions are immutable; a job "
        "run again finds what its first run published: check first (`aiaas show iris-cli:3` "
        "exits 0) and skip the training, as the CI job in docs/rollout.md does, or give "
        "another --version to publish this run's model\n"
    )
    assert main([*argv, "--version", "003"]) == 1  # 3 too: a bare name served either
    assert capsys.readouterr().err == (
        "aiaas train: error: iris-cli:003 is version 3, as iris-cli:3 already is; "
        "pick another number, or none to be given the next one\n"
    )
    # `--check` beside them is refused alike, not "valid" (hunt_journey22): the run it
    # checks for would be refused within a second
    assert main([*argv, "--version", "3", "--check"]) == 1
    assert "iris-cli:3 is already published" in capsys.readouterr().err
    assert main([*argv, "--version", "4", "--check"]) == 0
    assert ": valid (iris-cli," in capsys.readouterr().out


def test_spec_and_data_errors_exit_1_with_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _spec_file(tmp_path, epochs="many")
    assert main(["--store", str(tmp_path / "s"), "train", str(bad)]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "aiaas train: error: spec field 'epochs' must be an integer; got 'many'"
    )
    missing = _spec_file(tmp_path, dataset={"path": "bundled:iris.csv", "target": "kind"})
    assert main(["--store", str(tmp_path / "s"), "train", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err == (
        "aiaas train: error: spec field 'dataset.target': data set bundled:iris.csv has no column "
        "'kind'; columns are ['sepal_length', 'sepal_width', 'petal_length', 'petal_width', "
        "'species']\n"
    )


def _check_in_container(spec: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m training SPEC --check`, the training image's entry point."""
    return subprocess.run(
        [sys.executable, "-m", "training", str(spec), "--check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_container_entrypoint(tmp_path: Path) -> None:
    spec = _spec_file(tmp_path, name="entry")
    env = os.environ | {"PYTHONPATH": str(REPO)}
    ok = _check_in_container(spec, env)
    assert (
        ok.returncode == 0
        and f"{spec}: valid (entry, classification, recipe logistic)" in ok.stdout
    )
    # --check must not pay for torch: it is what CI and editors run on every spec.
    probe = "import sys, training.command; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert (
        subprocess.run([sys.executable, "-c", probe], env=env, timeout=60, check=False).returncode
        == 0
    )
    bad = _spec_file(tmp_path, recipe="mlp", task="ranking")
    failed = _check_in_container(bad, env)
    assert failed.returncode == 1
    assert (
        failed.stderr.strip()
        == "training: error: spec field 'task' is 'ranking'; expected one of ['classification', 'regression']"
    )


def test_manifest_written_beside_the_artifacts_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()  # it trains
    spec = _spec_file(tmp_path, name="local")
    assert (
        main(
            [
                "--store",
                str(tmp_path / "store"),
                "train",
                str(spec),
                "--publish",
                "--out",
                str(tmp_path / "run"),
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    local = json.loads((tmp_path / "run" / "manifest.json").read_text())
    stored = json.loads(
        (tmp_path / "store" / "models" / "local" / "versions" / "1" / "manifest.json").read_text()
    )
    assert local == stored


def test_a_run_folder_on_a_full_disk_is_named_not_taken_for_full_output(tmp_path: Path) -> None:
    """`aiaas train --out` on a full disk said "cannot write its output (No space left on
    device); what it did is done": the wording for a full stdout, naming no path, when the run
    had failed. In process, not a second Python importing torch again: its stdout is a real
    file with room (the wording is chosen by stdout's descriptor), as a pipe would be."""
    torch_or_skip()  # it trains
    from tests.full_disk import full_tmpfs

    spec = _spec_file(tmp_path, name="iris-full")
    err = io.StringIO()
    with full_tmpfs(tmp_path / "full") as full, (tmp_path / "out.txt").open("w") as out:
        argv = ["--store", str(tmp_path / "store"), "train", str(spec), "--out", str(full / "run")]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*argv, "--no-progress"])
    assert code == 1
    error = err.getvalue().strip().splitlines()[-1]
    assert "what it did is done" not in error and "No space left on device" in error, error
    assert error.startswith("aiaas train: error: cannot write ") and "free some space" in error
