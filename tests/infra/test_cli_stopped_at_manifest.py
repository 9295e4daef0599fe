"""A SIGTERM that lands while the store answers the manifest's write: the version exists, so
`aiaas publish` and `aiaas train --publish` finish as docs/cli.md says (exit 0, `--alias` set,
`--out` kept), not "interrupted" (143) with the alias unset (rev15 3).

The CLI was told the version existed only once `Registry.publish` returned, and the stop was
raised on the way back. The real console entry (launch.py) in a process of its own; the
SIGTERM is sent to it from inside the store's write of the manifest, once the write is done.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "training" / "specs" / "iris-logistic.yaml"
# The console script's entry, with a SIGTERM to itself once the manifest is written.
STOPPED = """
import os, signal, sys
from functions.runtime.store import LocalStore
from infra.cli import launch
put = LocalStore.put_bytes
def put_then_stop(self, key, *args, **kwargs):
    done = put(self, key, *args, **kwargs)
    if key.endswith("/manifest.json"):
        os.kill(os.getpid(), signal.SIGTERM)  # the write is done, its answer on the way
    return done
LocalStore.put_bytes = put_then_stop
sys.argv = ["aiaas", *sys.argv[1:]]
sys.exit(launch.main())
"""


def quick(spec: Path, folder: Path) -> Path:
    """`spec` exporting with TorchScript (export.exporter), written into `folder`: the stop is
    what these test, not the exporter; dynamo's import and trace cost seconds a fresh process."""
    copy = folder / spec.name
    copy.write_text(spec.read_text() + "export: {exporter: torchscript}\n")
    return copy


def run_stopped(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", STOPPED, *argv],
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        start_new_session=True,  # as a runner's job: no terminal
    )


@pytest.mark.parametrize("version", [["--version", "ci-7"], []])
def test_publish_stopped_as_its_manifest_is_written_sets_the_alias(
    tmp_path: Path, version: list[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "m", *version]
    done = run_stopped([*argv, "--alias", "prod", "--json", "--no-progress"])
    assert done.returncode == 0, done.stderr[-2000:]  # was 143, "interrupted"
    document = json.loads(done.stdout)
    published = version[1] if version else "1"
    assert document["version"] == published
    assert Registry(store).alias("m", "prod") == published  # was None


def test_train_publish_stopped_as_its_manifest_is_written_keeps_the_run(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    store = LocalStore(tmp_path / "store")
    out = tmp_path / "runs"
    argv = ["--store", store.uri, "train", str(quick(SPEC, tmp_path)), "--publish"]
    argv += ["--version", "ci-4"]
    done = run_stopped([*argv, "--alias", "staging", "--json", "--no-progress", "--out", str(out)])
    assert done.returncode == 0, done.stderr[-2000:]  # was 143, "interrupted"
    assert json.loads(done.stdout)["alias"] == "staging"
    assert Registry(store).alias("iris-logistic", "staging") == "ci-4"
    assert (out / "manifest.json").is_file()  # was removed
